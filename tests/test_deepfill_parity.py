"""Parity of the DeepFill v1/v2 generators with tensors computed by the ORIGINAL TF1 code.

Oracles: ../shared/oracles/deepfill_v{1,2}/ (see their MANIFEST.md). Tolerances are the
MANIFEST's: x1 5e-5, x2 / complete 1e-4, contextual-attention tensors 2e-4, mask exact,
uint8 +-1 on a few pixels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deepfill_tf.inference.loading import load_generator
from deepfill_tf.inference.pipeline import inpaint_uint8

# stage name -> (oracle file, tolerance); checked in forward order so that a failure names the
# first stage that diverged.
STAGES = [
    ("mask_s4", "mask_s4.npy", 0.0),
    ("x1", "x1.npy", 5e-5),
    ("ca_in", "ca_in.npy", 2e-4),
    ("ca_out", "ca_out.npy", 2e-4),
    ("flow", "ca_flow.npy", 2e-4),
    ("x2", "x2.npy", 1e-4),
]
EXPECTED = {"deepfill_v1": (32, 3601542), "deepfill_v2": (48, 4052478)}
_CACHE = {}


def _load(oracles, version):
    if version not in _CACHE:
        root = oracles(version)
        generator, spec = load_generator(str(root / "model"))
        _CACHE[version] = (root, generator, spec)
    return _CACHE[version]


def _oracle_inputs(root):
    packed = np.load(root / "gen" / "input_tensor.npy").astype(np.float32)  # (1, H, 2W, 3) BGR
    width = packed.shape[2] // 2
    image_bgr, mask_bgr = packed[:, :, :width], packed[:, :, width:]
    mask = (mask_bgr[0:1, :, :, 0:1] > 127.5).astype(np.float32)
    return image_bgr / 127.5 - 1.0, mask


def describe_mismatch(name, got, want):
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    first = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return (
        f"stage {name}: max abs err {diff.max():.3g} at {tuple(int(i) for i in first)}, "
        f"mean {diff.mean():.3g}, got {np.asarray(got)[first]:.6g} want {np.asarray(want)[first]:.6g}"
    )


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_generator_matches_original_stage_by_stage(oracles, version):
    root, generator, spec = _load(oracles, version)
    cnum, n_values = EXPECTED[version]
    assert (spec.name, spec.cnum, spec.guided) == (version, cnum, False)
    assert sum(int(np.prod(w.shape)) for w in generator.weights) == n_values

    x, mask = _oracle_inputs(root)
    stages = {k: v.numpy() for k, v in generator.stages(x, mask).items()}
    errors = {}
    for name, filename, tol in STAGES:
        want = np.load(root / "gen" / filename)
        got = stages[name]
        assert got.shape == want.shape, f"stage {name}: shape {got.shape} != {want.shape}"
        err = float(np.abs(got - want).max())
        errors[name] = err
        assert err <= tol, describe_mismatch(name, got, want) + f" (tolerance {tol})"
    complete = stages["x2"] * mask + x * (1 - mask)
    want = np.load(root / "gen" / "complete.npy")
    assert np.abs(complete - want).max() <= 1e-4, describe_mismatch("complete", complete, want)
    print(f"{version} max abs errors: " + json.dumps({k: f"{v:.2e}" for k, v in errors.items()}))


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_uint8_output_matches_test_py(oracles, version):
    root, generator, _ = _load(oracles, version)
    image_rgb = np.asarray(Image.open(root / "input.png").convert("RGB"))
    mask = (np.asarray(Image.open(root / "mask.png").convert("RGB"))[..., 2] > 127.5).astype(
        np.float32
    )
    got = inpaint_uint8(
        generator, image_rgb[None], mask[None, :, :, None], original_postprocess=True
    ).numpy()
    want = np.load(root / "gen" / "output_u8.npy")
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1, describe_mismatch("output_u8", got, want)
    assert (diff > 0).mean() < 1e-3, f"{(diff > 0).sum()} pixel values differ by 1"
    png = np.asarray(Image.open(root / "gen" / "output.png").convert("RGB"))
    assert np.abs(png.astype(int) - got[0].astype(int)).max() <= 1


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_default_postprocess_keeps_known_pixels(oracles, version):
    root, generator, _ = _load(oracles, version)
    image_rgb = np.asarray(Image.open(root / "input.png").convert("RGB"))
    mask = (np.asarray(Image.open(root / "mask.png").convert("RGB"))[..., 2] > 127.5).astype(
        np.float32
    )
    got = inpaint_uint8(generator, image_rgb[None], mask[None, :, :, None]).numpy()[0]
    known = mask == 0
    np.testing.assert_array_equal(got[known], image_rgb[known])
    # Inside the hole: the rounded prediction, i.e. within 1 of the truncated original.
    want = np.load(root / "gen" / "output_u8.npy")[0]
    assert np.abs(got[~known].astype(int) - want[~known].astype(int)).max() <= 1


def test_batch_of_two_equals_two_single_runs(oracles):
    # Vectorised attention: a batch with per-image masks equals separate runs.
    root, generator, _ = _load(oracles, "deepfill_v2")
    x, mask = _oracle_inputs(root)
    other = np.ascontiguousarray(x[:, ::-1])
    other_mask = np.ascontiguousarray(mask[:, :, ::-1])
    _, x2_batch, _ = generator(np.concatenate([x, other]), np.concatenate([mask, other_mask]))
    _, x2_a, _ = generator(x, mask)
    _, x2_b, _ = generator(other, other_mask)
    np.testing.assert_allclose(x2_batch[0], x2_a[0], atol=1e-4)
    np.testing.assert_allclose(x2_batch[1], x2_b[0], atol=1e-4)


def test_tf_function_with_unknown_shapes_matches_eager(oracles):
    root, generator, _ = _load(oracles, "deepfill_v1")
    x, mask = _oracle_inputs(root)
    fn = tf.function(
        lambda a, m: generator(a, m)[1],
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32),
            tf.TensorSpec([None, None, None, 1], tf.float32),
        ],
    )
    np.testing.assert_allclose(fn(x, mask), generator(x, mask)[1], atol=1e-4)


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_cli_original_postprocess_reproduces_test_py_png(oracles, version, tmp_path):
    # Through the console command (traced graph, where grappler may rewrite divisions).
    from deepfill_tf.cli.main import main

    root, _, _ = _load(oracles, version)
    out = tmp_path / "out.png"
    code = main(
        [
            "inpaint", "--checkpoint", str(root / "model"), "--image", str(root / "input.png"),
            "--mask", str(root / "mask.png"), "--output", str(out), "--original-postprocess",
        ]
    )  # fmt: skip
    assert code == 0
    got = np.asarray(Image.open(out).convert("RGB")).astype(int)
    want = np.asarray(Image.open(root / "gen" / "output.png").convert("RGB")).astype(int)
    diff = np.abs(got - want)
    assert diff.max() <= 1, describe_mismatch("output.png", got, want)
    assert (diff > 0).sum() <= 10, f"{(diff > 0).sum()} pixel values differ by 1"
