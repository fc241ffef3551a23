"""PartialConv2D: parity with NVIDIA's PartialConv2d oracles, a float64 NumPy reference, and
the standard layer checks. Masks here are in NVIDIA's convention (1 = valid)."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.layers import PartialConv2D, hole_mask_from_valid_mask, valid_mask_from_hole_mask
from deepfill_tf.testing import run_layer_test
from deepfill_tf.testing.parity import assert_parity

ORACLE_FILES = [
    "chain_multi_k7s2p3_k5s2p2_bias.npz",
    "multi_k3s1p1_bias.npz",
    "multi_k3s1p1_bias_softmask.npz",
    "multi_k3s1p1_nobias.npz",
    "multi_k3s1p2d2_bias.npz",
    "multi_k5s2p2_bias_odd.npz",
    "multi_k7s2p3_bias.npz",
    "multi_k7s2p3_nobias.npz",
    "nomask_k3s1p1_bias.npz",
    "nomask_k7s2p3_nobias.npz",
    "single_k3s1p1_bias.npz",
    "single_k3s1p1_nobias.npz",
    "single_k7s2p3_bias.npz",
]
ATOL = RTOL = 1e-5  # MANIFEST: outputs; binary update masks must match exactly


def assert_close(actual, expected, what, atol=ATOL, rtol=RTOL):
    """``assert_parity`` with this file's default tolerances."""
    assert_parity(actual, expected, atol, what, rtol=rtol)


def layer_from_oracle(data, i: int, **kwargs) -> tuple[PartialConv2D, list[np.ndarray]]:
    cin, cout, k, s, p, d, has_bias, multi = (int(v) for v in data[f"layer_{i}_params"])
    layer = PartialConv2D(
        cout, k, strides=s, padding=p, dilation_rate=d, use_bias=bool(has_bias),
        multi_channel=bool(multi), **kwargs,
    )  # fmt: skip
    suffix = f"_{i}" if int(data["num_layers"]) > 1 else ""
    weights = [data["kernel_hwio" + suffix]]
    if has_bias:
        weights.append(data["bias" + suffix])
    return layer, weights


def run_oracle_layer(data, i, x, mask):
    layer, weights = layer_from_oracle(data, i)
    layer.build(x.shape)
    layer.set_weights(weights)  # [kernel (kh, kw, in, out), bias]
    out, update = layer(x, mask) if mask is not None else layer(x)
    return np.asarray(out), np.asarray(update)


def expected_update(data, suffix, batch):
    # Without a mask NVIDIA returns a batch-1 update mask; ours is broadcast over the batch.
    want = data["update_mask_nhwc" + suffix]
    return np.broadcast_to(want, (batch, *want.shape[1:]))


@pytest.mark.parametrize("name", ORACLE_FILES)
def test_oracle_parity(oracles, name):
    """Every public oracle; chained files feed layer 1's output and update mask to layer 2."""
    folder = oracles("pconv")
    data = np.load(folder / name)
    soft = "softmask" in name
    x = data["input_nhwc"]
    mask = data["mask_nhwc"] if "mask_nhwc" in data.files else None
    errors = []
    for i in range(int(data["num_layers"])):
        suffix = f"_{i}" if int(data["num_layers"]) > 1 else ""
        out, update = run_oracle_layer(data, i, x, mask)
        errors.append(assert_close(out, data["output_nhwc" + suffix], f"{name} output{suffix}"))
        errors.append(
            assert_close(
                update,
                expected_update(data, suffix, out.shape[0]),
                f"{name} update mask{suffix}",
                atol=1e-6 if soft else 0.0,
                rtol=0.0,
            )
        )
        x, mask = out, update  # the UNet chains our own outputs
    print(f"{name}: max |err| output/update per layer = {errors}")


def test_oracle_chain_second_layer_from_stored_inputs(oracles):
    """Layer 2 of the chain fed with the oracle's own layer-1 tensors (no error accumulation)."""
    data = np.load(oracles("pconv") / "chain_multi_k7s2p3_k5s2p2_bias.npz")
    out, update = run_oracle_layer(data, 1, data["output_nhwc_0"], data["update_mask_nhwc_0"])
    assert_close(out, data["output_nhwc_1"], "chain layer 2 output")
    assert_close(update, data["update_mask_nhwc_1"], "chain layer 2 update mask", 0.0, 0.0)


