"""DeepFill generators at test width: shapes, harness checks, names of the original scopes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepfill_tf.convert import tf1_variable_table
from deepfill_tf.layers.gen_conv import GenConv2D, GenDeconv2D
from deepfill_tf.models.deepfill_generator import DeepFillV1Generator, DeepFillV2Generator
from deepfill_tf.testing import run_layer_test, run_model_test

RNG = np.random.default_rng(0)


def _inputs(batch=2, h=64, w=48, channels=3):
    x = RNG.uniform(-1, 1, (batch, h, w, channels)).astype(np.float32)
    mask = np.zeros((1, h, w, 1), np.float32)
    mask[:, h // 4 : h // 2, w // 4 : w // 2 + 8] = 1
    return x, mask


def test_gen_conv_gated_halves_channels_and_ungated_keeps_them():
    x = RNG.normal(size=(2, 16, 12, 5)).astype(np.float32)
    run_layer_test(lambda: GenConv2D(8, 3, gated=True), x, (2, 16, 12, 4))
    run_layer_test(lambda: GenConv2D(8, 3, strides=2), x, (2, 8, 6, 8))
    run_layer_test(lambda: GenConv2D(8, 3, dilation_rate=4, activation="relu"), x, (2, 16, 12, 8))
    # the 3-channel output conv is never gated
    run_layer_test(lambda: GenConv2D(3, 3, gated=True, activation=None), x, (2, 16, 12, 3))
    run_layer_test(lambda: GenDeconv2D(8, gated=True, name="up"), x, (2, 32, 24, 4))


def test_gated_conv_formula():
    x = RNG.normal(size=(1, 6, 6, 2)).astype(np.float32)
    layer = GenConv2D(4, 1, gated=True)
    out = layer(x).numpy()
    kernel, bias = (w.numpy() for w in layer.weights)
    y = x @ kernel[0, 0] + bias
    features, gate = y[..., :2], y[..., 2:]
    elu = np.where(features > 0, features, np.expm1(np.minimum(features, 0)))
    np.testing.assert_allclose(out, elu / (1 + np.exp(-gate)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gated", [False, True])
def test_deconv_repeats_pixels_then_convolves(gated):
    # GenDeconv2D computes one transposed conv of x with a folded kernel (ops/upsample_conv.py);
    # it must equal the original: repeat every pixel twice, then the 3x3 SAME conv.
    x = RNG.normal(size=(2, 3, 5, 6)).astype(np.float32)
    layer = GenDeconv2D(8, gated=gated, name="conv13_upsample")
    layer(x)
    layer.conv.bias.assign(RNG.normal(size=8).astype(np.float32))
    up = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(layer(x), layer.conv(up), rtol=1e-5, atol=1e-5)
    assert layer.conv.kernel.path == "conv13_upsample/conv13_upsample_conv/kernel"


@pytest.mark.parametrize("size", [(1, 1), (4, 4), (5, 7)])
def test_upsample_conv_values_and_gradients_equal_the_upsampled_conv(size):
    import tensorflow as tf

    from deepfill_tf.ops.resize import resize_nearest_align_corners
    from deepfill_tf.ops.upsample_conv import upsample2x_conv3x3

    x = tf.constant(RNG.normal(size=(2, *size, 3)), tf.float32)
    kernel = tf.constant(RNG.normal(size=(3, 3, 3, 4)), tf.float32)

    def reference(x, kernel):
        return tf.nn.conv2d(resize_nearest_align_corners(x, scale=2), kernel, 1, "SAME")

    grads = []
    for fn in (reference, upsample2x_conv3x3):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = fn(x, kernel)
            loss = tf.reduce_sum(y * tf.cos(y))
        grads.append((y, *tape.gradient(loss, [x, kernel])))
    assert grads[1][0].shape == (2, 2 * size[0], 2 * size[1], 4)
    for want, got in zip(*grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "factory, channels",
    [
        (DeepFillV1Generator.tiny, 3),
        (DeepFillV2Generator.tiny, 3),
        (lambda: DeepFillV2Generator.tiny(guided=True), 4),
    ],
)
def test_tiny_generators(factory, channels):
    x, mask = _inputs(channels=channels)
    outs = run_model_test(factory, [x, mask], [(2, 64, 48, 3), (2, 64, 48, 3), (2, 16, 12, 3)])
    x1, x2, flow = outs
    assert np.abs(x1).max() <= 1 and np.abs(x2).max() <= 1 and np.abs(flow).max() <= 1


def test_hole_pixels_do_not_influence_the_output():
    model = DeepFillV2Generator.tiny()
    x, mask = _inputs(batch=1)
    noisy = x + mask * RNG.normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(model(x, mask)[1], model(noisy, mask)[1])


def test_generator_gradients_reach_every_weight():
    import tensorflow as tf

    model = DeepFillV2Generator.tiny()
    x, mask = _inputs(batch=1)
    with tf.GradientTape() as tape:
        x1, x2, _ = model(x, mask)
        loss = tf.reduce_mean(tf.abs(x1 - x)) + tf.reduce_mean(tf.abs(x2 - x))
    grads = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, grads, strict=False) if g is None]
    assert not missing, missing


@pytest.mark.parametrize(
    "version, factory",
    [("deepfill_v1", DeepFillV1Generator), ("deepfill_v2", DeepFillV2Generator)],
)
def test_published_width_has_the_original_variable_names_and_shapes(oracles, version, factory):
    table = json.loads((oracles(version) / "variables.json").read_text())
    want = {v["name"]: tuple(v["shape"]) for v in table if v["name"].startswith("inpaint_net/")}
    model = factory().build_for(64, 64)
    got = {name: tuple(v.shape) for name, v in tf1_variable_table(model).items()}
    assert got == want
