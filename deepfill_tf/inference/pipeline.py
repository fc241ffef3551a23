"""The inpainting computation from uint8 pixels to uint8 pixels, as one TF graph function.

The CLI and the exported SavedModels both run ``inpaint_uint8``, so they give the same pixels.
Steps (original test.py semantics unless stated):

1. RGB -> BGR, ``x = image / 127.5 - 1`` (true division, float32).
2. Pad (reflect) the bottom/right to a multiple of 8 (test.py crops instead; we keep the size).
3. Run the generator on ``x * (1 - mask)`` plus the ones/mask (and guide edge) channels.
4. Post-process, then crop back to the input size and return RGB uint8:
   * default: known pixels are copied unchanged; hole pixels are ``round((x2 + 1) * 127.5)``
     clamped to [0, 255];
   * ``original_postprocess=True``: test.py bit for bit: ``complete = x2 * mask + x * (1 - mask)``
     then clamp and TRUNCATE ``(complete + 1) * 127.5`` (this also lowers about a quarter of
     the known pixel values by one level, a float round-trip artefact of the original).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

GRID = 8  # contextual attention works at 1/8 resolution
MIN_SIDE = 16  # smallest image side accepted (1/8 grid of at least 2x2)
EDGE_THRESHOLD = 0.6  # v2 guided: edge = first channel / 255 > 0.6 (inpaint.yml edge_threshold)


def _original_known_pixel_table() -> np.ndarray:
    """uint8 value test.py writes for a known pixel of value u: trunc(((u/127.5 - 1) + 1) * 127.5)
    in float32 (about a quarter of the values come out one level lower)."""
    u = np.arange(256, dtype=np.float32)
    x = u / np.float32(127.5) - np.float32(1.0)
    return np.clip((x + np.float32(1.0)) * np.float32(127.5), 0, 255).astype(np.int32)


_ORIGINAL_KNOWN_PIXEL_TABLE = _original_known_pixel_table()


def _check_inputs(image, hole_mask, guide):
    size = tf.shape(image)[1:3]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(hole_mask)[1:3],
            size,
            message="image and mask sizes differ (mask must be H x W of the image)",
        ),
        tf.debugging.assert_greater_equal(
            tf.reduce_min(size), MIN_SIDE, message=f"image is smaller than {MIN_SIDE}x{MIN_SIDE}"
        ),
    ]
    if guide is not None:
        checks.append(
            tf.debugging.assert_equal(
                tf.shape(guide)[1:3], size, message="image and guide sizes differ"
            )
        )
    return checks


def _pad_to_grid(x, pad_h, pad_w):
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
    original_postprocess: bool = False,
) -> tf.Tensor:
    """Inpaint a batch of images.

    Args:
      model: a DeepFill generator (``x1, x2, flow = model(image_bgr, hole_mask)``).
      image: (B, H, W, 3) uint8 RGB.
      hole_mask: (B, H, W, 1) or (1, H, W, 1) float32, 1 = hole (0/1 values).
      guide: (B, H, W, 3) uint8 RGB edge image for guided v2 (white = edge), else None.
      original_postprocess: reproduce test.py's post-processing bit for bit.

    Returns:
      (B, H, W, 3) uint8 RGB: the prediction inside the hole, the input outside.
    """
    with tf.control_dependencies(_check_inputs(image, hole_mask, guide)):
        image = tf.identity(image)
    h, w = tf.shape(image)[1], tf.shape(image)[2]
    pad_h, pad_w = (-h) % GRID, (-w) % GRID
    mask = tf.cast(hole_mask, tf.float32)
    bgr = tf.reverse(image, axis=[-1])
    # True division as test.py computes it. Inside tf.function grappler rewrites `x / 127.5` into
    # `x * (1 / 127.5)`, 1 ulp off, which moves truncated outputs by a level; DivNoNan is left
    # alone and equals true division for a non-zero divisor.
    x = tf.math.divide_no_nan(tf.cast(bgr, tf.float32), tf.constant(127.5)) - 1.0
    net_in = x
    if guide is not None:
        # First channel as OpenCV reads it (BGR: blue), thresholded, and only inside the hole.
        edge = tf.cast(tf.cast(guide[..., 2:3], tf.float32) / 255.0 > EDGE_THRESHOLD, tf.float32)
        net_in = tf.concat([x, edge], axis=-1)  # the generator keeps it inside the hole only
    _, x2, _ = model(_pad_to_grid(net_in, pad_h, pad_w), _pad_to_grid(mask, pad_h, pad_w))
    x2 = x2[:, :h, :w, :]
    hole = tf.broadcast_to(mask > 0.5, tf.shape(x2))
    if original_postprocess:
        # test.py truncates (complete + 1) * 127.5 with complete = x2 in the hole and
        # x = u / 127.5 - 1 outside. Outside, the result depends only on the input byte, so a
        # 256-entry table computed once in float32 gives it exactly, whatever a converter
        # (grappler, TFLite) does to the division.
        predicted = tf.cast(tf.clip_by_value((x2 + 1.0) * 127.5, 0.0, 255.0), tf.int32)
        known = tf.gather(_ORIGINAL_KNOWN_PIXEL_TABLE, tf.cast(bgr, tf.int32))
    else:
        predicted = tf.cast(tf.round(tf.clip_by_value((x2 + 1.0) * 127.5, 0.0, 255.0)), tf.int32)
        known = tf.cast(bgr, tf.int32)
    # Select on int32: TFLite's SELECT has no uint8 kernel.
    out_bgr = tf.cast(tf.where(hole, predicted, known), tf.uint8)
    return tf.reverse(out_bgr, axis=[-1])
