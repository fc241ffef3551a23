"""ONNX export of the single-image inpainting computation through tf2onnx (optional).

Same inputs and output as the TFLite model (``deepfill_tf.export.tflite``): ``image``
(1, H, W, 3) uint8 RGB, ``mask`` (1, H, W, 1) uint8 > 127 = hole, [``guide``], -> ``output``
(1, H, W, 3) uint8 RGB. The size is fixed at conversion (``--size HxW``): with dynamic sizes
tf2onnx 1.17 mis-converts the crop after the pad-to-grid (onnxruntime then fails with "invalid
expand shape" on any size that is not a multiple of 8).

tf2onnx is not a dependency of this package: ``pip install tf2onnx onnxruntime``.
"""

from __future__ import annotations

import logging
import os

from deepfill_tf.errors import DeepfillError
from deepfill_tf.inference.io import write_bytes_atomic

OPSET = 17


def convert_onnx(generator, *, height: int, width: int, original_postprocess: bool = False):
    """Convert to an ``onnx.ModelProto`` (opset ``OPSET``).

    Raises:
      DeepfillError: tf2onnx is missing, the size is missing, or conversion failed.
    """
    if not height or not width:
        raise DeepfillError("ONNX export needs a fixed size: give --size HxW")
    try:
        import tf2onnx
    except ImportError:
        raise DeepfillError(
            "ONNX export needs tf2onnx, which is not installed (pip install tf2onnx onnxruntime)"
        ) from None
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.export.tflite import single_image_function

    fn = single_image_function(
        generator, height=height, width=width, original_postprocess=original_postprocess
    )

    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.export.tflite import quiet_native_stderr

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    try:
        with quiet_native_stderr():
            proto, _ = tf2onnx.convert.from_function(
                fn, input_signature=fn.input_signature, opset=OPSET
            )
    except Exception as e:  # tf2onnx raises plain exceptions of many kinds
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DeepfillError(f"cannot convert to ONNX: {first}") from None
    return proto


def export_onnx(generator, path: str, *, overwrite: bool = False, **kwargs) -> str:
    """Write ``convert_onnx(generator, **kwargs)`` to ``path`` atomically; returns ``path``."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise DeepfillError(f"{path} already exists (use --overwrite)")
    write_bytes_atomic(path, convert_onnx(generator, **kwargs).SerializeToString())
    return path
