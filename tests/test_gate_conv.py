"""GateConv2D / GateDeconv2D: parity with the original SC-FEGAN ops.py (oracles/scfegan)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.convert import assign_strict, load_tf1_checkpoint, read_tf1_checkpoint
from deepfill_tf.errors import CheckpointError
from deepfill_tf.layers import GateConv2D, GateDeconv2D
from deepfill_tf.testing import run_layer_test
from deepfill_tf.testing.parity import assert_parity

LAYER_ATOL = 1e-5  # MANIFEST tolerance for the layer files

# Oracle file -> constructor arguments reproducing the original call (see MANIFEST.md).
GATE_CONV_FILES = {
    "gconv_k7s2_nolrn": dict(filters=8, kernel_size=7, strides=2, use_lrn=False),
    "gconv_k5s2_lrn": dict(filters=16, kernel_size=5, strides=2),
    "gconv_k3s1_lrn": dict(filters=13, kernel_size=3),
    "gconv_k3s1_rate2_lrn": dict(filters=12, kernel_size=3, dilation_rate=2),
    "gconv_k3s1_rate4_lrn": dict(filters=6, kernel_size=3, dilation_rate=4),
    "gconv_k3s1_linear_nolrn": dict(filters=3, kernel_size=3, use_lrn=False, activation=None),
    "gconv_k3s2_lrn_odd": dict(filters=7, kernel_size=3, strides=2),
    "gconv_k3s1_symmetric": dict(filters=5, kernel_size=3, padding="symmetric"),
}
GATE_DECONV_FILES = {
    "gdeconv_k5s2": dict(filters=8),
    "gdeconv_k5s2_to3": dict(filters=3),
    "gdeconv_k5s2_nonsquare": dict(filters=4),
}
ALL_FILES = {**GATE_CONV_FILES, **GATE_DECONV_FILES}


def _layer(name):
    cls = GateDeconv2D if name.startswith("gdeconv") else GateConv2D
    return cls(name=name, **ALL_FILES[name])


def _weights_in_documented_order(data, name):
    if name.startswith("gdeconv"):
        return [data[f"var/{name}/{k}"] for k in ("w", "biases1", "biases2")]
    return [
        data[f"var/{name}/kernel"],
        data[f"var/{name}/bias"],
        data[f"var/{name}_g/kernel"],
        data[f"var/{name}_g/bias"],
    ]


def test_every_oracle_file_is_covered(oracles):
    names = {p.stem for p in oracles("scfegan").glob("g*conv_*.npz")}
    assert names == set(ALL_FILES)


@pytest.mark.parametrize("name", sorted(ALL_FILES))
def test_parity_with_set_weights(oracles, name):
    data = np.load(oracles("scfegan") / f"{name}.npz")
    layer = _layer(name)
    layer(data["input_nhwc"])
    layer.set_weights(_weights_in_documented_order(data, name))
    output, gate = layer(data["input_nhwc"], return_gate=True)
    assert_parity(output, data["output_nhwc"], LAYER_ATOL, f"{name} output")
    assert_parity(gate, data["gate_nhwc"], LAYER_ATOL, f"{name} gate")
    assert_parity(layer(data["input_nhwc"]), data["output_nhwc"], LAYER_ATOL, f"{name} default")


@pytest.mark.parametrize("name", sorted(ALL_FILES))
def test_parity_loading_gate_layers_ckpt_by_name(oracles, name):
    folder = oracles("scfegan")
    data = np.load(folder / f"{name}.npz")
    layer = _layer(name)
    layer(data["input_nhwc"])
    load_tf1_checkpoint(layer, str(folder / "gate_layers.ckpt"))
    output, gate = layer(data["input_nhwc"], return_gate=True)
    assert_parity(output, data["output_nhwc"], LAYER_ATOL, f"{name} output (ckpt)")
    assert_parity(gate, data["gate_nhwc"], LAYER_ATOL, f"{name} gate (ckpt)")


def test_tf1_names_of_gate_conv_and_deconv():
    conv = GateConv2D(4, 3, name="gconv8")
    conv.build((1, 8, 8, 2))
    assert list(conv.tf1_variable_table("generator/gconv8")) == [
        "generator/gconv8/kernel",
        "generator/gconv8/bias",
        "generator/gconv8_g/kernel",
        "generator/gconv8_g/bias",
    ]
    assert [v.path for v in conv.weights] == [
        "gconv8/kernel",
        "gconv8/bias",
        "gconv8/gate_kernel",
        "gconv8/gate_bias",
    ]
    deconv = GateDeconv2D(4, name="deconv1")
    deconv.build((1, 8, 8, 2))
    assert list(deconv.tf1_variable_table()) == ["deconv1/w", "deconv1/biases1", "deconv1/biases2"]
    assert [tuple(w.shape) for w in deconv.weights] == [(5, 5, 4, 2), (4,), (4,)]


def test_strict_loading_rejects_a_mis_shaped_layer(oracles):
    source = read_tf1_checkpoint(str(oracles("scfegan") / "gate_layers.ckpt"))
    layer = GateConv2D(4, 3, name="gconv_k3s1_lrn")  # the checkpoint has 13 filters
    layer.build((1, 12, 12, 6))
    with pytest.raises(CheckpointError, match="mis-shaped gconv_k3s1_lrn/bias"):
        assign_strict(layer.tf1_variable_table(), source, scopes=["gconv_k3s1_lrn"])


def _lrn_reference(x):
    """NumPy float64 restatement of tf.nn.lrn(x, depth_radius=5, bias=5e-5, alpha=1, beta=.5)."""
    x = x.astype(np.float64)
    c = x.shape[-1]
    out = np.empty_like(x)
    for i in range(c):
        window = x[..., max(0, i - 5) : min(c, i + 6)]
        out[..., i] = x[..., i] / np.sqrt(5e-5 + np.sum(window**2, axis=-1))
    return out


def test_feature_branch_is_lrn_then_leaky_relu_times_independent_gate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 5, 5, 3)).astype(np.float32)
    layer = GateConv2D(14, 1)
    layer.build(x.shape)
    kernel, gate_kernel = rng.normal(size=(2, 1, 1, 3, 14)).astype(np.float32)
    bias, gate_bias = rng.normal(size=(2, 14)).astype(np.float32)
    layer.set_weights([kernel, bias, gate_kernel, gate_bias])
    feature = _lrn_reference(x @ kernel[0, 0] + bias)
    feature = np.where(feature > 0, feature, 0.2 * feature)
    gate = 1 / (1 + np.exp(-(x.astype(np.float64) @ gate_kernel[0, 0] + gate_bias)))
    output, got_gate = layer(x, return_gate=True)
    assert_parity(got_gate, gate, 1e-6, "gate")
    assert_parity(output, feature * gate, 1e-6, "output")


def test_gate_deconv_is_bug_compatible_and_biases2_is_dead():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 3, 3, 4)).astype(np.float32)
    layer = GateDeconv2D(2)
    out = layer(x)
    w, b1, b2 = layer.get_weights()
    layer.set_weights([w, b1, b2 + 3.0])
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(out))
    y, gate = layer(x, return_gate=True)
    # output = y * sigmoid(y) with y = leaky_relu(deconv(x) + biases1): gate = sigmoid(feature).
    feature = np.asarray(y) / np.asarray(gate)
    np.testing.assert_allclose(np.asarray(gate), 1 / (1 + np.exp(-feature)), atol=1e-6)
    assert [w.name for w in layer.trainable_weights] == ["w", "biases1"]


@pytest.mark.parametrize("gating, n_weights", [("shared_kernel", 3), ("separate", 4)])
def test_gate_deconv_alternative_gatings_use_biases2(gating, n_weights):
    x = np.random.default_rng(2).normal(size=(1, 3, 3, 4)).astype(np.float32)
    layer = GateDeconv2D(2, gating=gating)
    out = np.asarray(layer(x))
    assert len(layer.weights) == len(layer.trainable_weights) == n_weights
    weights = layer.get_weights()
    weights[2] = weights[2] + 3.0
    layer.set_weights(weights)
    assert np.abs(np.asarray(layer(x)) - out).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(filters=12, kernel_size=3, strides=2), (2, 5, 4, 12)),
        (dict(filters=4, kernel_size=3, dilation_rate=2), (2, 9, 8, 4)),
        (dict(filters=3, kernel_size=3, use_lrn=False, activation=None), (2, 9, 8, 3)),
        (dict(filters=4, kernel_size=3, padding="symmetric"), (2, 7, 6, 4)),
    ],
)
def test_gate_conv_harness(kwargs, shape):
    x = np.random.default_rng(3).normal(size=(2, 9, 8, 5)).astype(np.float32)
    run_layer_test(lambda: GateConv2D(**kwargs), x, shape)
    run_layer_test(
        lambda: GateConv2D(**kwargs), x, [shape, shape], call_kwargs={"return_gate": True}
    )


@pytest.mark.parametrize("gating", ["self", "shared_kernel", "separate"])
def test_gate_deconv_harness(gating):
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 6)).astype(np.float32)
    shape = (2, 6, 8, 5)
    run_layer_test(lambda: GateDeconv2D(5, gating=gating), x, shape)
    run_layer_test(
        lambda: GateDeconv2D(5, gating=gating), x, [shape, shape], call_kwargs={"return_gate": True}
    )


@pytest.mark.parametrize("factory", [lambda: GateConv2D(4, 3, strides=2), lambda: GateDeconv2D(4)])
def test_gradients_reach_the_input(factory):
    layer = factory()
    x = tf.constant(np.random.default_rng(5).normal(size=(1, 4, 4, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) ** 2)
    grad = tape.gradient(loss, x)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="activation"):
        GateConv2D(4, 3, activation="elu")
    with pytest.raises(ValueError, match="padding"):
        GateConv2D(4, 3, padding="reflect")
    with pytest.raises(ValueError, match="dilation"):
        GateConv2D(4, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="gating"):
        GateDeconv2D(4, gating="paper")
