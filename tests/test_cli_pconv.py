"""``deepfill-tf train|inpaint|export`` for the partial-convolution family: both training
stages of ``pconv_tiny`` with a resume inside stage 2 (the encoder's batch norm frozen), the
run inpaints and exports, and bad inputs are one-line errors."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.convert.tf1_checkpoint import tf1_variable_table
from tests.cli_helpers import one_line_error, read, run


def _images(folder, n=4, size=80):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 16, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png"
        )
    return folder


def _weights(log_dir):
    from deepfill_tf.inference.loading import load_generator

    generator, spec = load_generator(str(log_dir))
    return spec, {k: np.asarray(v) for k, v in tf1_variable_table(generator).items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A pconv_tiny run: 3 steps (stage 1 = steps 0-1, stage 2 from step 2), then resumed to
    step 4. Returns (run dir, [log text, weights] of each of the two runs)."""
    tmp = tmp_path_factory.mktemp("pconv")
    data = _images(tmp / "data")
    log_dir = tmp / "run"
    base = ["train", "--config", "pconv_tiny", "--set", f"train_data={data}",
            "--set", f"log_dir={log_dir}"]  # fmt: skip
    runs = []
    for max_iters in (3, 4):
        text = io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            code = main([*base, "--set", f"max_iters={max_iters}"])
        assert code == 0, text.getvalue()
        runs.append((text.getvalue(), _weights(log_dir)))
    return log_dir, runs


def test_train_two_stages_and_resume(trained):
    _, ((first, (spec, before)), (second, (_, after))) = trained
    assert "phase 'stage1' from step 0" in first and "phase 'finetune' from step 2" in first
    assert spec.family == "pconv" and spec.cnum == 8 and spec.depth == 6
    assert "resumed from step 3" in second and "phase 'finetune' from step 3" in second
    # Stage 2 froze the encoder's batch norm (bn2..bn6): statistics and affine parameters
    # unchanged by step 4; the decoder's batch norm and every convolution still train.
    for i in range(2, 7):
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            key = f"pconv_unet/bn{i}/{name}"
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    for key in ("bn7/moving_mean", "bn7/gamma", "pconv1/kernel", "pconv12/bias"):
        assert not np.array_equal(after[f"pconv_unet/{key}"], before[f"pconv_unet/{key}"]), key


def _inpaint_with_the_cli(capsys, log_dir, folder):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    Image.fromarray(image).save(folder / "img.png")
    mask = np.zeros((70, 90), np.uint8)
    mask[20:45, 30:70] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    out = folder / "out.png"
    code, _, err = run(
        capsys, "inpaint", "--model", "pconv", "--checkpoint", log_dir,
        "--image", folder / "img.png", "--mask", folder / "mask.png", "--output", out,
    )  # fmt: skip
    assert code == 0, err
    return image, mask, read(out)


def test_inpaint_a_trained_run(trained, tmp_path, capsys):
    image, mask, got = _inpaint_with_the_cli(capsys, trained[0], tmp_path)
    assert got.shape == (70, 90, 3)  # any size: padded to 64 multiples, cropped back
    np.testing.assert_array_equal(got[mask == 0], image[mask == 0])
    assert np.abs(got[mask > 0] - image[mask > 0]).mean() > 1  # the hole was filled
    # The pipeline reflect-pads to multiples of 64, which needs sides of at least 33.
    Image.fromarray(image[:33, :40]).save(tmp_path / "small.png")
    Image.fromarray(mask[:33, :40]).save(tmp_path / "small_mask.png")
    code, _, err = run(
        capsys, "inpaint", "--checkpoint", trained[0], "--image", tmp_path / "small.png",
        "--mask", tmp_path / "small_mask.png", "--output", tmp_path / "small_out.png",
    )  # fmt: skip
    assert code == 0, err
    assert read(tmp_path / "small_out.png").shape == (33, 40, 3)
    Image.fromarray(image[:32, :40]).save(tmp_path / "tiny.png")
    Image.fromarray(mask[:32, :40]).save(tmp_path / "tiny_mask.png")
    line = one_line_error(
        capsys, "inpaint", "--checkpoint", trained[0], "--image", tmp_path / "tiny.png",
        "--mask", tmp_path / "tiny_mask.png", "--output", tmp_path / "never.png",
    )  # fmt: skip
    assert "33x33" in line and not (tmp_path / "never.png").exists()


