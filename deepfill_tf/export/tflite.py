"""TFLite export of the inpainting computation, TFLite builtin ops only.

The TFLite model runs ``deepfill_tf.inference.pipeline.inpaint_uint8`` on one image (no
decoding: TFLite has no PNG/JPEG ops):

  inputs  ``image``: (1, H, W, 3) uint8 RGB; ``mask``: (1, H, W, 1) uint8, > 127 = hole;
          ``guide``: (1, H, W, 3) uint8 RGB edge image (guided DeepFill v2 only).
  output  ``output``: (1, H, W, 3) uint8 RGB.

H and W are fixed at conversion time when ``height``/``width`` are given (``--size HxW``),
otherwise dynamic (resize the interpreter's inputs before running). When an op has no TFLite
builtin kernel the conversion fails with a one-line ``DeepfillError`` naming the ops and their
operand types; the model is never silently converted with TF (Flex) kernels.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

import tensorflow as tf

from deepfill_tf.errors import DeepfillError
from deepfill_tf.inference.io import write_bytes_atomic
from deepfill_tf.inference.pipeline import inpaint_uint8

_SELECT_OPS = re.compile(r"TF Select ops: ([^\n]+)")
_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_DETAIL = re.compile(r"^\s*tf\.(\w+)\((.*?)\)\s*->", re.MULTILINE)
_OPERAND = re.compile(r"tensor<((?:[\d?]+x)*)(\w+)>")
# Why a blocking op is there, for the ones this package is known to produce.
_KNOWN_CAUSES = {
    "SelectV2": "tf.where on uint8 in inference/pipeline.py's compositing (TFLite select has no "
    "uint8 kernel)",
    "Greater": "a comparison of uint8 values",
    "Conv2D": "a convolution whose input channel count the converter cannot infer (dynamic "
    "size: try --size HxW)",
    "ExtractImagePatches": "contextual attention's patch extraction",
}


def single_image_function(
    generator,
    *,
    height: int | None = None,
    width: int | None = None,
    original_postprocess: bool = False,
):
    """A ``tf.function`` inpainting one image, for converters without string or loop support.

    Returns:
      ``fn(image, mask[, guide]) -> {"output": (1, H, W, 3) uint8}`` with its input signature
      (see the module docstring).
    """
    guided = bool(getattr(generator, "guided", False))
    shape = [1, height, width]
    specs = [
        tf.TensorSpec([*shape, 3], tf.uint8, name="image"),
        tf.TensorSpec([*shape, 1], tf.uint8, name="mask"),
    ] + ([tf.TensorSpec([*shape, 3], tf.uint8, name="guide")] if guided else [])

    def run(image, mask, *guide):
        # compare in int32: TFLite has no uint8 comparison kernel
        hole = tf.cast(tf.cast(mask, tf.int32) > 127, tf.float32)
        out = inpaint_uint8(
            generator,
            image,
            hole,
            guide[0] if guide else None,
            original_postprocess=original_postprocess,
        )
        return {"output": out}

    return tf.function(run, input_signature=specs)


def describe_converter_error(message: str) -> str:
    """One line naming the ops a TFLite conversion could not map to builtins, with their
    operand element types and, when known, where they come from."""
    ops = []
    for listed in _SELECT_OPS.findall(message):
        ops += [op.strip() for op in listed.split(",") if op.strip()]
    ops += _NOT_BUILTIN.findall(message) + [op for op, _ in _DETAIL.findall(message)]
    ops = list(dict.fromkeys(ops))
    if not ops:
        lines = [line.strip() for line in message.strip().splitlines() if "error" in line.lower()]
        return lines[-1] if lines else message.strip().splitlines()[-1]
    details = {}
    for op, operands in _DETAIL.findall(message):
        # "tensor<1x6x5x4x4x16xf32>" -> "f32 6-D"
        described = [f"{t} {dims.count('x')}-D" for dims, t in _OPERAND.findall(operands)]
        details.setdefault(op, ", ".join(described))
    parts = []
    for op in ops:
        text = f"{op}({details.get(op, '')})"
        ranks = [int(r) for r in re.findall(r"(\d+)-D", details.get(op, ""))]
        if op in _KNOWN_CAUSES:
            text += f": {_KNOWN_CAUSES[op]}"
        elif ranks and max(ranks) > 5:
            text += ": TFLite kernels take tensors of at most 5 dimensions"
        parts.append(text)
    return "ops without a TFLite builtin kernel: " + "; ".join(parts)


@contextlib.contextmanager
def quiet_native_stderr():
    """Send what C++ code writes to file descriptor 2 to a temporary file for the duration (the
    MLIR converter prints whole graphs there on failure; the exception holds what we need).
    Set DEEPFILL_TF_VERBOSE=1 to keep it."""
    if os.environ.get("DEEPFILL_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def convert_tflite(generator, **kwargs) -> bytes:
    """Convert ``single_image_function(generator, **kwargs)`` with TFLite builtin ops only.

    Raises:
      DeepfillError: an op has no TFLite builtin kernel (the message names it).
    """
    fn = single_image_function(generator, **kwargs)
    # No trackable object: the converter then freezes the function's captured variables
    # into constants. Given the generator, it would convert through a temporary SavedModel of
    # it, a path that depends on what the Keras model has traced (it gave wrong pixels for a
    # generator built layer by layer, and failed silently otherwise).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with quiet_native_stderr():
            return converter.convert()
    except Exception as e:  # ConverterError and friends, whose module path is private
        raise DeepfillError(
            f"cannot convert to TFLite: {describe_converter_error(str(e))}"
        ) from None


def export_tflite(generator, path: str, *, overwrite: bool = False, **kwargs) -> str:
    """Write ``convert_tflite(generator, **kwargs)`` to ``path`` atomically; returns ``path``.

    Raises:
      DeepfillError: ``path`` exists and ``overwrite`` is False, or conversion is impossible.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise DeepfillError(f"{path} already exists (use --overwrite)")
    write_bytes_atomic(path, convert_tflite(generator, **kwargs))
    return path


def run_tflite(model: bytes, image, mask, guide=None):
    """Run a model written by ``export_tflite`` with ``tf.lite.Interpreter``.

    Args:
      model: the .tflite file's bytes.
      image: (1, H, W, 3) uint8 RGB; mask: (1, H, W, 1) uint8, > 127 = hole;
      guide: (1, H, W, 3) uint8 RGB edge image (guided models only).

    Returns:
      (1, H, W, 3) uint8 RGB.
    """
    interpreter = tf.lite.Interpreter(model_content=model)
    feeds = {"image": image, "mask": mask, "guide": guide}
    details = {d["name"]: d for d in interpreter.get_input_details()}
    for name, detail in details.items():
        if list(detail["shape"]) != list(feeds[name].shape):
            interpreter.resize_tensor_input(detail["index"], list(feeds[name].shape))
    interpreter.allocate_tensors()
    for name, detail in details.items():
        interpreter.set_tensor(detail["index"], feeds[name])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