def test_tf_same_padding_does_not_reproduce_stride2_even(oracles):
    """Fact 4: TF 'same' is asymmetric for stride 2 on even sizes, hence explicit padding."""
    data = np.load(oracles("pconv") / "multi_k7s2p3_bias.npz")
    layer = PartialConv2D(6, 7, strides=2, padding="same", multi_channel=True)
    layer.build(data["input_nhwc"].shape)
    layer.set_weights([data["kernel_hwio"], data["bias"]])
    out, _ = layer(data["input_nhwc"], data["mask_nhwc"])
    assert np.abs(np.asarray(out) - data["output_nhwc"]).max() > 1e-2


# --- float64 NumPy restatement of NVIDIA's forward pass ------------------------------------


def numpy_pconv(x, mask, kernel, bias, stride, pad, dil, multi):
    """x (B,H,W,Cin), mask (B|1,H,W,1|Cin) or None, kernel (kh,kw,Cin,Cout); float64."""
    x = x.astype(np.float64)
    kh, kw, cin, cout = kernel.shape
    m = np.ones((1, *x.shape[1:3], cin if multi else 1)) if mask is None else mask
    xm = x if mask is None else x * m
    pads = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    xp, mp = np.pad(xm, pads), np.pad(m.astype(np.float64), pads)
    ho = (x.shape[1] + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (x.shape[2] + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    raw = np.zeros((x.shape[0], ho, wo, cout))
    count = np.zeros((m.shape[0], ho, wo, 1))
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dil, i * dil + stride * (ho - 1) + 1, stride)
            cols = slice(j * dil, j * dil + stride * (wo - 1) + 1, stride)
            raw += xp[:, rows, cols, :] @ kernel[i, j].astype(np.float64)
            count += mp[:, rows, cols, :].sum(-1, keepdims=True)
    update = np.clip(count, 0, 1)
    ratio = m.shape[-1] * kh * kw / (count + 1e-8) * update
    out = raw * ratio if bias is None else (raw * ratio + bias) * update
    update = np.broadcast_to(update, (out.shape[0], ho, wo, cout if multi else 1))
    return out, update


def random_mask(rng, shape, soft=False):
    """Random pinholes plus a big hole (windows with no valid pixel) touching the border."""
    m = (rng.random(shape) > 0.2).astype(np.float32)
    m[:, : shape[1] // 2, : shape[2] // 2, :] = 0.0
    if soft:
        m *= rng.uniform(0.05, 1.0, shape).astype(np.float32)
    return m


# (H, W, Cin, Cout, k, stride, pad, dilation, bias, multi, mask kind)
NUMPY_CASES = {
    "stride2_even": (16, 16, 3, 4, 7, 2, 3, 1, True, True, "binary"),
    "stride2_odd": (15, 13, 2, 3, 5, 2, 2, 1, True, False, "binary"),
    "dilation2": (12, 11, 3, 2, 3, 1, 2, 2, True, True, "binary"),
    "stride2_dilation2": (14, 14, 2, 3, 3, 2, 2, 2, True, True, "binary"),
    "soft_nobias": (10, 10, 3, 2, 3, 1, 1, 1, False, True, "soft"),
    "soft_single": (10, 9, 2, 2, 3, 1, 1, 1, True, False, "soft"),
    "nomask_multi": (12, 12, 2, 3, 5, 2, 2, 1, True, True, "none"),
}


@pytest.mark.parametrize("case", sorted(NUMPY_CASES))
def test_matches_numpy_float64(case):
    h, w, cin, cout, k, s, p, d, has_bias, multi, kind = NUMPY_CASES[case]
    rng = np.random.default_rng(sorted(NUMPY_CASES).index(case))
    x = rng.standard_normal((2, h, w, cin)).astype(np.float32)
    kernel = rng.standard_normal((k, k, cin, cout)).astype(np.float32) * 0.3
    bias = rng.standard_normal(cout).astype(np.float32) if has_bias else None
    mask = (
        None if kind == "none" else random_mask(rng, (2, h, w, cin if multi else 1), kind == "soft")
    )

    layer = PartialConv2D(
        cout, k, strides=s, padding=p, dilation_rate=d, use_bias=has_bias, multi_channel=multi
    )
    layer.build(x.shape)
    layer.set_weights([kernel] + ([bias] if has_bias else []))
    out, update = layer(x, mask)
    want_out, want_update = numpy_pconv(x, mask, kernel, bias, s, p, d, multi)
    assert_close(out, want_out, f"{case} output")
    assert_close(update, want_update, f"{case} update mask", atol=1e-6, rtol=0.0)
    assert tuple(out.shape) == tuple(layer.compute_output_shape(x.shape)[0])


# --- behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize("multi", [False, True])
def test_window_without_valid_pixel_is_exactly_zero(multi):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 12, 12, 3)).astype(np.float32)
    mask = np.ones((1, 12, 12, 3 if multi else 1), np.float32)
    mask[:, 2:9, 2:9, :] = 0.0  # 7x7 hole: 3x3 windows centred in rows/cols 3..7 see nothing
    layer = PartialConv2D(4, 3, padding=1, multi_channel=multi, bias_initializer="ones")
    out, update = (np.asarray(t) for t in layer(x, mask))
    assert np.all(out[:, 3:8, 3:8, :] == 0.0), "a window with no valid pixel must give 0, not bias"
    assert np.all(update[:, 3:8, 3:8, :] == 0.0)
    assert np.all(update[:, :2, :, :] == 1.0) and np.all(out[:, 0, 0, :] != 0.0)
    assert update.shape == (1, 12, 12, 4 if multi else 1)


