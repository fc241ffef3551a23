"""ContextualAttention: oracle parity (DeepFill v1/v2), a float64 loop-based NumPy reference
written from shared/reference/deepfill.md, the original's TF op graph (gradients), the shared
layer harness, dynamic shapes and degenerate masks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.layers import ContextualAttention
from deepfill_tf.layers.contextual_attention import (
    _chunk_rows,
    _make_colour_wheel,
    flow_to_colour,
    single_pass_bytes,
)
from deepfill_tf.ops.resize import resize_nearest_align_corners
from deepfill_tf.testing import run_layer_test
from deepfill_tf.testing.parity import assert_parity

ATOL_ORACLE = 2e-4  # MANIFEST: contextual-attention tensors (attention, flow, output)
KEYS = ("mask_s8", "mm", "attention", "argmax", "offsets", "flow", "output")


def assert_close(actual, expected, what, atol, rtol=0.0):
    """``assert_parity`` in this file's argument order; returns the max abs error."""
    return assert_parity(actual, expected, atol, what, rtol=rtol) if np.size(expected) else 0.0


# ------------------------------------------------------------------ float64 NumPy reference
def _nn_align_corners(x, out_h, out_w):
    """Facts: src = min(round_half_away(dst * float32((n_in - 1) / (n_out - 1))), n_in - 1)."""

    def src(n_in, n_out):
        s = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0.0)
        return [
            min(int(np.floor(np.float32(i) * s + np.float32(0.5))), n_in - 1) for i in range(n_out)
        ]

    return x[:, src(x.shape[1], out_h)][:, :, src(x.shape[2], out_w)]


def _colour_picture(offsets):
    """Middlebury colours of (B, hs, ws, 2) int offsets, dy as u, running max radius."""
    wheel = _make_colour_wheel()
    out, max_rad = [], -1.0
    for sample in offsets:
        u, v = sample[..., 0].astype(np.float64), sample[..., 1].astype(np.float64)
        max_rad = max(max_rad, float(np.sqrt(u**2 + v**2).max()))
        u, v = u / (max_rad + np.finfo(float).eps), v / (max_rad + np.finfo(float).eps)
        rad = np.sqrt(u**2 + v**2)
        fk = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (len(wheel) - 1) + 1
        k0 = np.floor(fk).astype(int)
        k1 = np.where(k0 + 1 == len(wheel) + 1, 1, k0 + 1)
        frac = fk - k0
        picture = np.zeros(u.shape + (3,))
        for c in range(3):
            col = (1 - frac) * (wheel[k0 - 1, c] / 255) + frac * (wheel[k1 - 1, c] / 255)
            col = np.where(rad <= 1, 1 - rad * (1 - col), col * 0.75)
            picture[..., c] = np.floor(255 * col)
        out.append(picture)
    return np.stack(out) / 127.5 - 1


def _upsample(x, rate, mode):
    """x rate resize with align_corners=True: nearest (repeat) or bilinear."""
    if mode == "nearest":
        return x.repeat(rate, axis=1).repeat(rate, axis=2)
    for axis in (1, 2):
        n_in = x.shape[axis]
        n_out = n_in * rate
        pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        t = (pos - lo).reshape([-1 if a == axis else 1 for a in range(4)])
        x = np.take(x, lo, axis=axis) * (1 - t) + np.take(x, hi, axis=axis) * t
    return x


