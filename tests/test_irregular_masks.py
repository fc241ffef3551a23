"""Irregular masks: the seeded generator, the NVIDIA-style folder reader with its
augmentations, the tf.data stream and ``deepfill-tf masks --kind irregular``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.errors import ConfigError, InputError
from deepfill_tf.masks import (
    IrregularMaskFolder,
    IrregularParams,
    hole_ratio,
    irregular_mask,
    irregular_mask_dataset,
    ratio_bucket,
)


@pytest.mark.parametrize("ratio", [(0.01, 0.1), (0.2, 0.3), (0.5, 0.6)])
def test_generator_hits_the_hole_ratio_range(ratio):
    params = IrregularParams(hole_ratio=ratio)
    for i in range(12):
        mask = irregular_mask((96, 128), [7, i], params)
        assert mask.shape == (1, 96, 128, 1) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert ratio[0] <= hole_ratio(mask) <= ratio[1], (i, hole_ratio(mask))


def test_generator_is_reproducible_and_seed_dependent():
    a = irregular_mask((64, 64), [3, 0])
    np.testing.assert_array_equal(a, irregular_mask((64, 64), [3, 0]))
    np.testing.assert_array_equal(a, irregular_mask((64, 64), np.random.default_rng([3, 0])))
    assert not np.array_equal(a, irregular_mask((64, 64), [3, 1]))
    assert not np.array_equal(a, irregular_mask((64, 64), [4, 0]))


def test_generator_margin_and_strokes_touch_the_border():
    params = IrregularParams(hole_ratio=(0.2, 0.3), margin=10)
    for i in range(5):
        hole = irregular_mask((80, 80), [1, i], params)[0, :, :, 0]
        assert hole[:10].sum() == hole[-10:].sum() == hole[:, :10].sum() == hole[:, -10:].sum() == 0
    touching = [
        irregular_mask((80, 80), [2, i])[0, :, :, 0] for i in range(10)
    ]  # without a margin some holes reach the border
    assert any(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any() for m in touching)


def test_generator_bad_params():
    with pytest.raises(ConfigError, match="hole_ratio"):
        irregular_mask((32, 32), 0, IrregularParams(hole_ratio=(0.5, 0.2)))
    with pytest.raises(ConfigError, match="margin 20 leaves no room"):
        irregular_mask((32, 32), 0, IrregularParams(margin=20))


def test_ratio_buckets():
    assert ratio_bucket(0.01) is None and ratio_bucket(0.6001) is None
    assert ratio_bucket(0.1) == 0 and ratio_bucket(0.1001) == 1 and ratio_bucket(0.6) == 5


def _nvidia_style_folder(folder, size=(64, 64), count=3):
    """Mask files in NVIDIA's convention: white background, black (0) holes."""
    folder.mkdir(exist_ok=True)
    holes = []
    for i in range(count):
        hole = np.zeros(size, bool)
        hole[5 + i : 20 + i, 10:40] = True
        holes.append(hole)
        Image.fromarray(np.where(hole, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return holes


def test_folder_converts_nvidia_convention(tmp_path):
    holes = _nvidia_style_folder(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("ignored")
    source = IrregularMaskFolder(tmp_path / "m", (64, 64), dilation=(1, 1), rotate=False)
    assert len(source) == 3
    for i, hole in enumerate(holes):
        np.testing.assert_array_equal(source.read(i), hole)
    # No augmentation, same size: a sample is one of the files exactly, 1 = hole.
    sample = source.sample(0)
    assert sample.shape == (1, 64, 64, 1)
    assert any(np.array_equal(sample[0, :, :, 0] == 1, h) for h in holes)
    white = IrregularMaskFolder(tmp_path / "m", (64, 64), holes_are="white")
    np.testing.assert_array_equal(white.read(0), ~holes[0])


def test_folder_augmentations(tmp_path):
    _nvidia_style_folder(tmp_path / "m", size=(96, 96), count=1)
    base = IrregularMaskFolder(tmp_path / "m", (96, 96), dilation=(1, 1), rotate=False)
    plain = base.sample(0)[0, :, :, 0]
    dilated = IrregularMaskFolder(tmp_path / "m", (96, 96), dilation=(9, 9), rotate=False)
    grown = dilated.sample(0)[0, :, :, 0]
    assert grown.sum() > plain.sum() and (grown >= plain).all()  # 9x9 max filter: +4 px a side
    assert grown.sum() == (15 + 8) * (30 + 8)
    rotated = IrregularMaskFolder(tmp_path / "m", (96, 96), dilation=(1, 1))
    samples = [rotated.sample([0, i])[0, :, :, 0] for i in range(4)]
    assert any(not np.array_equal(s, plain) for s in samples)
    # Cropping: every crop is a window of the file at a random offset.
    noise = np.random.default_rng(0).random((96, 96)) < 0.5  # unique windows
    (tmp_path / "n").mkdir()
    Image.fromarray(np.where(noise, 0, 255).astype(np.uint8)).save(tmp_path / "n" / "a.png")
    cropped = IrregularMaskFolder(tmp_path / "n", (48, 64), dilation=(1, 1), rotate=False)
    offsets = set()
    for i in range(6):
        crop = cropped.sample([1, i])[0, :, :, 0] == 1
        found = [
            (t, left)
            for t in range(49)
            for left in range(33)
            if np.array_equal(noise[t : t + 48, left : left + 64], crop)
        ]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 1
    np.testing.assert_array_equal(rotated.sample([5, 5]), rotated.sample([5, 5]))


def test_folder_small_masks_upscaled_or_refused(tmp_path):
    _nvidia_style_folder(tmp_path / "m", size=(32, 48), count=1)
    up = IrregularMaskFolder(tmp_path / "m", (64, 64), dilation=(1, 1), rotate=False)
    mask = up.sample(0)
    assert mask.shape == (1, 64, 64, 1)
    # 32x48 -> scaled x2 to 64x96 then cropped: the 15x30 hole becomes 30 rows high.
    rows = np.nonzero(mask[0, :, :, 0].any(axis=1))[0]
    assert rows.max() - rows.min() + 1 == 30
    strict = IrregularMaskFolder(tmp_path / "m", (64, 64), allow_upscale=False)
    with pytest.raises(InputError, match=r"is 32x48, smaller than the 64x64 crops"):
        strict.sample(0)


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        IrregularMaskFolder(tmp_path / "absent", (64, 64))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no mask images"):
        IrregularMaskFolder(tmp_path / "empty", (64, 64))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"a.png: unreadable image"):
        IrregularMaskFolder(tmp_path / "broken", (64, 64)).sample(0)
    with pytest.raises(ConfigError, match="dilation"):
        IrregularMaskFolder(tmp_path / "broken", (64, 64), dilation=(2, 4))


def test_dataset_stream(tmp_path):
    ds = irregular_mask_dataset((32, 48), seed=5)
    first = [m.numpy() for m in ds.take(3)]
    assert all(m.shape == (1, 32, 48, 1) for m in first)
    np.testing.assert_array_equal(first[2], irregular_mask((32, 48), [5, 2]))
    _nvidia_style_folder(tmp_path / "m")
    from_folder = irregular_mask_dataset((32, 32), seed=1, folder=str(tmp_path / "m"))
    got = next(iter(from_folder)).numpy()
    expected = IrregularMaskFolder(tmp_path / "m", (32, 32)).sample([1, 0])
    np.testing.assert_array_equal(got, expected)


def _cli(out, *extra):
    return main(["masks", "--kind", "irregular", "--output-dir", str(out), *extra])


def test_cli_writes_generated_masks(tmp_path):
    args = ("--size", "48", "64", "--count", "3", "--seed", "4", "--hole-ratio", "0.2", "0.3")
    assert _cli(tmp_path / "a", *args) == 0
    assert _cli(tmp_path / "b", *args[:3], "--count", "2", *args[5:]) == 0
    files = sorted((tmp_path / "a").iterdir())
    assert [p.name for p in files] == ["mask_00000.png", "mask_00001.png", "mask_00002.png"]
    for i, p in enumerate(files):
        pixels = np.asarray(Image.open(p))
        assert pixels.shape == (48, 64) and set(np.unique(pixels)) <= {0, 255}
        expected = irregular_mask((48, 64), [4, i], IrregularParams(hole_ratio=(0.2, 0.3)))
        np.testing.assert_array_equal(pixels == 255, expected[0, :, :, 0] == 1)
    for name in ("mask_00000.png", "mask_00001.png"):  # a shorter run is a prefix
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cli_writes_augmented_folder_masks(tmp_path, capsys):
    holes = _nvidia_style_folder(tmp_path / "nvidia")
    out = tmp_path / "out"
    argv = ["--mask-source", str(tmp_path / "nvidia"), "--size", "64", "64", "--count", "2"]
    assert _cli(out, *argv, "--dilation", "1", "1", "--no-rotate") == 0
    assert "from" in capsys.readouterr().out
    for p in sorted(out.iterdir()):
        pixels = np.asarray(Image.open(p)) == 255  # ours: white = hole
        assert any(np.array_equal(pixels, h) for h in holes)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hole-ratio", "0.7", "0.2"], "hole_ratio must satisfy"),
        (["--mask-source", "/nonexistent/masks"], "mask folder /nonexistent/masks not found"),
    ],
)
def test_cli_errors(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert _cli(out, "--size", "32", "32", *extra) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main(["masks", "--kind", "box", "--mask-source", "x", "--output-dir", str(out)]) == 1
    assert "--mask-source needs --kind irregular" in capsys.readouterr().err