@pytest.mark.slow
def test_export_a_trained_run(trained, tmp_path, capsys):
    image, mask, got = _inpaint_with_the_cli(capsys, trained[0], tmp_path)
    exported = tmp_path / "export"
    code, _, err = run(capsys, "export", "--checkpoint", trained[0], "--output", exported)
    assert code == 0, err
    path = next(exported.rglob("saved_model.pb")).parent
    served = tf.saved_model.load(str(path)).signatures["inpaint_tensors"]
    result = served(image=tf.constant(image[None]), mask=tf.constant(mask[None, :, :, None]))
    np.testing.assert_array_equal(next(iter(result.values())).numpy()[0], got)


def test_perceptual_and_style_terms_with_a_vgg_file_and_a_mask_folder(tmp_path, capsys):
    from conftest import oracle_path

    vgg = oracle_path("pconv_unet") / "vgg16_notop_random.weights.h5"
    data = _images(tmp_path / "data")
    masks = tmp_path / "masks"
    masks.mkdir()
    hole = np.full((64, 64), 255, np.uint8)
    hole[10:40, 5:50] = 0  # NVIDIA's convention: black = hole
    Image.fromarray(hole).save(masks / "00000.png")
    code, out, err = run(
        capsys, "train", "--config", "pconv_tiny", "--set", f"train_data={data}",
        "--set", f"log_dir={tmp_path / 'run'}", "--set", "max_iters=1",
        "--set", f"vgg_weights={vgg}", "--set", "perceptual_weight=0.05",
        "--set", "style_weight=120", "--set", f"mask_dir={masks}",
    )  # fmt: skip
    assert code == 0, err
    values = dict(re.findall(r"(l_\w+|total) ([-0-9.e]+)", out + err))
    assert float(values["l_perceptual"]) > 0 and float(values["l_style_out"]) > 0, out + err


def test_one_line_errors(tmp_path, capsys):
    data = _images(tmp_path / "data", n=2)
    base = ["train", "--config", "pconv_tiny", "--set", f"train_data={data}",
            "--set", f"log_dir={tmp_path / 'run'}", "--set", "max_iters=1"]  # fmt: skip
    line = one_line_error(capsys, *base, "--set", "perceptual_weight=0.05")
    assert "vgg_weights" in line and "torchvision_vgg" in line
    line = one_line_error(
        capsys, *base, "--set", "perceptual_weight=0.05",
        "--set", f"vgg_weights={tmp_path / 'absent.weights.h5'}",
    )  # fmt: skip
    assert "absent.weights.h5 not found" in line
    (tmp_path / "empty").mkdir()
    line = one_line_error(capsys, *base, "--set", f"mask_dir={tmp_path / 'empty'}")
    assert "holds no mask images" in line
    line = one_line_error(capsys, *base, "--set", "img_shapes=[96, 96, 3]")
    assert "img_shapes" in line and "64" in line
    assert not (tmp_path / "run").exists()