def reference(f, b, hole_mask, rate=2, ksize=3, scale=10.0, fuse=True, flow_resize="bilinear"):
    """Contextual attention in float64, one sample at a time, literally from the facts."""
    f, b, hole_mask = (np.asarray(a, np.float64) for a in (f, b, hole_mask))
    batch, h, w, channels = f.shape
    hs, ws = h // rate, w // rate
    n = hs * ws
    f_s, b_s = _nn_align_corners(f, hs, ws), _nn_align_corners(b, hs, ws)
    mask_s = _nn_align_corners(hole_mask, hs, ws)
    pad = (ksize - 1) // 2

    def patch(x, cell):  # ksize x ksize window around a 1/rate cell, zero outside
        out = np.zeros((ksize, ksize, x.shape[-1]))
        for a in range(ksize):
            for c in range(ksize):
                y, xx = cell // ws + a - pad, cell % ws + c - pad
                if 0 <= y < hs and 0 <= xx < ws:
                    out[a, c] = x[y, xx]
        return out

    col_major = np.array([(q % hs) * ws + q // hs for q in range(n)])  # column-major -> row-major

    def diagonal_fuse(m):  # 1-channel 3x3 identity conv, SAME, over the flattened indices
        out = m.copy()
        out[1:, 1:] += m[:-1, :-1]
        out[:-1, :-1] += m[1:, 1:]
        return out

    result = {k: [] for k in ("mm", "attention", "argmax", "offsets", "output")}
    for i in range(batch):
        sample_mask = mask_s[i if mask_s.shape[0] > 1 else 0]
        mm = np.array([float(patch(sample_mask, cell).mean() == 0) for cell in range(n)])
        kernels = [patch(b_s[i], cell) for cell in range(n)]
        kernels = [k / max(np.sqrt((k**2).sum()), 1e-4) for k in kernels]
        score = np.array(
            [[(patch(f_s[i], p) * kernels[q]).sum() for q in range(n)] for p in range(n)]
        )
        if fuse:
            score = diagonal_fuse(score)
            fused = diagonal_fuse(score[np.ix_(col_major, col_major)])
            score = np.zeros_like(score)
            score[np.ix_(col_major, col_major)] = fused
        logits = scale * score * mm[None]
        att = np.exp(logits - logits.max(1, keepdims=True))
        att = att / att.sum(1, keepdims=True) * mm[None]
        best = att.argmax(1)
        cells = np.arange(n)
        offsets = np.stack([best // ws - cells // ws, best % ws - cells % ws], -1)
        # Paste: 2r x 2r patches of b (stride r, r//2 zero padding before), transposed conv, /4.
        k, pb = 2 * rate, rate // 2
        padded = np.zeros((h + rate, w + rate, channels))
        padded[pb : pb + h, pb : pb + w] = b[i]
        pieces = [
            padded[rate * (q // ws) : rate * (q // ws) + k, rate * (q % ws) : rate * (q % ws) + k]
            for q in range(n)
        ]
        out = np.zeros((h, w, channels))
        for p in range(n):
            acc = np.tensordot(att[p], np.stack(pieces), axes=1)
            for a in range(k):
                for c in range(k):
                    y, x = rate * (p // ws) + a - pb, rate * (p % ws) + c - pb
                    if 0 <= y < h and 0 <= x < w:
                        out[y, x] += acc[a, c]
        result["mm"].append(mm)
        result["attention"].append(att.reshape(hs, ws, n))
        result["argmax"].append(best.reshape(hs, ws))
        result["offsets"].append(offsets.reshape(hs, ws, 2))
        result["output"].append(out / 4)
    result = {key: np.stack(v) for key, v in result.items()}
    result["mm"] = result["mm"][: mask_s.shape[0]].reshape(mask_s.shape[0], 1, 1, n)
    result["mask_s8"] = mask_s
    result["flow"] = _upsample(_colour_picture(result["offsets"]), rate, flow_resize)
    return result


def _box_mask(batch, h, w, seed, per_sample, noise=0.03):
    """Rectangular holes (1 = hole) plus a few random hole pixels, (batch|1, h, w, 1)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((batch if per_sample else 1, h, w, 1), np.float32)
    for m in masks:
        y, x = rng.integers(0, h // 2 + 1), rng.integers(0, w // 2 + 1)
        m[y : y + h // 3 + 1, x : x + w // 3 + 1] = 1
        m[rng.random((h, w, 1)) < noise] = 1
    return masks


def _details(layer, f, b, m):
    return {k: v.numpy() for k, v in layer.details(f, b, m).items()}


# -------------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_oracle_parity(oracles, version):
    gen = oracles(version) / "gen"
    ca_in, mask_s4 = np.load(gen / "ca_in.npy"), np.load(gen / "mask_s4.npy")
    layer = ContextualAttention(flow_resize="nearest" if version == "deepfill_v1" else "bilinear")
    got = _details(layer, ca_in, ca_in, mask_s4)
    errors = {}
    names = ("mask_s8", "mm", "attention", "argmax", "offsets", "flow", "out")
    for key, name in zip(KEYS, names, strict=True):
        want = np.load(gen / f"ca_{name}.npy")
        assert got[key].dtype == want.dtype, f"{key}: dtype {got[key].dtype} != {want.dtype}"
        exact = key in ("mask_s8", "mm", "argmax", "offsets")
        errors[key] = assert_close(
            got[key], want, f"{version} {key}", 0.0 if exact else ATOL_ORACLE
        )
    print(f"{version} max abs errors:", {k: f"{v:.3g}" for k, v in errors.items()})
    y, flow = layer(ca_in, ca_in, mask_s4)
    np.testing.assert_array_equal(y.numpy(), got["output"], err_msg="call vs details output")
    np.testing.assert_array_equal(flow.numpy(), got["flow"], err_msg="call vs details flow")


# ---------------------------------------------------------------------- NumPy reference
@pytest.mark.parametrize(
    "shape, per_sample, kwargs",
    [
        ((2, 16, 12, 4), True, {}),
        ((2, 16, 12, 4), False, {"flow_resize": "nearest"}),
        ((3, 10, 14, 3), True, {}),  # odd 1/8 grid (5 x 7), batch 3: running max radius
        ((1, 4, 16, 2), False, {}),  # one-row-high grids
        ((1, 16, 2, 2), False, {}),
        ((2, 12, 10, 3), True, {"fuse": False}),
        ((2, 24, 27, 2), True, {"rate": 3, "ksize": 5}),
    ],
)
def test_matches_numpy_reference(shape, per_sample, kwargs):
    rng = np.random.default_rng(sum(shape))
    f = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    noise = 0.0 if kwargs.get("ksize", 3) > 3 else 0.03
    m = _box_mask(shape[0], shape[1], shape[2], seed=shape[1], per_sample=per_sample, noise=noise)
    got = _details(ContextualAttention(**kwargs), f, b, m)
    want = reference(f, b, m, **kwargs)
    assert 0 < want["mm"].mean() < 1, "test setup: want both valid and masked patches"
    for key in KEYS:
        exact = key in ("mask_s8", "mm", "argmax", "offsets")
        assert_close(got[key], want[key], key, 0.0 if exact else 2e-5, 0.0 if exact else 1e-5)


def test_same_input_and_relu_features():
    """DeepFill's case: f = b, non-negative features with all-zero patches (norm clamp)."""
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((1, 16, 16, 4)), 0).astype(np.float32)
    x[:, :6, :6] = 0.0  # zero patches: kernels divided by the 1e-4 floor
    m = _box_mask(1, 16, 16, seed=4, per_sample=False)
    got = _details(ContextualAttention(), x, x, m)
    want = reference(x, x, m)
    for key in KEYS:
        exact = key in ("mask_s8", "mm", "argmax", "offsets")
        assert_close(got[key], want[key], key, 0.0 if exact else 2e-5, 0.0 if exact else 1e-5)


# ---------------------------------------------- gradients vs the original's TF op graph
def _original_graph(f, b, hole_mask):
    """Batch 1, the original's ops: conv matching, conv fuse with transposes, softmax,
    conv2d_transpose paste. Differentiable with TF's own gradients."""
    _, h, w, c = f.shape
    hs, ws = h // 2, w // 2
    n = hs * ws

    def patches(x, k, stride):
        p = tf.image.extract_patches(x, [1, k, k, 1], [1, stride, stride, 1], [1, 1, 1, 1], "SAME")
        return tf.transpose(tf.reshape(p, [-1, k, k, x.shape[-1]]), [1, 2, 3, 0])  # k,k,C,L

    paste = patches(b, 4, 2)
    f_s, b_s, m_s = (resize_nearest_align_corners(x, size=(hs, ws)) for x in (f, b, hole_mask))
    kernels = patches(b_s, 3, 1)
    mm = tf.cast(tf.equal(tf.reduce_mean(patches(m_s, 3, 1), [0, 1, 2]), 0.0), tf.float32)
    kernels = kernels / tf.maximum(tf.sqrt(tf.reduce_sum(kernels**2, [0, 1, 2])), 1e-4)
    eye = tf.reshape(tf.eye(3), [3, 3, 1, 1])
    y = tf.nn.conv2d(f_s, kernels, 1, "SAME")
    y = tf.nn.conv2d(tf.reshape(y, [1, n, n, 1]), eye, 1, "SAME")
    y = tf.transpose(tf.reshape(y, [1, hs, ws, hs, ws]), [0, 2, 1, 4, 3])
    y = tf.nn.conv2d(tf.reshape(y, [1, n, n, 1]), eye, 1, "SAME")
    y = tf.transpose(tf.reshape(y, [1, ws, hs, ws, hs]), [0, 2, 1, 4, 3])
    y = tf.reshape(y, [1, hs, ws, n]) * mm
    y = tf.nn.softmax(y * 10.0, axis=3) * mm
    return tf.nn.conv2d_transpose(y, paste, [1, h, w, c], 2) / 4.0


@pytest.mark.parametrize(
    "shape, per_sample", [((1, 16, 12, 4), False), ((2, 10, 14, 3), True), ((1, 4, 4, 2), False)]
)
def test_gradients_match_original_graph(shape, per_sample):
    rng = np.random.default_rng(shape[1])
    f, b, weight = (tf.constant(rng.standard_normal(shape), tf.float32) for _ in range(3))
    m = tf.constant(_box_mask(shape[0], shape[1], shape[2], seed=1, per_sample=per_sample))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([f, b])
        ours = ContextualAttention()(f, b, m)[0]
        orig = [
            _original_graph(f[i : i + 1], b[i : i + 1], m[i : i + 1] if per_sample else m)
            for i in range(shape[0])
        ]
        orig = tf.concat(orig, 0)
        loss_ours, loss_orig = tf.reduce_sum(ours * weight), tf.reduce_sum(orig * weight)
    assert_close(ours, orig, "output vs the original's graph", 1e-5, 1e-5)
    for name, x in (("f", f), ("b", b)):
        got, want = tape.gradient(loss_ours, x), tape.gradient(loss_orig, x)
        assert got is not None, f"no gradient for {name}"
        scale = float(tf.reduce_max(tf.abs(want)))
        assert_close(got, want, f"d loss / d {name}", atol=1e-4 * max(scale, 1.0))


def test_gradient_inside_tf_function_dynamic_shapes():
    layer = ContextualAttention()
    spec = [tf.TensorSpec([None, None, None, 2])] * 3 + [tf.TensorSpec([None, None, None, 1])]

    @tf.function(input_signature=spec)
    def grads(f, b, weight, m):
        with tf.GradientTape() as tape:
            tape.watch([f, b])
            loss = tf.reduce_sum(layer(f, b, m)[0] * weight)
        return tape.gradient(loss, [f, b])

    rng = np.random.default_rng(2)
    f, b, weight = (rng.standard_normal((1, 8, 12, 2)).astype(np.float32) for _ in range(3))
    m = _box_mask(1, 8, 12, seed=3, per_sample=False)
    got = grads(f, b, weight, m)
    with tf.GradientTape() as tape:
        ff, bb = tf.constant(f), tf.constant(b)
        tape.watch([ff, bb])
        loss = tf.reduce_sum(_original_graph(ff, bb, tf.constant(m)) * weight)
    for name, g, w in zip("fb", got, tape.gradient(loss, [ff, bb]), strict=True):
        assert_close(
            g, w, f"d loss / d {name}", atol=1e-4 * max(float(tf.reduce_max(tf.abs(w))), 1)
        )


# ------------------------------------------------------------------- harness and shapes
def test_layer_harness():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((2, 8, 12, 3)).astype(np.float32)
    m = _box_mask(2, 8, 12, seed=2, per_sample=True)
    # No weights, so the harness skips its per-weight gradient check (covered above).
    out = run_layer_test(ContextualAttention, [f, f, m], [(2, 8, 12, 3), (2, 8, 12, 3)])
    assert np.isfinite(out[0]).all() and np.abs(out[1]).max() <= 1.0


def test_dynamic_shapes_in_tf_function():
    layer = ContextualAttention()
    spec = [tf.TensorSpec([None, None, None, 3])] * 2 + [tf.TensorSpec([None, None, None, 1])]
    fn = tf.function(layer, input_signature=spec)
    graph = fn.get_concrete_function().graph
    assert not {op.type for op in graph.get_operations()} & {
        "PyFunc",
        "EagerPyFunc",
        "PyFuncStateless",
    }
    rng = np.random.default_rng(1)
    for batch, h, w, per_sample in [(1, 8, 6, False), (3, 12, 10, True), (2, 16, 8, False)]:
        f = rng.standard_normal((batch, h, w, 3)).astype(np.float32)
        b = rng.standard_normal((batch, h, w, 3)).astype(np.float32)
        m = _box_mask(batch, h, w, seed=h, per_sample=per_sample)
        y, flow = fn(f, b, m)
        assert y.shape == (batch, h, w, 3) and flow.shape == (batch, h, w, 3)
        want = reference(f, b, m)
        assert_close(y, want["output"], f"output {batch, h, w}", 2e-5, 1e-5)
        assert_close(flow, want["flow"], f"flow {batch, h, w}", 2e-5)


def test_static_shape_inference_and_keras_functional():
    f_in = keras.Input((16, 12, 4))
    m_in = keras.Input((16, 12, 1))
    y, flow = ContextualAttention()(f_in, f_in, m_in)
    assert tuple(y.shape) == (None, 16, 12, 4) and tuple(flow.shape) == (None, 16, 12, 3)
    model = keras.Model([f_in, m_in], [y, flow])
    x = np.random.default_rng(0).standard_normal((2, 16, 12, 4)).astype(np.float32)
    m = _box_mask(2, 16, 12, seed=0, per_sample=True)
    assert_close(model([x, m])[0], reference(x, x, m)["output"], "functional model", 2e-5, 1e-5)


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_no_hole_and_all_hole_are_finite(fill):
    rng = np.random.default_rng(5)
    f = tf.constant(rng.standard_normal((2, 8, 8, 3)), tf.float32)
    m = tf.fill([1, 8, 8, 1], fill)
    with tf.GradientTape() as tape:
        tape.watch(f)
        d = ContextualAttention().details(f, f, m)
        loss = tf.reduce_sum(d["output"])
    grad = tape.gradient(loss, f)
    for key in ("attention", "flow", "output"):
        assert np.isfinite(d[key].numpy()).all(), key
    assert np.isfinite(grad.numpy()).all()
    if fill == 1.0:  # every patch masked: zero attention, argmax 0 like the original
        assert np.all(d["output"].numpy() == 0) and np.all(d["argmax"].numpy() == 0)
    else:  # every row of the attention sums to 1
        assert_close(d["attention"].numpy().sum(-1), np.ones((2, 4, 4)), "attention sum", 1e-5)


def test_flow_colours_match_numpy():
    """Random offset fields (batch 3, running max), incl. zero and axis-aligned offsets."""
    rng = np.random.default_rng(7)
    hs, ws = 9, 11
    cy = np.where(
        rng.random((3, hs, ws)) < 0.4, np.arange(hs)[:, None], rng.integers(0, hs, (3, hs, ws))
    )
    cx = np.where(rng.random((3, hs, ws)) < 0.4, np.arange(ws), rng.integers(0, ws, (3, hs, ws)))
    offsets = np.stack([cy - np.arange(hs)[:, None], cx - np.arange(ws)], -1).astype(np.int32)
    for mode in ("nearest", "bilinear"):
        got = tf.function(lambda o, mode=mode: flow_to_colour(o, mode))(offsets)
        want = _upsample(_colour_picture(offsets), 2, mode)
        assert_close(got, want, f"flow ({mode})", 2e-6)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="stride=1"):
        ContextualAttention(stride=2)
    with pytest.raises(ValueError, match="fuse_k=3"):
        ContextualAttention(fuse_k=5)
    with pytest.raises(ValueError, match="flow_resize"):
        ContextualAttention(flow_resize="bicubic")
    with pytest.raises(ValueError, match="multiples of rate"):
        ContextualAttention()(np.zeros((1, 7, 8, 2), np.float32), np.zeros((1, 7, 8, 2), np.float32),
                              np.zeros((1, 7, 8, 1), np.float32))  # fmt: skip


def test_saved_model_round_trip(tmp_path):
    """Servable: exported with unknown B, h, w (graph ops only), reloaded, same results."""

    class Serve(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = ContextualAttention()

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 4]),
                tf.TensorSpec([None, None, None, 1]),
            ]
        )
        def __call__(self, x, m):
            y, flow = self.layer(x, x, m)
            return {"y": y, "flow": flow}

    module = Serve()
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    rng = np.random.default_rng(4)
    for batch, h, w in [(1, 16, 12), (2, 8, 8)]:
        x = rng.standard_normal((batch, h, w, 4)).astype(np.float32)
        m = _box_mask(batch, h, w, seed=h, per_sample=False)
        got = loaded(tf.constant(x), tf.constant(m))
        want = module.layer(x, x, m)
        assert_close(got["y"], want[0], f"SavedModel output {batch, h, w}", 1e-6)
        assert_close(got["flow"], want[1], f"SavedModel flow {batch, h, w}", 1e-6)


# ------------------------------------------------------- bounded memory: chunked attention
TINY_BUDGET = 1e-6  # MB: below the 16-cell minimum chunk, so every call runs many chunks


def _noise_floor(layer, f, m):
    """What the single pass itself moves under float32 reassociation: the same sample as
    batch element 0 of a batch of two (another matmul kernel)."""
    one = _details(layer, f, f, m)
    two = _details(layer, np.concatenate([f, f]), np.concatenate([f, f]), m)
    return {k: float(np.abs(two[k][:1] - one[k]).max()) for k in ("output", "attention")}


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_chunked_equals_single_pass_on_oracle_inputs(oracles, version):
    """The oracle inputs in chunks of 16 foreground cells: indices and flow exact; attention
    and output within float32 reassociation: 1e-5 of the tensor's range, or what the single
    pass itself moves between batch sizes where that is more (v1's attention: logits of a few
    hundred carry 3e-5 rounding); both still within the oracle tolerance."""
    gen = oracles(version) / "gen"
    ca_in, mask_s4 = np.load(gen / "ca_in.npy"), np.load(gen / "mask_s4.npy")
    kwargs = {"flow_resize": "nearest" if version == "deepfill_v1" else "bilinear"}
    single = ContextualAttention(max_attention_mb=None, **kwargs)
    chunked = ContextualAttention(max_attention_mb=TINY_BUDGET, **kwargs)
    want, got = _details(single, ca_in, ca_in, mask_s4), _details(chunked, ca_in, ca_in, mask_s4)
    floor = _noise_floor(single, ca_in, mask_s4)
    errors = {}
    for key in KEYS:
        if key in ("mask_s8", "mm", "argmax", "offsets", "flow"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{version} {key}")
            continue
        scale = float(np.abs(want[key]).max())
        tolerance = max(1e-5 * scale, floor[key])
        errors[key] = assert_close(got[key], want[key], f"{version} {key}", tolerance)
        name = "out" if key == "output" else key
        assert_close(got[key], np.load(gen / f"ca_{name}.npy"), f"{key} vs oracle", ATOL_ORACLE)
    print(f"{version} chunked vs single pass: {errors}; single pass batch-2 vs 1: {floor}")


@pytest.mark.parametrize(
    "shape, per_sample, kwargs",
    [
        ((2, 16, 12, 4), True, {}),
        ((3, 10, 14, 3), True, {"flow_resize": "nearest"}),  # odd 1/8 grid (5 x 7)
        ((1, 4, 16, 2), False, {}),  # one-row-high grid
        ((1, 16, 2, 2), False, {}),  # one-column-wide grid
        ((1, 40, 56, 3), False, {}),  # 20 x 28 grid: many tiles, tile edges inside the hole
        ((2, 12, 10, 3), True, {"fuse": False}),
        ((2, 24, 27, 2), True, {"rate": 3, "ksize": 5}),
    ],
)
def test_chunked_matches_numpy_reference(shape, per_sample, kwargs):
    rng = np.random.default_rng(sum(shape) + 1)
    f = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    noise = 0.0 if kwargs.get("ksize", 3) > 3 else 0.03
    m = _box_mask(shape[0], shape[1], shape[2], seed=shape[2], per_sample=per_sample, noise=noise)
    layer = ContextualAttention(max_attention_mb=TINY_BUDGET, **kwargs)
    got = _details(layer, f, b, m)
    want = reference(f, b, m, **kwargs)
    for key in KEYS:
        exact = key in ("mask_s8", "mm", "argmax", "offsets")
        assert_close(got[key], want[key], key, 0.0 if exact else 2e-5, 0.0 if exact else 1e-5)


def test_budget_picks_the_path_at_run_time_in_tf_function():
    """Dynamic shapes: one trace holds both paths (tf.cond); small inputs take the single
    pass, large ones the chunked loop, both equal to the reference. No Python-bound ops."""
    budget = 0.5  # MB: the single pass fits up to ~100 cells
    layer = ContextualAttention(max_attention_mb=budget)
    spec = [tf.TensorSpec([None, None, None, 2])] * 2 + [tf.TensorSpec([None, None, None, 1])]
    fn = tf.function(layer, input_signature=spec)
    graph = fn.get_concrete_function().graph
    types = {op.type for op in graph.get_operations()}
    assert "If" in types or "StatelessIf" in types, "expected a run-time choice of path"
    assert not types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    rng = np.random.default_rng(11)
    for h, w in [(8, 12), (48, 40)]:
        fits = bool(single_pass_bytes(1, h // 2, w // 2) <= budget * 2**20)
        assert fits == (h == 8), "test setup: one size on each side of the budget"
        f = rng.standard_normal((1, h, w, 2)).astype(np.float32)
        m = _box_mask(1, h, w, seed=h, per_sample=False)
        y, flow = fn(f, f, m)
        want = reference(f, f, m)
        assert_close(y, want["output"], f"output {h}x{w}", 2e-5, 1e-5)
        assert_close(flow, want["flow"], f"flow {h}x{w}", 2e-5)


@pytest.mark.parametrize("budget, want", [(0.5, "single"), (0.01, "chunked")])
def test_static_shapes_pick_the_path_at_trace_time(budget, want):
    """Static shapes (training steps): the budget decides while tracing, so the graph holds
    one path and no tf.cond (both paths in a training step's graph keep grappler from
    fusing the generator's convolutions with their activations)."""
    layer = ContextualAttention(max_attention_mb=budget)
    spec = [tf.TensorSpec([2, 8, 12, 2])] * 2 + [tf.TensorSpec([1, 8, 12, 1])]
    graph = tf.function(layer, input_signature=spec).get_concrete_function().graph
    types = {op.type for op in graph.get_operations()}
    assert not types & {"If", "StatelessIf"}
    assert bool(types & {"While", "StatelessWhile"}) == (want == "chunked")
    fits = single_pass_bytes(2, 4, 6) <= budget * 2**20
    assert isinstance(fits, bool) and fits == (want == "single")


def test_chunked_gradients_match_original_graph():
    rng = np.random.default_rng(12)
    shape = (1, 16, 20, 3)
    f, b, weight = (tf.constant(rng.standard_normal(shape), tf.float32) for _ in range(3))
    m = tf.constant(_box_mask(1, 16, 20, seed=5, per_sample=False))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([f, b])
        ours = ContextualAttention(max_attention_mb=TINY_BUDGET)(f, b, m)[0]
        orig = _original_graph(f, b, m)
        loss_ours, loss_orig = tf.reduce_sum(ours * weight), tf.reduce_sum(orig * weight)
    assert_close(ours, orig, "output vs the original's graph", 1e-5, 1e-5)
    for name, x in (("f", f), ("b", b)):
        got, want = tape.gradient(loss_ours, x), tape.gradient(loss_orig, x)
        scale = float(tf.reduce_max(tf.abs(want)))
        assert_close(got, want, f"d loss / d {name}", atol=1e-4 * max(scale, 1.0))


def test_chunk_rows_follow_the_budget():
    """More budget, bigger chunks; the estimated chunk footprint stays within the budget."""
    hs, ws = 192, 256
    n = hs * ws
    sizes = []
    for mb in (64, 256, 1024, 4096):
        chunk = int(_chunk_rows(mb * 2.0**20, 1, hs, ws, n, n))
        row_bytes = 4 * (n + 2 * ws + 2)
        assert row_bytes * (8 * chunk + 12 * chunk**0.5 + 32) <= mb * 2**20
        sizes.append(chunk)
    assert sizes == sorted(sizes) and sizes[0] >= 16 and sizes[-1] > 50 * sizes[0] / 64
    assert int(_chunk_rows(None, 1, hs, ws, n, 100)) == 100  # no budget: one chunk
    assert int(_chunk_rows(1.0, 1, hs, ws, n, 1000)) == 16  # tiny budget: the minimum


def test_foreground_margin_computes_only_cells_near_the_hole():
    """Cells within the margin of the hole equal the full computation; the output pixels a
    skipped cell's window touches are b; argmax of skipped cells is the cell itself."""
    rng = np.random.default_rng(13)
    f = rng.standard_normal((2, 48, 64, 3)).astype(np.float32)
    m = np.zeros((1, 48, 64, 1), np.float32)
    m[:, 20:28, 30:40] = 1.0  # 1/8 grid: rows 10..13, cols 15..19
    full = _details(ContextualAttention(), f, f, m)
    part = _details(ContextualAttention(foreground_margin=2), f, f, m)
    cells = np.zeros((24, 32), bool)
    cells[8:16, 13:22] = True  # the hole cells dilated by 2
    assert_close(part["attention"][:, cells], full["attention"][:, cells], "attention", 2e-5)
    np.testing.assert_array_equal(part["argmax"][:, cells], full["argmax"][:, cells])
    own = np.arange(24 * 32).reshape(24, 32)
    np.testing.assert_array_equal(
        part["argmax"][:, ~cells], np.broadcast_to(own, (2, 24, 32))[:, ~cells]
    )
    inside = np.zeros((48, 64), bool)
    inside[17:31, 27:43] = True  # pixels whose four windows are all computed cells
    assert_close(part["output"][:, inside], full["output"][:, inside], "output", 2e-5)
    outside = np.ones((48, 64), bool)
    outside[15:33, 25:45] = False
    np.testing.assert_array_equal(part["output"][:, outside], f[:, outside])


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_foreground_margin_with_no_hole_and_all_hole(fill):
    """No hole: nothing to compute, the output is b; all hole: like the single pass."""
    rng = np.random.default_rng(15)
    f = rng.standard_normal((2, 16, 24, 3)).astype(np.float32)
    m = np.full((1, 16, 24, 1), fill, np.float32)
    layer = ContextualAttention(foreground_margin=1)
    spec = [tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, None, None, 1])]
    fn = tf.function(lambda f, m: layer(f, f, m)[0], input_signature=spec)
    got = fn(f, m).numpy()
    if fill == 0.0:
        np.testing.assert_array_equal(got, f)
    else:
        assert_close(got, ContextualAttention()(f, f, m)[0], "all hole", 1e-6)


def test_chunked_converts_to_tflite_at_dynamic_shapes():
    """The chunked loop (While, Unique, scatters) converts with TFLite builtins only."""
    from deepfill_tf.export.tflite import quiet_native_stderr

    layer = ContextualAttention(max_attention_mb=TINY_BUDGET)
    specs = [tf.TensorSpec([None, None, None, c], tf.float32) for c in (4, 1)]
    fn = tf.function(lambda f, hole: {"y": layer(f, f, hole)[0]}, input_signature=specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], layer)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with quiet_native_stderr():
        model = converter.convert()
    runner = tf.lite.Interpreter(model_content=model).get_signature_runner()
    rng = np.random.default_rng(14)
    f = rng.standard_normal((1, 24, 32, 4)).astype(np.float32)
    hole = _box_mask(1, 24, 32, seed=6, per_sample=False)
    got = runner(f=f, hole=hole)["y"]
    assert_close(got, fn(f, hole)["y"].numpy(), "TFLite vs TF (chunked)", 1e-4)
