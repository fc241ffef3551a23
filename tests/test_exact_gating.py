"""The bit-exact gating product for inference (``exact_native_gating``): every value equal to
TensorFlow's ``x * tf.sigmoid(gate)`` to the bit, in the op, through ``gated_elu`` and through
a whole DeepFill v2 forward; used only when the load-time check finds no difference."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

import deepfill_tf.native as native
from deepfill_tf.ops import gating
from deepfill_tf.ops.gating import (
    exact_native_gating,
    exact_native_gating_active,
    gated_elu,
    native_gating,
)


def _library_or_skip():
    library = native.load_native_library("exact_gating")
    if library is None:
        pytest.skip(
            f"the exact gating kernel is not built here: {native.native_status('exact_gating')}"
        )
    return library


def _active_or_skip():
    _library_or_skip()
    with exact_native_gating():
        if not exact_native_gating_active():
            pytest.skip("the exact gating kernel differs from this TensorFlow build's Sigmoid")


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype == np.float32:
        same = (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))
    else:
        same = a == b
    return int((~same).sum())


def _ops(fn, *args):
    graph = fn.get_concrete_function(*args).graph.as_graph_def()
    ops = {n.op for n in graph.node}
    return ops | {n.op for f in graph.library.function for n in f.node_def}


@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 16391])
def test_op_is_bit_identical_to_tensorflow_at_every_length(n):
    """Lengths around the 8- and 16-lane packets and the 16384-element work blocks."""
    library = _library_or_skip()
    rng = np.random.default_rng(n)
    gate = (rng.standard_normal(n) * 12.0).astype(np.float32)
    x = rng.standard_normal(n).astype(np.float32)
    want = tf.function(lambda a, b: a * tf.sigmoid(b))(x, gate)
    got = library.deepfill_mul_sigmoid(x, gate)
    assert _same_bits(got, want) == 0


def test_op_is_bit_identical_over_the_whole_float_range():
    library = _library_or_skip()
    x, gate = gating._probe()
    want = tf.function(lambda a, b: a * tf.sigmoid(b))(x, gate).numpy()
    got = library.deepfill_mul_sigmoid(x, gate).numpy()
    assert _same_bits(got, want) == 0
    assert np.isnan(got).any() and (got == 0).any()  # the probe reaches NaN and the clamps


@pytest.mark.parametrize("shape", [(1, 5), (3, 13), (2, 7, 9, 24), (1, 33, 31, 48)])
def test_bias_op_is_bit_identical_to_tensorflow(shape):
    """Biases, ELU, sigmoid and product of a transposed conv's halves, with odd channel
    counts (bias lanes wrapping inside a packet) and values across every clamp."""
    library = _library_or_skip()
    rng = np.random.default_rng(len(shape))
    features, gate = (
        (rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 3, shape)).astype(np.float32)
        for _ in range(2)
    )
    biases = [(rng.standard_normal(shape[-1]) * 30.0).astype(np.float32) for _ in range(2)]
    want = tf.function(gating._reference_bias_gated_elu)(features, gate, *biases)
    got = library.deepfill_bias_gated_elu(features, gate, *biases)
    assert _same_bits(got, want) == 0


def test_bias_op_gradients_match_tensorflow():
    _library_or_skip()
    rng = np.random.default_rng(11)
    inputs = [tf.constant(rng.normal(0, 3, (2, 6, 5, 8)).astype(np.float32)) for _ in range(2)]
    inputs += [tf.constant(rng.normal(0, 1, 8).astype(np.float32)) for _ in range(2)]
    upstream = tf.constant(rng.normal(0, 1, (2, 6, 5, 8)).astype(np.float32))

    def gradients(fn):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = fn(*inputs)
        return tape.gradient(y, inputs, upstream)

    with exact_native_gating():
        got = gradients(gating.gated_elu_bias)
    want = gradients(gating._reference_bias_gated_elu)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)


def test_bias_op_rejects_bad_shapes():
    library = _library_or_skip()
    x = tf.zeros([2, 3, 4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="features and gate must have one"):
        library.deepfill_bias_gated_elu(x, tf.zeros([2, 4, 3]), tf.zeros([4]), tf.zeros([4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"a bias must have shape \[4\]"):
        library.deepfill_bias_gated_elu(x, x, tf.zeros([4]), tf.zeros([3]))


def test_op_rejects_mismatched_shapes():
    library = _library_or_skip()
    with pytest.raises(tf.errors.InvalidArgumentError, match="x and gate must have one shape"):
        library.deepfill_mul_sigmoid(tf.zeros([2, 3]), tf.zeros([3, 2]))


def test_gated_elu_inside_the_context_gives_tensorflow_bits_and_gradients():
    _active_or_skip()
    rng = np.random.default_rng(3)
    features, gate, upstream = (
        tf.constant(rng.normal(0, 4, (2, 33, 31, 24)).astype(np.float32)) for _ in range(3)
    )

    def values_and_gradients(a, b, g):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            y = gated_elu(a, b)
        return [y, *tape.gradient(y, [a, b], g)]

    plain = tf.function(values_and_gradients)
    want = plain(features, gate, upstream)
    with exact_native_gating():
        exact = tf.function(values_and_gradients)
        got = exact(features, gate, upstream)
        assert "DeepfillMulSigmoid" in _ops(exact, features, gate, upstream)
    assert "DeepfillMulSigmoid" not in _ops(plain, features, gate, upstream)
    assert _same_bits(got[0], want[0]) == 0
    for g, w in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-7)


def test_a_deepfill_v2_forward_gives_the_same_pixels_and_floats():
    """The whole uint8 pipeline of a v2 generator, with and without the kernel: same bits."""
    _active_or_skip()
    from deepfill_tf.inference.pipeline import inpaint_uint8
    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

    generator = DeepFillV2Generator(cnum=8)
    generator.build_for(64, 64)
    rng = np.random.default_rng(5)
    image = tf.constant(rng.integers(0, 256, (1, 72, 88, 3), dtype=np.uint8))
    hole = np.zeros((1, 72, 88, 1), np.float32)
    hole[:, 20:50, 30:70] = 1.0
    hole = tf.constant(hole)

    def both(x, m):
        return inpaint_uint8(generator, x, m), generator(tf.cast(x, tf.float32) / 127.5 - 1, m)

    plain = tf.function(both)
    want = plain(image, hole)
    with exact_native_gating():
        exact = tf.function(both)
        got = exact(image, hole)
        assert {"DeepfillMulSigmoid", "DeepfillBiasGatedElu"} <= _ops(exact, image, hole)
    assert _same_bits(got[0], want[0]) == 0
    for g, w in zip(got[1], want[1], strict=True):
        assert _same_bits(g, w) == 0


def test_a_build_that_differs_is_not_used(monkeypatch, caplog):
    """The load-time check finds a one-ulp difference, says so, and inference keeps TF's ops."""
    _library_or_skip()

    class OffByOneUlp:
        deepfill_bias_gated_elu = staticmethod(gating._reference_bias_gated_elu)

        @staticmethod
        def deepfill_mul_sigmoid(x, gate):
            y = x * tf.sigmoid(gate)
            return tf.bitcast(tf.bitcast(y, tf.int32) + 1, tf.float32)

    with caplog.at_level(logging.INFO, logger="deepfill_tf.ops.gating"):
        assert not gating._bits_match(OffByOneUlp())
    assert "values differ from TensorFlow's ops" in caplog.text

    monkeypatch.setattr(gating, "_exact_verdict", {"bits": False})
    x = tf.zeros([1, 4, 4, 2])
    with exact_native_gating():
        assert not exact_native_gating_active()
        assert "DeepfillMulSigmoid" not in _ops(tf.function(gated_elu), x, x)


