"""``deepfill-tf inpaint|train|export`` for GLCIC and Context Encoders: the oracle .t7 files
reproduce the original scripts' outputs, bad inputs are one-line errors, training runs the
three phases and resumes mid-phase."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.testing import torch7 as t7w
from tests.cli_helpers import one_line_error, read, run
from tests.conftest import oracle_path


@pytest.fixture(scope="module")
def glcic():
    return oracle_path("glcic") / "completionnet"


@pytest.fixture(scope="module")
def ce():
    return oracle_path("glcic") / "context_encoder"


# --------------------------------------------------------------------------------------------
# The oracle models through the CLI.


def test_glcic_default_keeps_size_and_known_pixels(tmp_path, capsys, glcic):
    out = tmp_path / "out.png"
    code, _, err = run(
        capsys, "inpaint", "--model", "glcic", "--checkpoint", glcic / "completionnet.t7",
        "--image", glcic / "input.png", "--mask", glcic / "mask.png", "--output", out,
    )  # fmt: skip
    assert code == 0, err
    got, ref = read(out), read(glcic / "out_u8.png")
    assert np.abs(got - ref).max() <= 1
    hole = np.asarray(Image.open(glcic / "mask.png")) > 127
    np.testing.assert_array_equal(got[~hole], read(glcic / "input.png")[~hole])


@pytest.mark.parametrize(
    "flags, reference",
    [
        (["--postprocess"], "postproc_u8.png"),
        (["--original-preprocess", "--maxdim", "600"], "out_u8_imagesave.png"),
        (["--original-preprocess", "--postprocess"], "postproc_u8.png"),
    ],
)
def test_glcic_original_modes(tmp_path, capsys, glcic, flags, reference):
    out = tmp_path / "out.png"
    code, _, err = run(
        capsys, "inpaint", "--checkpoint", glcic / "completionnet.t7", "--image",
        glcic / "input.png", "--mask", glcic / "mask.png", "--output", out, *flags,
    )  # fmt: skip
    assert code == 0, err
    diff = np.abs(read(out) - read(glcic / reference))
    assert diff.max() <= 2 and np.mean(diff <= 1) >= 0.99, (diff.max(), np.mean(diff <= 1))


def test_context_encoder_centre(tmp_path, capsys, ce):
    mask = np.zeros((128, 128), np.uint8)
    mask[36:92, 36:92] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    for name in ("netG.t7", "netG_legacyBN.t7"):
        out = tmp_path / f"{name}.png"
        code, _, err = run(
            capsys, "inpaint", "--model", "context_encoder", "--checkpoint", ce / name,
            "--image", ce / "input.png", "--mask", tmp_path / "mask.png", "--output", out,
        )  # fmt: skip
        assert code == 0, err
        assert np.abs(read(out) - read(ce / "composite_u8.png")).max() <= 1


# --------------------------------------------------------------------------------------------
# Bad inputs: one line, exit 1, no output.


@pytest.fixture
def pair(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "img.png")
    mask = np.zeros((32, 40), np.uint8)
    mask[8:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "img.png", tmp_path / "mask.png"


def _inpaint_error(capsys, tmp_path, checkpoint, image, mask, *flags) -> str:
    out = tmp_path / "never.png"
    line = one_line_error(
        capsys, "inpaint", "--checkpoint", checkpoint, "--image", image, "--mask", mask,
        "--output", out, *flags,
    )  # fmt: skip
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    return line


def _tiny_glcic_tree():
    from deepfill_tf.models.glcic import GLCICCompletionNet

    model = GLCICCompletionNet.tiny()
    model.build((None, None, None, 4))
    t7w.randomize_weights(model, seed=1)
    return t7w.glcic_to_t7(model)


def test_bad_t7_files(tmp_path, capsys, pair, glcic, ce):
    image, mask = pair
    good = glcic / "completionnet.t7"
    truncated = tmp_path / "truncated.t7"
    truncated.write_bytes(good.read_bytes()[:100_000])
    assert "truncated Torch7 file" in _inpaint_error(capsys, tmp_path, truncated, image, mask)
    fake = tmp_path / "fake.t7"
    shutil.copy(image, fake)
    assert "not a Torch7 binary file" in _inpaint_error(capsys, tmp_path, fake, image, mask)
    line = _inpaint_error(capsys, tmp_path, ce / "netG.t7", image, mask, "--model", "glcic")
    assert "Context Encoder" in line and "not glcic" in line
    tree = _tiny_glcic_tree()
    tree["model"].fields["modules"][4] = t7w.Module("nn.SpatialMaxPooling", {"kW": 2})
    odd = tmp_path / "odd.t7"
    t7w.write_t7(odd, tree)
    line = _inpaint_error(capsys, tmp_path, odd, image, mask)
    assert "module 5 (nn.SpatialMaxPooling) is not a module class we map" in line
    tree = _tiny_glcic_tree()
    tree["mean"] = np.float32([0.5, 0.5])
    short_mean = tmp_path / "mean.t7"
    t7w.write_t7(short_mean, tree)
    assert "'mean' has 2 values" in _inpaint_error(capsys, tmp_path, short_mean, image, mask)


def test_bad_images_and_masks(tmp_path, capsys, pair, glcic, ce):
    image, mask = pair
    ckpt = glcic / "completionnet.t7"
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((6, 40, 3), np.uint8)).save(small)
    small_mask = tmp_path / "small_mask.png"
    small_hole = np.zeros((6, 40), np.uint8)
    small_hole[2:4, 10:20] = 255
    Image.fromarray(small_hole).save(small_mask)
    assert "smallest size" in _inpaint_error(capsys, tmp_path, ckpt, small, small_mask)
    other = tmp_path / "other_mask.png"
    other_hole = np.zeros((30, 40), np.uint8)
    other_hole[5:10, 5:10] = 255
    Image.fromarray(other_hole).save(other)
    assert "40x30" in _inpaint_error(capsys, tmp_path, ckpt, image, other)
    line = _inpaint_error(capsys, tmp_path, ce / "netG.t7", image, mask)
    assert "takes 128x128 images, this one is 40x32" in line
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(big)
    corner = np.zeros((128, 128), np.uint8)
    corner[:10, :10] = 255
    Image.fromarray(corner).save(tmp_path / "corner.png")
    line = _inpaint_error(capsys, tmp_path, ce / "netG.t7", big, tmp_path / "corner.png")
    assert "completes only the 64x64 centre (rows and columns 32..95)" in line


# --------------------------------------------------------------------------------------------
# Training and export.


def _images(folder, n=4, size=96):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 16, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png"
        )
    return folder


@pytest.mark.slow  # two training runs: ~30 s on an idle CPU
def test_glcic_train_three_phases_and_resume(tmp_path, capsys):
    data = _images(tmp_path / "data")
    log_dir = tmp_path / "run"
    base = ["train", "--config", "glcic_tiny", "--set", f"train_data={data}",
            "--set", f"log_dir={log_dir}"]  # fmt: skip
    code, out, err = run(capsys, *base, "--set", "max_iters=3")
    assert code == 0, err
    text = out + err
    assert "phase 'completion' from step 0" in text
    assert "phase 'discriminator' from step 2" in text
    code, out, err = run(capsys, *base, "--set", "max_iters=5")
    assert code == 0, err
    text = out + err
    assert "resumed from step 3" in text and "phase 'joint' from step 3" in text
    # The run loads where a .t7 does and keeps the dataset mean it computed.
    from deepfill_tf.inference.loading import load_generator

    generator, spec = load_generator(str(log_dir))
    assert spec.family == "glcic" and spec.cnum == 8
    mean = np.asarray(generator.dataset_mean)
    assert (mean > 0).all() and (mean < 1).all()


@pytest.mark.slow
def test_glcic_export_of_a_trained_run(tmp_path, capsys):
    data = _images(tmp_path / "data")
    log_dir = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--config", "glcic_tiny", "--set", f"train_data={data}",
        "--set", f"log_dir={log_dir}", "--set", "max_iters=1",
    )  # fmt: skip
    assert code == 0, err
    exported = tmp_path / "export"
    code, _, err = run(capsys, "export", "--checkpoint", log_dir, "--output", exported)
    assert code == 0, err
    assert any(exported.rglob("saved_model.pb"))


@pytest.mark.slow
def test_context_encoder_train_and_resume(tmp_path, capsys):
    data = _images(tmp_path / "data", size=140)
    log_dir = tmp_path / "run"
    base = ["train", "--config", "context_encoder_tiny", "--set", f"train_data={data}",
            "--set", f"log_dir={log_dir}"]  # fmt: skip
    code, _, err = run(capsys, *base, "--set", "max_iters=2")
    assert code == 0, err
    code, out, err = run(capsys, *base, "--set", "max_iters=3")
    assert code == 0, err
    assert "resumed from step 2" in out + err
    mask = np.zeros((128, 128), np.uint8)
    mask[40:80, 40:80] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    image = tmp_path / "data" / "img0.png"
    Image.open(image).crop((0, 0, 128, 128)).save(tmp_path / "img.png")
    code, _, err = run(
        capsys, "inpaint", "--checkpoint", log_dir, "--image", tmp_path / "img.png",
        "--mask", tmp_path / "mask.png", "--output", tmp_path / "out.png",
    )  # fmt: skip
    assert code == 0, err
    assert read(tmp_path / "out.png").shape == (128, 128, 3)


def test_original_preprocess_sizes(tmp_path, capsys, glcic):
    """The library call and the CLI return inpaint.lua's size (long side <= --maxdim,
    multiples of 4), the whole image at once even when it is large."""
    from deepfill_tf.inference.loading import load_inpainter

    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (50, 130, 3), dtype=np.uint8)
    mask = np.zeros((50, 130), np.float32)
    mask[10:30, 40:80] = 1
    inp = load_inpainter(str(glcic / "completionnet.t7"), original_preprocess=True, maxdim=64)
    assert inp(image, mask).shape == (24, 64, 3)
    Image.fromarray(image).save(tmp_path / "odd.png")
    Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "odd_mask.png")
    out = tmp_path / "odd_out.png"
    code, _, err = run(
        capsys, "inpaint", "--checkpoint", glcic / "completionnet.t7", "--image",
        tmp_path / "odd.png", "--mask", tmp_path / "odd_mask.png", "--output", out,
        "--original-preprocess",
    )  # fmt: skip
    assert code == 0, err
    assert read(out).shape == (52, 132, 3) and "output is 132x52 (W x H)" in err
    lib = load_inpainter(str(glcic / "completionnet.t7"), original_preprocess=True)
    np.testing.assert_array_equal(read(out), lib(image, mask))
    big = rng.integers(0, 256, (200, 1100, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    big_mask = np.zeros((200, 1100), np.uint8)
    big_mask[50:90, 500:560] = 255
    Image.fromarray(big_mask).save(tmp_path / "big_mask.png")
    out = tmp_path / "big_lua.png"
    code, _, err = run(
        capsys, "inpaint", "--checkpoint", glcic / "completionnet.t7", "--image",
        tmp_path / "big.png", "--mask", tmp_path / "big_mask.png", "--output", out,
        "--original-preprocess",
    )  # fmt: skip
    assert code == 0, err
    from deepfill_tf.families.glcic.preprocess import original_sizes

    assert read(out).shape == (*original_sizes(200, 1100, maxdim=600), 3)
    assert max(read(out).shape[:2]) <= 600 and read(out).shape[0] % 4 == 0
    # --postprocess works on the crops of a large image (one at a time).
    out = tmp_path / "big_out.png"
    code, _, err = run(
        capsys, "inpaint", "--checkpoint", glcic / "completionnet.t7", "--image",
        tmp_path / "big.png", "--mask", tmp_path / "big_mask.png", "--output", out,
        "--postprocess",
    )  # fmt: skip
    assert code == 0, err
    got = read(out)
    assert got.shape == (200, 1100, 3)
    known = big_mask == 0
    np.testing.assert_array_equal(got[known], big.astype(int)[known])