def test_no_mask_is_partial_conv_padding():
    """layer(x) == layer(x, None) == layer(x, ones); interior = plain conv + bias."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    layer = PartialConv2D(2, 3, padding=1, bias_initializer="ones")
    out, update = layer(x)
    out_none, _ = layer(x, None)
    out_ones, _ = layer(x, np.ones((2, 8, 8, 1), np.float32))
    assert_close(out, out_none, "layer(x) vs layer(x, None)", 0.0, 0.0)
    assert_close(out, out_ones, "layer(x) vs layer(x, ones)", 1e-6, 0.0)
    assert update.shape == (2, 8, 8, 1) and np.all(np.asarray(update) == 1.0)
    plain = tf.nn.conv2d(x, layer.kernel, 1, "SAME") + layer.bias
    assert_close(out[:, 1:-1, 1:-1], plain[:, 1:-1, 1:-1], "interior vs plain conv")
    # Corner: 4 of 9 taps inside the image, so the bias-free response is scaled by 9/4.
    assert_close(out[:, 0, 0] - 1.0, (plain[:, 0, 0] - 1.0) * 9 / 4, "corner ratio 9/4")


def test_no_gradient_through_mask():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((1, 8, 8, 2)).astype(np.float32))
    mask = tf.constant(random_mask(rng, (1, 8, 8, 2), soft=True))
    layer = PartialConv2D(3, 3, padding=1, multi_channel=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, mask])
        out, update = layer(x, mask)
        loss = tf.reduce_sum(out) + tf.reduce_sum(update)
    for g in (tape.gradient(loss, mask), tape.gradient(update, mask)):
        assert g is None or not np.any(np.asarray(g)), "gradient leaked through the mask path"
    assert tape.gradient(loss, x) is not None


@pytest.mark.parametrize(
    "kwargs, with_mask",
    [
        ({"padding": 1}, True),
        ({"kernel_size": 5, "strides": 2, "padding": 2, "multi_channel": True}, True),
        ({"strides": 2, "padding": 2, "dilation_rate": 2, "use_bias": False}, False),
        ({"padding": "same"}, False),
    ],
)
def test_layer_harness(kwargs, with_mask):
    kwargs = {"kernel_size": 3, **kwargs}
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    channels = 3 if kwargs.get("multi_channel") else 1
    inputs = [x, random_mask(rng, (2, 8, 8, channels))] if with_mask else [x]
    size = 4 if kwargs.get("strides") == 2 else 8
    update_channels = 4 if kwargs.get("multi_channel") else 1
    run_layer_test(
        lambda: PartialConv2D(4, **kwargs),
        inputs,
        [(2, size, size, 4), (2, size, size, update_channels)],
    )


def test_string_padding_matches_int_where_tf_same_is_symmetric():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 9, 9, 2)).astype(np.float32)
    mask = random_mask(rng, (1, 9, 9, 1))
    results = {}
    for padding in (2, "same", 0, "valid"):
        layer = PartialConv2D(3, 5, strides=2, padding=padding, kernel_initializer="ones")
        results[padding] = [np.asarray(t) for t in layer(x, mask)]
    for a, b in ((2, "same"), (0, "valid")):  # odd size: TF 'same' pads 2 and 2 here
        assert_close(results[a][0], results[b][0], f"padding {a} vs {b!r}")
        assert_close(results[a][1], results[b][1], f"update mask {a} vs {b!r}", 0.0, 0.0)
    assert results["valid"][0].shape == (1, 3, 3, 3)


def test_functional_model_and_mask_broadcast():
    x_in = keras.Input((8, 8, 3))
    m_in = keras.Input((8, 8, 3))
    out, update = PartialConv2D(4, 3, strides=2, padding=1, multi_channel=True, name="pconv1")(
        x_in, valid_mask=m_in
    )
    model = keras.Model([x_in, m_in], [out, update])
    assert tuple(out.shape) == (None, 4, 4, 4) and tuple(update.shape) == (None, 4, 4, 4)
    assert [w.path for w in model.weights] == ["pconv1/kernel", "pconv1/bias"]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    mask = random_mask(rng, (1, 8, 8, 3))
    layer = model.get_layer("pconv1")
    got = layer(x, np.broadcast_to(mask, x.shape).copy())
    broadcast = layer(x, mask)  # a batch-1 mask broadcasts over B, as in NVIDIA's layer
    assert_close(broadcast[0], got[0], "batch-1 mask broadcast", 1e-6, 0.0)
    assert_close(model([x, np.broadcast_to(mask, x.shape)])[0], got[0], "functional", 1e-6, 0.0)


def test_mixed_float16_holes_stay_zero_and_finite():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 8, 8, 2)).astype(np.float32)
    mask = np.ones((1, 8, 8, 2), np.float32)
    mask[:, :5, :5, :] = 0.0
    layer = PartialConv2D(2, 3, padding=1, multi_channel=True, dtype="mixed_float16")
    out, update = (np.asarray(t) for t in layer(x, mask))
    assert out.dtype == np.float16 and np.all(np.isfinite(out))
    assert np.all(out[:, :4, :4, :] == 0.0) and np.all(update[:, :4, :4, :] == 0.0)


def test_wrong_mask_channels_is_a_clear_error():
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match=r"expects a valid_mask with 3 channel\(s\), got 1"):
        PartialConv2D(2, 3, padding=1, multi_channel=True)(x, np.ones((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"expects a valid_mask with 1 channel\(s\), got 3"):
        PartialConv2D(2, 3, padding=1)(x, np.ones((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="padding must be"):
        PartialConv2D(2, 3, padding="reflect")


def test_mask_convention_helpers():
    hole = np.zeros((1, 4, 4, 1), np.float32)
    hole[:, 1:3, 1:3] = 1.0
    valid = np.asarray(valid_mask_from_hole_mask(hole))
    assert valid.dtype == np.float32 and valid.sum() == 12 and np.all(valid[:, 1:3, 1:3] == 0)
    assert np.array_equal(np.asarray(hole_mask_from_valid_mask(valid)), hole)
    as_uint8 = np.asarray(valid_mask_from_hole_mask(hole.astype(np.uint8)))
    assert as_uint8.dtype == np.float32 and np.array_equal(as_uint8, valid)


def test_all_public_oracles_are_covered(oracles):
    folder: pathlib.Path = oracles("pconv")
    assert sorted(p.name for p in folder.glob("*.npz")) == sorted(ORACLE_FILES)
