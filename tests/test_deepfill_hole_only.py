"""DeepFill inference computes the contextual attention only where the hole's pixels read it.

``DeepFillGenerator(..., hole_only=True)`` (what ``Family.predict`` and so the CLI, the
SavedModel and the TFLite model run) must give the same refined output at every hole pixel
as the full network, for holes anywhere (borders, corners), of any width (1 px strokes that
the nearest-neighbour 1/4 mask loses), and ``ATTENTION_READ_RADIUS`` must be the smallest
radius that does.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.models.deepfill_generator import DeepFillGenerator, DeepFillV1Generator
from deepfill_tf.testing.parity import assert_parity

H, W = 96, 128
# Float32 reassociation of the chunked attention (v2's scaled kernels amplify it), and the
# least error a skipped cell must cause for the radius to count as tight.
ATOL = {"v1": 1e-5, "v2": 1e-4}
TIGHT = {"v1": 5e-5, "v2": 5e-4}


def _masks() -> dict[str, np.ndarray]:
    masks = {}
    m = np.zeros((1, H, W, 1), np.float32)
    m[:, 40:60, 50:80] = 1.0
    masks["box"] = m
    m = np.zeros((1, H, W, 1), np.float32)
    m[:, 0:12, 0:20] = 1.0
    m[:, H - 9 :, W - 30 :] = 1.0
    masks["corners"] = m
    m = np.zeros((1, H, W, 1), np.float32)
    m[:, 30, 10:100] = 1.0  # one-pixel strokes: rows/columns the 1/4 mask does not sample
    m[:, 20:80, 97] = 1.0
    m[:, 70:72, 5:40] = 1.0
    masks["thin strokes"] = m
    return masks


def _generator(version: str):
    """A tiny generator. v2's kernels are scaled by 3: at Glorot scale its gated layers shrink
    the attention branch's share of x2 to ~1e-7, too little to tell a skipped cell."""
    keras.utils.set_random_seed(7)
    if version == "v1":
        return DeepFillV1Generator(cnum=4).build_for(64, 64)
    model = DeepFillGenerator(cnum=4).build_for(64, 64)
    for weight in model.weights:
        if len(weight.shape) == 4:
            weight.assign(weight * 3.0)
    return model


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (2, H, W, 3)).astype(np.float32)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("name", list(_masks()))
def test_hole_only_equals_the_full_network_at_hole_pixels(version, name):
    model = _generator(version)
    image, mask = _image(), _masks()[name]
    _, full, _ = model(image, mask)
    _, part, _ = model(image, mask, hole_only=True)
    hole = np.broadcast_to(mask[..., 0] > 0.5, full.shape[:3])
    assert_parity(np.asarray(part)[hole], np.asarray(full)[hole], ATOL[version], version + name)
    # It did skip work: far from the hole the output is not the full network's.
    if name == "box":
        assert np.abs(np.asarray(part)[:, :8, :8] - np.asarray(full)[:, :8, :8]).max() > 1e-3


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_smaller_read_radius_is_not_exact(version, monkeypatch):
    """The radius is tight: one less and some hole pixel reads a skipped cell."""
    model = _generator(version)
    image, mask = _image(1), _masks()["corners"]
    _, full, _ = model(image, mask)
    monkeypatch.setattr(type(model), "ATTENTION_READ_RADIUS", model.ATTENTION_READ_RADIUS - 1)
    _, part, _ = model(image, mask, hole_only=True)
    hole = np.broadcast_to(mask[..., 0] > 0.5, full.shape[:3])
    assert np.abs(np.asarray(part)[hole] - np.asarray(full)[hole]).max() > TIGHT[version]


def test_hole_only_at_dynamic_shapes_and_with_no_hole():
    """Traced with unknown sizes (as the CLI and the SavedModel trace it); an image with no
    hole computes no attention cell."""
    model = _generator("v2")
    spec = [tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, None, None, 1])]
    fn = tf.function(lambda x, m: model(x, m, hole_only=True)[1], input_signature=spec)
    image, mask = _image(2), _masks()["thin strokes"]
    hole = np.broadcast_to(mask[..., 0] > 0.5, (2, H, W))
    full = np.asarray(model(image, mask)[1])
    assert_parity(np.asarray(fn(image, mask))[hole], full[hole], ATOL["v2"], "dynamic")
    assert np.isfinite(np.asarray(fn(image, np.zeros_like(mask)))).all()