def test_training_context_takes_precedence():
    _active_or_skip()
    if native.load_native_library("gated_elu") is None:
        pytest.skip(f"no fused training kernel here: {native.native_status('gated_elu')}")
    x = tf.zeros([1, 4, 4, 2])
    with exact_native_gating(), native_gating():
        assert not exact_native_gating_active()
        ops = _ops(tf.function(gated_elu), x, x)
    assert "DeepfillGatedElu" in ops and "DeepfillMulSigmoid" not in ops


def test_switched_off_uses_tensorflow_ops(monkeypatch):
    monkeypatch.setenv("DEEPFILL_TF_NATIVE", "0")
    x = tf.constant([[-1.0, 2.0]])
    with exact_native_gating():
        assert not exact_native_gating_active()
        ops = _ops(tf.function(gated_elu), x, x)
    assert not ops & native.NATIVE_OPS


def test_not_built_on_a_cpu_without_avx512(monkeypatch, caplog):
    """With 8 lanes the kernel is no faster than TensorFlow's ops: it is not built, silently."""
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_failed", set())
    monkeypatch.setattr(native, "_status", {})
    monkeypatch.setattr(native, "_cpu_flags", lambda: "flags\t\t: fpu sse4_2 avx avx2 fma")
    with caplog.at_level(logging.INFO, logger="deepfill_tf.native"):
        assert native.load_native_library("exact_gating", warn=False) is None
    assert native.native_status("exact_gating") == (
        "TensorFlow ops (exact_gating needs avx512f, which this CPU lacks)"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
