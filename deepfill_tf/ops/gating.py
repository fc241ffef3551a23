"""DeepFill v2's gating ``elu(features) * sigmoid(gate)``, fused where it is safe to.

``gated_elu`` is TensorFlow's ``Elu``, ``Sigmoid`` and ``Mul`` (what the original
``gen_conv`` does), except inside ``native_gating()``: there it is one native kernel forward
and one backward (``deepfill_tf/native/gated_elu.cc``), the same numbers up to float rounding
(about 1e-6) in a fraction of the memory traffic: G and D steps 9 and 7 % faster on CPU
(docs/performance.md).

The fused op is a custom op: a graph that holds it runs only where the library is loaded, so
TF Serving, TFLite and ONNX could not run it. That is why it is opt-in per trace, and only the
training loop opts in. Inference does not: ``deepfill-tf inpaint``, the UI and evaluation give
the very pixels of the exported SavedModel (a contract the family checks test), and float
rounding of the fused kernel would move a few uint8 values by one. When the library cannot
be built (no compiler) or ``DEEPFILL_TF_NATIVE=0``, ``native_gating()`` changes nothing.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from deepfill_tf.native import load_native_library

__all__ = ["gated_elu", "native_gating", "native_gating_active"]

_LIBRARY = "gated_elu"
_depth = 0  # process-wide (not thread-local): MirroredStrategy traces replicas in threads


@contextlib.contextmanager
def native_gating():
    """Within it, ``gated_elu`` traces the fused native op when the library is available.
    Process-wide and re-entrant; read at trace time, so it applies to the ``tf.function``
    traces made inside it."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def _library():
    return load_native_library(_LIBRARY)


@tf.RegisterGradient("DeepfillGatedElu")  # a registry by op name: the op need not exist yet
def _gated_elu_grad(op, grad):
    return _library().deepfill_gated_elu_grad(grad, op.inputs[0], op.inputs[1])


def native_gating_active() -> bool:
    """True if ``gated_elu`` would use the native op here (inside ``native_gating()`` with the
    library built and loaded)."""
    return _depth > 0 and _library() is not None


def gated_elu(features: tf.Tensor, gate: tf.Tensor) -> tf.Tensor:
    """``elu(features) * sigmoid(gate)``, elementwise.

    Args:
      features, gate: float32 tensors of one shape (any rank), the two halves of a gated
        convolution with the bias added.

    Returns:
      float32, the shape of the inputs. Differentiable in both inputs (first order; the
      native op has no second derivative, which no DeepFill v2 loss needs).
    """
    if native_gating_active() and features.dtype == gate.dtype == tf.float32:
        return _library().deepfill_gated_elu(features, gate)
    return tf.nn.elu(features) * tf.sigmoid(gate)
