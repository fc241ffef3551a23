"""The inpainting computation from uint8 pixels to uint8 pixels, as one TF graph function.

The CLI, the exported SavedModels and TFLite models all run ``inpaint_uint8``, so they give
the same pixels. It is the same for every family (``deepfill_tf.registry.Family``):

1. check the sizes (mask and extra inputs as the image; sides >= ``family.min_side``);
2. reflect-pad the bottom/right to a multiple of ``family.size_multiple`` (the originals
   crop instead; we keep the size);
3. ``family.predict``: the network's prediction as RGB pixels on the [0, 255] scale;
4. crop back, then ``family.composite``: by default known pixels are copied unchanged and
   hole pixels are the rounded prediction (DeepFill's ``original_postprocess`` reproduces
   test.py's truncation instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from deepfill_tf.registry import Family, family_of

# The DeepFill families' values, kept as module constants for callers of the older API.
GRID = 8
MIN_SIDE = 16


def _check_inputs(image, hole_mask, inputs: Mapping[str, tf.Tensor], min_side: int) -> list:
    size = tf.shape(image)[1:3]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(hole_mask)[1:3],
            size,
            message="image and mask sizes differ (mask must be H x W of the image)",
        ),
        tf.debugging.assert_greater_equal(
            tf.reduce_min(size), min_side, message=f"image is smaller than {min_side}x{min_side}"
        ),
    ]
    for name, value in inputs.items():
        checks.append(
            tf.debugging.assert_equal(
                tf.shape(value)[1:3], size, message=f"image and {name} sizes differ"
            )
        )
    return checks


def _pad(x: tf.Tensor, pad_h, pad_w) -> tf.Tensor:
    y = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    # Restate the static channel count, which tf.pad loses with dynamic pads (TFLite needs it).
    shape = tf.shape(y)
    return tf.reshape(y, [shape[0], shape[1], shape[2], x.shape[-1]])


def inpaint_uint8(
    model,
    image: tf.Tensor,
    hole_mask: tf.Tensor,
    guide: tf.Tensor | None = None,
    *,
    family: Family | None = None,
    inputs: Mapping[str, tf.Tensor] | None = None,
    **options: Any,
) -> tf.Tensor:
    """Inpaint a batch of images.

    Args:
      model: a generator of a registered family (``family`` defaults to ``family_of(model)``).
      image: (B, H, W, 3) uint8 RGB.
      hole_mask: (B, H, W, 1) or (1, H, W, 1) float32, 1 = hole (0/1 values).
      guide: DeepFill v2's edge image, the same as ``inputs={"guide": guide}``.
      inputs: the family's extra image inputs by name, each (B, H, W, 3) uint8 RGB.
      **options: the family's inference options (e.g. ``original_postprocess=True``).

    Returns:
      (B, H, W, 3) uint8 RGB: the prediction inside the hole, the input outside.
    """
    family = family or family_of(model)
    inputs = dict(inputs or {})
    if guide is not None:
        inputs["guide"] = guide
    with tf.control_dependencies(_check_inputs(image, hole_mask, inputs, family.min_side)):
        image = tf.identity(image)
    h, w = tf.shape(image)[1], tf.shape(image)[2]
    multiple = int(family.size_multiple)
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    mask = tf.cast(hole_mask, tf.float32)
    padded = {name: _pad(tf.cast(v, tf.float32), pad_h, pad_w) for name, v in inputs.items()}
    predicted = family.predict(
        model,
        _pad(tf.cast(image, tf.float32), pad_h, pad_w),
        _pad(mask, pad_h, pad_w),
        padded,
    )
    predicted = predicted[:, :h, :w, :]
    hole = tf.broadcast_to(mask > 0.5, tf.shape(predicted))
    return family.composite(predicted, image, hole, options)
