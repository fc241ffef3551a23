"""Image and mask files as a user has them: EXIF orientation, masks drawn in another channel,
output formats chosen by the extension."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.errors import InputError
from deepfill_tf.inference.io import (
    encode_image,
    mask_warning,
    output_format,
    read_image,
    read_mask,
    write_image,
)

RNG = np.random.default_rng(21)


def _exif_jpeg(path, array, orientation: int) -> str:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, quality=95, exif=exif)
    return str(path)


@pytest.mark.parametrize(
    ("orientation", "turn"),
    [(3, lambda a: np.rot90(a, 2)), (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))],
)
def test_exif_orientation_is_applied_to_images_and_masks(tmp_path, orientation, turn):
    """A phone photo stored sideways with an orientation tag reads as displayed (as OpenCV's
    imread does); the mask drawn on the displayed photo then has the photo's size."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:10, :10] = 255  # a white top-left corner marks the orientation
    path = _exif_jpeg(tmp_path / "photo.jpg", stored, orientation)
    shown = read_image(path)
    want = turn(stored)
    assert shown.shape == want.shape
    assert np.abs(shown.astype(int) - want).max() < 40  # JPEG noise only
    assert read_image(path, exif=False).shape == stored.shape
    assert read_mask(path).shape == want.shape[:2]
    assert read_mask(path, exif=False).shape == stored.shape[:2]


def _mask_file(path, channel: str) -> str:
    if channel == "alpha":
        rgba = np.zeros((16, 16, 4), np.uint8)
        rgba[4:8, 4:8, 3] = 255
        Image.fromarray(rgba).save(path)
    else:
        rgb = np.zeros((16, 16, 3), np.uint8)
        rgb[4:8, 4:8, {"red": 0, "green": 1, "blue": 2}[channel]] = 200
        Image.fromarray(rgb).save(path)
    return str(path)


@pytest.mark.parametrize("channel", ["red", "green", "alpha"])
def test_a_hole_in_another_channel_is_named_and_readable_with_mask_channel(tmp_path, channel):
    path = _mask_file(tmp_path / f"{channel}.png", channel)
    hole = read_mask(path)
    assert not hole.any()  # the original rule reads blue
    warning = mask_warning(path, hole)
    assert f"its {channel} channel marks 16 pixels; use --mask-channel {channel}" in warning
    assert "\n" not in warning
    fixed = read_mask(path, channel=channel)
    assert fixed.sum() == 16 and fixed[4:8, 4:8].all()
    assert mask_warning(path, fixed, channel) is None


def test_threshold_and_an_empty_mask(tmp_path):
    path = _mask_file(tmp_path / "blue.png", "blue")  # value 200
    assert read_mask(path).sum() == 16
    assert read_mask(path, threshold=210).sum() == 0
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(black)
    message = mask_warning(str(black), read_mask(str(black)))
    assert message.endswith("the output equals the input (paint the hole white)")
    with pytest.raises(InputError, match="expected one of"):
        read_mask(path, channel="purple")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.png", "PNG"), ("a.JPG", "JPEG"), ("a.jpeg", "JPEG"), ("a.webp", "WEBP")],
)
def test_the_output_extension_picks_the_format(tmp_path, name, fmt):
    rgb = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    write_image(str(tmp_path / name), rgb, jpeg_quality=90)
    with Image.open(tmp_path / name) as image:
        assert image.format == fmt and image.size == (32, 24)
        if fmt in ("PNG", "WEBP"):  # lossless
            np.testing.assert_array_equal(np.asarray(image.convert("RGB")), rgb)


def test_other_extensions_are_refused_and_quality_matters():
    for name in ("out.gif", "out.bmp", "out"):
        with pytest.raises(InputError, match="unsupported output extension"):
            output_format(name)
    rgb = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    small, large = encode_image(rgb, "JPEG", 30), encode_image(rgb, "JPEG", 95)
    assert len(small) < len(large)
    assert Image.open(io.BytesIO(small)).format == "JPEG"


def test_cli_reads_a_sideways_phone_photo_and_a_red_mask(tmp_path, capfd):
    """``deepfill-tf inpaint`` on a photo stored sideways (EXIF orientation 6) with a red-on-black
    mask drawn on the displayed photo: ``--mask-channel red`` reads the hole; the output has the
    displayed orientation and size and changes the hole only."""
    from deepfill_tf.cli.main import main
    from deepfill_tf.convert import tf1_variable_table, write_tf1_checkpoint
    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

    model = DeepFillV2Generator.tiny().build_for(64, 64)
    ckpt = write_tf1_checkpoint(
        {k: v.numpy() for k, v in tf1_variable_table(model).items()}, str(tmp_path / "ckpt")
    )
    stored = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)  # shown as 56 x 40 (H x W)
    photo = _exif_jpeg(tmp_path / "photo.jpg", stored, 6)
    shown = read_image(photo)
    red = np.zeros((*shown.shape[:2], 3), np.uint8)
    red[10:30, 8:28, 0] = 255
    Image.fromarray(red).save(tmp_path / "mask.png")
    argv = ["inpaint", "--checkpoint", ckpt, "--image", photo, "--mask", str(tmp_path / "mask.png")]
    out = str(tmp_path / "out.png")
    capfd.readouterr()  # TensorFlow's start-up lines
    assert main([*argv, "--output", out, "--mask-channel", "red"]) == 0
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out.startswith(f"wrote {out}: 40x56 (W x H) in ")
    result = read_image(out)
    assert result.shape == shown.shape
    hole = red[..., 0] > 127
    np.testing.assert_array_equal(result[~hole], shown[~hole])
    assert (result[hole] != shown[hole]).any()
    # Without the option the same files are one warning that names the fix.
    assert main([*argv, "--output", str(tmp_path / "o2.png"), "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "use --mask-channel red" in err
