"""neuralgym's ``resize``: TF1 resizing with ``align_corners=True``.

The original code resizes with ``tf.image.resize_*(..., align_corners=True)``. For nearest
neighbour that means ``src = min(round_half_away(dst * (n_in - 1) / (n_out - 1)), n_in - 1)``,
so 128 -> 32 picks row 25 (not 24) and TF2's half-pixel ``tf.image.resize`` gives other rows.
Both functions call the same TF kernels the original used (``ResizeNearestNeighbor`` /
``ResizeBilinear`` with ``align_corners=True``), which are plain graph ops: servable, and
differentiable with respect to the image.
"""

from __future__ import annotations

import tensorflow as tf


def _target_size(x: tf.Tensor, scale: float | None, size) -> tuple[int, int] | tf.Tensor:
    """Static (h, w) like neuralgym: ``int(h * scale)``; dynamic shapes fall back to tensors."""
    if size is not None:
        return size
    h, w = x.shape[1], x.shape[2]
    if h is not None and w is not None:
        return int(h * scale), int(w * scale)
    dyn = tf.shape(x)[1:3]
    return tf.cast(tf.cast(dyn, tf.float32) * scale, tf.int32)


def resize_nearest_align_corners(x: tf.Tensor, scale: float | None = None, size=None) -> tf.Tensor:
    """Nearest-neighbour resize of NHWC ``x`` with TF1 ``align_corners=True`` semantics.

    Args:
      x: (B, H, W, C) tensor of any float dtype.
      scale: multiply H and W by this (truncated to int), as neuralgym's ``resize(scale=...)``.
      size: explicit (h, w) target; overrides ``scale``.

    Returns:
      (B, h, w, C) tensor of ``x``'s dtype.
    """
    if scale is None and size is None:
        raise ValueError("give scale or size")
    return tf.raw_ops.ResizeNearestNeighbor(
        images=x, size=_target_size(x, scale, size), align_corners=True, half_pixel_centers=False
    )


def resize_bilinear_align_corners(x: tf.Tensor, scale: float | None = None, size=None) -> tf.Tensor:
    """Bilinear resize of NHWC ``x`` with TF1 ``align_corners=True`` semantics (float32 out)."""
    if scale is None and size is None:
        raise ValueError("give scale or size")
    return tf.raw_ops.ResizeBilinear(
        images=x, size=_target_size(x, scale, size), align_corners=True, half_pixel_centers=False
    )
