"""The fused gating kernel (``deepfill_tf.native`` / ``deepfill_tf.ops.gating``): the same values
and gradients as TensorFlow's Elu * Sigmoid, only inside ``native_gating()``, never in an
export, and a fallback to TensorFlow's ops when it cannot be built or is switched off."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import deepfill_tf.native as native
from deepfill_tf.errors import ConfigError
from deepfill_tf.ops.gating import gated_elu, native_gating, native_gating_active


def _library_or_skip():
    library = native.load_native_library("gated_elu")
    if library is None:
        pytest.skip(
            f"the fused gating kernel is not built here: {native.native_status('gated_elu')}"
        )
    return library


@pytest.fixture
def unloaded(monkeypatch):
    """``load_native_library`` as in a process that has loaded nothing yet (restored after).
    Only for cases that load no library: TensorFlow cannot load a second copy of the kernels."""
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_failed", set())
    return native.load_native_library


def _values_and_gradients(features, gate, upstream):
    with tf.GradientTape() as tape:
        tape.watch([features, gate])
        y = gated_elu(features, gate)
    return [y, *tape.gradient(y, [features, gate], upstream)]


def _reference(features, gate, upstream):
    """Float64 NumPy: elu(a) * sigmoid(b) and its two gradients."""
    a, b, g = (np.asarray(t, np.float64) for t in (features, gate, upstream))
    e = np.where(a > 0, a, np.expm1(a))
    s = 1.0 / (1.0 + np.exp(-b))
    return [e * s, g * s * np.where(a > 0, 1.0, e + 1.0), g * e * s * (1.0 - s)]


# Odd sizes (a tail after the last full vector), a 4-D conv output, extremes that overflow exp.
SHAPES = [(1,), (17,), (3, 5, 7, 2), (2, 33, 31, 24)]


@pytest.mark.parametrize("shape", SHAPES)
def test_native_values_and_gradients_match(shape):
    _library_or_skip()
    rng = np.random.default_rng(7)
    features, gate, upstream = (
        tf.constant(rng.normal(0, 4, shape).astype(np.float32)) for _ in range(3)
    )
    want_tf = tf.function(_values_and_gradients)(features, gate, upstream)
    with native_gating():
        fused = tf.function(_values_and_gradients)
        got = fused(features, gate, upstream)
    ops = {
        n.op
        for n in fused.get_concrete_function(features, gate, upstream).graph.as_graph_def().node
    }
    assert {"DeepfillGatedElu", "DeepfillGatedEluGrad"} <= ops
    for name, g, w, r in zip(
        ("value", "d_features", "d_gate"),
        got,
        want_tf,
        _reference(features, gate, upstream),
        strict=True,
    ):
        # float32 against float64: s * (1 - s) cancels for saturated gates, in TF's
        # SigmoidGrad as here, hence the relative 1e-4 on d_gate.
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_native_handles_extremes_and_empty():
    _library_or_skip()
    a = tf.constant([-200.0, -88.0, -1e-8, 0.0, 1e-8, 88.0, 200.0, 3e38], tf.float32)
    b = tf.constant([200.0, -200.0, 0.0, 0.0, -90.0, 90.0, -3e38, 3e38], tf.float32)
    g = tf.ones_like(a)
    with native_gating():
        got = tf.function(_values_and_gradients)(a, b, g)
    want = tf.function(_values_and_gradients)(a, b, g)
    for x, y in zip(got, want, strict=True):
        assert np.all(np.isfinite(x.numpy()) == np.isfinite(y.numpy()))
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=2e-6, atol=1e-30)
    empty = tf.zeros([0, 4])
    with native_gating():
        assert tf.function(gated_elu)(empty, empty).shape == (0, 4)


def test_native_op_rejects_mismatched_shapes():
    library = _library_or_skip()
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="features and gate must have one shape"
    ):
        library.deepfill_gated_elu(tf.zeros([2, 3]), tf.zeros([3, 2]))


def test_only_inside_native_gating():
    _library_or_skip()
    x = tf.zeros([1, 4, 4, 2])
    plain = tf.function(gated_elu).get_concrete_function(x, x).graph.as_graph_def()
    assert not {n.op for n in plain.node} & native.NATIVE_OPS
    assert not native_gating_active()
    with native_gating():
        assert native_gating_active()
        with native_gating():  # re-entrant
            assert native_gating_active()
        assert native_gating_active()
    assert not native_gating_active()


def test_export_after_a_native_trace_holds_no_custom_op(tmp_path):
    """A training step traced with the kernel in this process does not leak it into an export."""
    _library_or_skip()
    from deepfill_tf.export import export_saved_model, native_ops
    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

    generator = DeepFillV2Generator(cnum=4)
    generator.build_for(32, 32)
    image, hole = tf.zeros([1, 32, 32, 3]), tf.zeros([1, 32, 32, 1])
    with native_gating():
        traced = tf.function(lambda x, m: generator(x, m)[1])
        ops = {
            n.op
            for f in traced.get_concrete_function(image, hole).graph.as_graph_def().library.function
            for n in f.node_def
        }
        ops |= {n.op for n in traced.get_concrete_function(image, hole).graph.as_graph_def().node}
    assert "DeepfillGatedElu" in ops
    path = export_saved_model(generator, str(tmp_path / "export"))
    assert native_ops(path) == []


def test_switched_off_uses_tensorflow_ops(monkeypatch):
    monkeypatch.setenv("DEEPFILL_TF_NATIVE", "0")
    assert native.load_native_library("gated_elu") is None
    assert native.native_status("gated_elu") == "off (DEEPFILL_TF_NATIVE=0)"
    x = tf.constant([[-1.0, 2.0]])
    with native_gating():
        assert not native_gating_active()
        graph = tf.function(gated_elu).get_concrete_function(x, x).graph.as_graph_def()
    assert not {n.op for n in graph.node} & native.NATIVE_OPS


@pytest.mark.parametrize("value", ["maybe", "2", "yes please"])
def test_bad_switch_value_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv("DEEPFILL_TF_NATIVE", value)
    with pytest.raises(ConfigError, match="DEEPFILL_TF_NATIVE must be 0 or 1"):
        native.native_enabled()


def test_failed_build_falls_back_with_the_compiler_error(unloaded, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DEEPFILL_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert unloaded("gated_elu") is None
    status = native.native_status("gated_elu")
    assert status.startswith("TensorFlow ops (could not build gated_elu: no C++ compiler")
    assert "no-such-compiler" in status
    assert any("could not build" in r.getMessage() for r in caplog.records)
    assert not list((tmp_path / "cache").rglob("*.so*")), "a failed build left a file behind"
    x = tf.constant([[-1.0, 2.0]])
    with native_gating():
        y = tf.function(gated_elu)(x, x)
    np.testing.assert_allclose(y.numpy(), (tf.nn.elu(x) * tf.sigmoid(x)).numpy())


_BUILD_AND_LOAD = """
import sys
import deepfill_tf.native as native
if sys.argv[1] == "no-rebuild":
    def no_rebuild(*args):
        raise AssertionError("rebuilt a cached library")
    native._build = no_rebuild
library = native.load_native_library("gated_elu")
print(native.native_status("gated_elu"))
sys.exit(0 if library is not None else 3)
"""


def test_build_is_cached_per_source_and_cpu(tmp_path):
    """A first use builds into the cache; the next process reuses it (each in its own process:
    TensorFlow cannot load a second copy of the kernels into this one)."""
    env = {**os.environ, "DEEPFILL_TF_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.run(
        [sys.executable, "-c", _BUILD_AND_LOAD, "build"], env=env, capture_output=True, text=True
    )
    if first.returncode == 3:
        pytest.skip(f"no build here: {first.stdout.strip()}")
    assert first.returncode == 0, first.stderr
    built = sorted((tmp_path / "cache" / "native").iterdir())
    assert len(built) == 1 and built[0].name.startswith("gated_elu-") and built[0].suffix == ".so"
    assert first.stdout.strip() == f"native ({built[0]})"
    mtime = built[0].stat().st_mtime_ns
    second = subprocess.run(
        [sys.executable, "-c", _BUILD_AND_LOAD, "no-rebuild"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert second.returncode == 0, second.stderr
    assert sorted((tmp_path / "cache" / "native").iterdir()) == built
    assert built[0].stat().st_mtime_ns == mtime