def test_checkpoint_of_another_family(tmp_path, capsys):
    image = np.zeros((64, 64, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    line = one_line_error(
        capsys, "inpaint", "--model", "pconv", "--checkpoint", "checkpoints/demo",
        "--image", tmp_path / "img.png", "--mask", tmp_path / "mask.png", "--output", out,
    )  # fmt: skip
    assert "DeepFill v2" in line and "pconv" in line
    assert not out.exists()


def test_published_depth_pads_with_holes_to_256():
    """Depth 8 needs multiples of 256: predict pads the pipeline's 64-multiple further with
    pixels marked as holes; the output keeps the input size and its known pixels."""
    from deepfill_tf.inference.inpainter import Inpainter
    from deepfill_tf.registry import ModelSpec, get_family

    family = get_family("pconv")
    spec = ModelSpec("pconv", {"cnum": 2, "depth": 8})
    generator = family.build_generator(spec)
    assert generator.size_multiple == 256
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    hole = np.zeros((70, 90), np.float32)
    hole[10:30, 20:60] = 1.0
    out = Inpainter(generator, family=family, spec=spec)(image, hole)
    assert out.shape == (70, 90, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[hole == 0], image[hole == 0])
    # The same as running the network on the 256x256 input padded by hand: reflect to 128
    # (the pipeline), then holes to 256.
    x = np.pad(image.astype(np.float32), ((0, 58), (0, 38), (0, 0)), mode="reflect")
    m = np.pad(hole, ((0, 58), (0, 38)), mode="reflect")
    x = np.pad(x, ((0, 128), (0, 128), (0, 0)))
    m = np.pad(m, ((0, 128), (0, 128)), constant_values=1.0)
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    raw = generator(((x / 255 - mean) / std)[None], m[None, :, :, None], training=False)
    pixels = (np.asarray(raw)[0, :70, :90] * std + mean) * 255
    expected = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    diff = np.abs(out.astype(int) - expected.astype(int))[hole == 1]
    assert diff.max() <= 1, diff.max()


@pytest.mark.slow
def test_tflite_export_gives_the_cli_pixels(trained, tmp_path):
    """Builtin TFLite ops only, fixed and dynamic sizes: the inpainter's pixels (hole pixels
    within one level)."""
    from deepfill_tf.export.tflite import convert_tflite, run_tflite
    from deepfill_tf.inference import load_inpainter
    from deepfill_tf.inference.loading import load_generator

    inpainter = load_inpainter(str(trained[0]))
    generator, _ = load_generator(str(trained[0]))
    rng = np.random.default_rng(3)
    for (h, w), size in (((64, 64), {"height": 64, "width": 64}), ((70, 90), {})):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        hole = np.zeros((h, w), np.float32)
        hole[10:40, 20:50] = 1.0
        model = convert_tflite(generator, **size)
        mask = (hole[None, :, :, None] * 255).astype(np.uint8)
        got = run_tflite(model, image[None], mask)[0].astype(int)
        diff = np.abs(got - inpainter(image, hole).astype(int))
        # TFLite's kernels round differently in the last bit: a hole pixel may move a level.
        assert diff.max() <= 1 and (diff == 0).mean() >= 0.99, (diff.max(), (diff == 0).mean())
        assert diff[hole == 0].max() == 0


def test_inpaint_with_the_oracle_weights_npz(tmp_path, capsys):
    """``--checkpoint weights.npz`` (the oracle's layout) through the CLI: the hole pixels are
    NVIDIA's PyTorch output rounded to uint8 (within one level), known pixels unchanged."""
    from conftest import oracle_path

    folder = oracle_path("pconv_unet")
    fe = np.load(folder / "forward_eval.npz")
    image = np.round(fe["image_gt_01_nhwc"][0] * 255).astype(np.uint8)
    hole = fe["mask_nhwc"][0, :, :, 0] < 0.5  # oracle: 0 = hole
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    code, _, err = run(
        capsys, "inpaint", "--model", "pconv", "--checkpoint", folder / "weights.npz",
        "--image", tmp_path / "img.png", "--mask", tmp_path / "mask.png", "--output", out,
    )  # fmt: skip
    assert code == 0, err
    got = read(out)
    rgb = (fe["output_nhwc"][0] * fe["imagenet_std"] + fe["imagenet_mean"]) * 255
    expected = np.clip(np.round(rgb), 0, 255).astype(int)
    assert np.abs(got[hole] - expected[hole]).max() <= 1
    np.testing.assert_array_equal(got[~hole], image[~hole])


def test_bad_weights_npz(tmp_path, capsys):
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "mask.png")
    for name, message in (
        ("other.npz", "holds no partial-convolution UNet weights"),
        ("broken.npz", "not a readable .npz weights file"),
        ("absent.npz", "absent.npz"),
    ):
        line = one_line_error(
            capsys, "inpaint", "--checkpoint", tmp_path / name, "--image", tmp_path / "img.png",
            "--mask", tmp_path / "mask.png", "--output", tmp_path / "out.png",
        )  # fmt: skip
        assert message in line, line
    assert not (tmp_path / "out.png").exists()
