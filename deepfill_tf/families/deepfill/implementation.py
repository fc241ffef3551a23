"""The TensorFlow half of the DeepFill families: networks, prediction, original output.

Prediction follows the original ``test.py`` (JiahuiYu/generative_inpainting): BGR,
``x = image / 127.5 - 1`` (true division), the generator on ``x`` with the hole mask (and the
guide's edge channel), ``(x2 + 1) * 127.5`` back to pixels.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.families.deepfill.task import make_task  # noqa: F401  (the family's task)
from deepfill_tf.models.deepfill_generator import (
    DeepFillGenerator,
    DeepFillV1Generator,
    DeepFillV2Generator,
)
from deepfill_tf.registry import ModelSpec

EDGE_THRESHOLD = 0.6  # v2 guided: edge = first channel (blue) / 255 > 0.6 (inpaint.yml)


def build_generator(spec: ModelSpec):
    """A built (unloaded) DeepFill generator for ``spec`` (any size builds the variables)."""
    if spec.family == "deepfill_v1":
        return DeepFillV1Generator(cnum=spec.cnum).build_for(64, 64)
    return DeepFillV2Generator(cnum=spec.cnum, guided=spec.guided).build_for(64, 64)


def predict(generator, image: tf.Tensor, hole_mask: tf.Tensor, inputs) -> tf.Tensor:
    """``(x2 + 1) * 127.5`` as RGB (see ``Family.predict`` for shapes and ranges)."""
    bgr = tf.reverse(image, axis=[-1])
    # True division as test.py computes it. Inside tf.function grappler rewrites `x / 127.5`
    # into `x * (1 / 127.5)`, 1 ulp off, which moves truncated outputs by a level; DivNoNan is
    # left alone and equals true division for a non-zero divisor.
    x = tf.math.divide_no_nan(bgr, tf.constant(127.5)) - 1.0
    guide = inputs.get("guide")
    if guide is not None:
        # First channel as OpenCV reads it (BGR: blue), thresholded; the generator keeps it
        # inside the hole only.
        edge = tf.cast(guide[..., 2:3] / 255.0 > EDGE_THRESHOLD, tf.float32)
        x = tf.concat([x, edge], axis=-1)
    # Only the hole's pixels of x2 are kept by the composite: the attention runs where they
    # read it (exact there; see DeepFillGenerator's ``hole_only``). Other Keras models
    # exported as DeepFill (e.g. the tests' stand-ins) run whole.
    only = {"hole_only": True} if isinstance(generator, DeepFillGenerator) else {}
    _, x2, _ = generator(x, hole_mask, **only)
    return tf.reverse((x2 + 1.0) * 127.5, axis=[-1])


def _original_known_pixel_table() -> np.ndarray:
    """uint8 value test.py writes for a known pixel of value u: trunc(((u/127.5 - 1) + 1) * 127.5)
    in float32 (about a quarter of the values come out one level lower)."""
    u = np.arange(256, dtype=np.float32)
    x = u / np.float32(127.5) - np.float32(1.0)
    return np.clip((x + np.float32(1.0)) * np.float32(127.5), 0, 255).astype(np.int32)


_ORIGINAL_KNOWN_PIXEL_TABLE = _original_known_pixel_table()


def original_composite(predicted: tf.Tensor, image: tf.Tensor, hole: tf.Tensor) -> tf.Tensor:
    """test.py bit for bit: it truncates ``(complete + 1) * 127.5`` with ``complete = x2`` in
    the hole and ``x = u / 127.5 - 1`` outside. Outside, the result depends only on the input
    byte, so a 256-entry table computed once in float32 gives it exactly, whatever a converter
    (grappler, TFLite) does to the division. Same shapes as ``Family.composite``."""
    levels = tf.cast(tf.clip_by_value(predicted, 0.0, 255.0), tf.int32)
    known = tf.gather(_ORIGINAL_KNOWN_PIXEL_TABLE, tf.cast(image, tf.int32))
    # Select on int32: TFLite's SELECT has no uint8 kernel.
    return tf.cast(tf.where(hole, levels, known), tf.uint8)
