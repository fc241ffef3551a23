"""DeepFill v2's gating ``elu(features) * sigmoid(gate)``, fused where it is safe to.

``gated_elu`` is TensorFlow's ``Elu``, ``Sigmoid`` and ``Mul`` (what the original
``gen_conv`` does), except inside one of two contexts:

* ``native_gating()`` (training steps): one native kernel forward and one backward
  (``deepfill_tf/native/gated_elu.cc``), the same numbers up to float rounding (about 1e-6)
  in a fraction of the memory traffic: G and D steps 9 and 7 % faster on CPU
  (docs/performance.md).
* ``exact_native_gating()`` (inference: the CLI, the UI, evaluation): TensorFlow's ``Elu``
  (which oneDNN fuses into the convolution), then ``sigmoid`` and the product in one native
  pass (``deepfill_tf/native/exact_gating.cc``) that is bit-identical to TensorFlow's
  ``Sigmoid`` and ``Mul``; after a transposed convolution (which oneDNN does not fuse with
  anything), ``gated_elu_bias`` does both bias adds, the ELU, the sigmoid and the product in
  one pass, bit-identical to TensorFlow's ``BiasAdd``, ``Elu``, ``Sigmoid`` and ``Mul``. The
  library is checked against them bit for bit when it loads and not used if any value
  differs, so inference keeps giving the very pixels of the exported SavedModel (a contract
  the family checks test).

A native op is a custom op: a graph that holds it runs only where the library is loaded, so
TF Serving, TFLite and ONNX could not run it. That is why it is opt-in per trace; exports are
traced outside both contexts. When a library cannot be built (no compiler) or
``DEEPFILL_TF_NATIVE=0``, the contexts change nothing.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import tensorflow as tf

from deepfill_tf.native import load_native_library

__all__ = [
    "exact_native_gating",
    "exact_native_gating_active",
    "gated_elu",
    "gated_elu_bias",
    "native_gating",
    "native_gating_active",
]

_LIBRARY = "gated_elu"
_EXACT_LIBRARY = "exact_gating"
# How deep in each context the process is. Process-wide (not thread-local): MirroredStrategy
# traces replicas in threads.
_depth = {_LIBRARY: 0, _EXACT_LIBRARY: 0}
_exact_verdict: dict[str, bool] = {}  # "bits": the exact library matched TensorFlow's ops
_log = logging.getLogger(__name__)


@contextlib.contextmanager
def _inside(library: str):
    _depth[library] += 1
    try:
        yield
    finally:
        _depth[library] -= 1


def native_gating():
    """Within it, ``gated_elu`` traces the fused native op when the library is available.
    Process-wide and re-entrant; read at trace time, so it applies to the ``tf.function``
    traces made inside it."""
    return _inside(_LIBRARY)


def exact_native_gating():
    """Within it, ``gated_elu`` traces the bit-exact native sigmoid product when the library is
    available and matches this TensorFlow's ops. Process-wide and re-entrant; read at trace
    time. ``native_gating()`` takes precedence where both are entered."""
    return _inside(_EXACT_LIBRARY)


def _library():
    return load_native_library(_LIBRARY)


def _probe() -> tuple[np.ndarray, np.ndarray]:
    """Gates over the whole float range (every exponent, the clamps at -104 and 16.64, zeros,
    infinities, NaN) and products with signs and magnitudes; an odd length, so that the
    scalar tail after the last whole packet is checked too."""
    # Every part float32 already: a float64 detour would cast NaN bit patterns, which NumPy
    # warns about (on the CLI's stderr).
    rng = np.random.default_rng(0)
    grid = np.linspace(-120.0, 24.0, 60001, dtype=np.float32)
    bits = np.arange(0, 2**32, 2**32 // 20011, dtype=np.uint64).astype(np.uint32)
    noise = rng.standard_normal(40001, dtype=np.float32) * np.float32(6.0)
    special = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, -104.0, 16.6355324, 1e-40, -1e-40, 88.0], np.float32
    )
    gate = np.concatenate([grid, bits.view(np.float32), noise, special])
    scale = (10.0 ** rng.integers(-3, 4, gate.size)).astype(np.float32)
    x = rng.standard_normal(gate.size, dtype=np.float32) * scale
    return x, gate


def _reference_bias_gated_elu(features, gate, features_bias, gate_bias):
    """TensorFlow's ops for ``DeepfillBiasGatedElu``."""
    features = tf.nn.bias_add(features, features_bias)
    return tf.nn.elu(features) * tf.sigmoid(tf.nn.bias_add(gate, gate_bias))


def _bits_match(library) -> bool:
    """The exact ops give TensorFlow's ``x * tf.sigmoid(gate)`` and
    ``_reference_bias_gated_elu`` bit for bit on ``_probe`` (the features: the probe's gates
    reversed, 13 channels with biases across the clamps)."""
    with tf.init_scope():  # eager (the same CPU kernels as a graph), even during a trace
        x, gate = (tf.constant(v) for v in _probe())
        want = [(x * tf.sigmoid(gate)).numpy()]
        got = [library.deepfill_mul_sigmoid(x, gate).numpy()]
        size = int(gate.shape[0]) // 13 * 13 + 13
        features = tf.reshape(tf.concat([tf.reverse(gate, [0]), gate], 0)[:size], [-1, 13])
        gates = tf.reshape(tf.concat([gate, tf.reverse(gate, [0])], 0)[:size], [-1, 13])
        bias = tf.constant(np.linspace(-20.0, 20.0, 13, dtype=np.float32))
        want.append(_reference_bias_gated_elu(features, gates, bias, -bias).numpy())
        got.append(library.deepfill_bias_gated_elu(features, gates, bias, -bias).numpy())
    want, got = (np.concatenate([a.ravel() for a in v]) for v in (want, got))
    same = (want.view(np.uint32) == got.view(np.uint32)) | (np.isnan(want) & np.isnan(got))
    if not same.all():  # info, not warning: the pixels stay TensorFlow's, only slower
        _log.info(
            "%s: %d of %d values differ from TensorFlow's ops in this build; "
            "inference uses TensorFlow's ops",
            _EXACT_LIBRARY,
            int((~same).sum()),
            same.size,
        )
    return bool(same.all())


def _exact_library():
    # Quietly: without it inference gives the same pixels, only slower; the CLI says nothing.
    library = load_native_library(_EXACT_LIBRARY, warn=False)
    if library is None:
        return None
    if "bits" not in _exact_verdict:
        _exact_verdict["bits"] = _bits_match(library)
    return library if _exact_verdict["bits"] else None


@tf.RegisterGradient("DeepfillMulSigmoid")
def _mul_sigmoid_grad(op, grad):
    x, gate = op.inputs
    s = tf.sigmoid(gate)
    return grad * s, grad * x * s * (1.0 - s)


@tf.RegisterGradient("DeepfillBiasGatedElu")
def _bias_gated_elu_grad(op, grad):
    features, gate, features_bias, gate_bias = op.inputs
    e = tf.nn.elu(tf.nn.bias_add(features, features_bias))
    s = tf.sigmoid(tf.nn.bias_add(gate, gate_bias))
    d_features = tf.raw_ops.EluGrad(gradients=grad * s, outputs=e)
    d_gate = tf.raw_ops.SigmoidGrad(y=s, dy=grad * e)
    return (
        d_features,
        d_gate,
        tf.raw_ops.BiasAddGrad(out_backprop=d_features),
        tf.raw_ops.BiasAddGrad(out_backprop=d_gate),
    )


@tf.RegisterGradient("DeepfillGatedElu")  # a registry by op name: the op need not exist yet
def _gated_elu_grad(op, grad):
    return _library().deepfill_gated_elu_grad(grad, op.inputs[0], op.inputs[1])


def native_gating_active() -> bool:
    """True if ``gated_elu`` would use the native op here (inside ``native_gating()`` with the
    library built and loaded)."""
    return _depth[_LIBRARY] > 0 and _library() is not None


def exact_native_gating_active() -> bool:
    """True if ``gated_elu`` would use the bit-exact native product here (inside
    ``exact_native_gating()`` and not ``native_gating()``, the library built, loaded and
    matching TensorFlow's ops)."""
    return (
        _depth[_EXACT_LIBRARY] > 0 and not native_gating_active() and _exact_library() is not None
    )


def gated_elu(features: tf.Tensor, gate: tf.Tensor) -> tf.Tensor:
    """``elu(features) * sigmoid(gate)``, elementwise.

    Args:
      features, gate: float32 tensors of one shape (any rank), the two halves of a gated
        convolution with the bias added.

    Returns:
      float32, the shape of the inputs. Differentiable in both inputs (first order; the
      native op has no second derivative, which no DeepFill v2 loss needs).
    """
    if features.dtype == gate.dtype == tf.float32:
        if native_gating_active():
            return _library().deepfill_gated_elu(features, gate)
        if exact_native_gating_active():
            return _exact_library().deepfill_mul_sigmoid(tf.nn.elu(features), gate)
    return tf.nn.elu(features) * tf.sigmoid(gate)


def gated_elu_bias(features, gate, features_bias, gate_bias) -> tf.Tensor:
    """``gated_elu(bias_add(features, features_bias), bias_add(gate, gate_bias))``.

    For convolutions whose bias oneDNN does not fuse (transposed ones): inside
    ``exact_native_gating()`` one native pass, bit-identical to TensorFlow's ops.

    Args:
      features, gate: float32 (..., C) tensors of one shape, the two halves of a gated
        convolution without their biases.
      features_bias, gate_bias: float32 (C,).
    """
    if features.dtype == gate.dtype == tf.float32 and exact_native_gating_active():
        return _exact_library().deepfill_bias_gated_elu(features, gate, features_bias, gate_bias)
    return gated_elu(tf.nn.bias_add(features, features_bias), tf.nn.bias_add(gate, gate_bias))
