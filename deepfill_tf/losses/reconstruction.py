"""DeepFill reconstruction losses: v1's spatially discounted local L1 and hole-excluding
``ae_loss``, v2's plain full-image L1.

All image tensors are NHWC float32 BGR in [-1, 1]; masks are (1, H, W, 1) (shared by the
batch, as the original) or (B, H, W, 1), float, 1 = hole. Every function returns a scalar
float32 tensor, a mean over the whole batch (the original's ``tf.reduce_mean``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = [
    "discounted_l1",
    "spatial_discounting_mask",
    "v1_ae_loss",
    "v1_l1_loss",
    "v2_ae_loss",
]


def spatial_discounting_mask(
    height: int, width: int, gamma: float = 0.9, discounted: bool = True
) -> np.ndarray:
    """v1's spatial discounting weights of the local patch (DeepFill v1 paper, Sec. 4.1).

    ``D[i, j] = max(gamma ** min(i, height - i), gamma ** min(j, width - j))``: the weight of
    a pixel is set by its distance to the NEAREST patch border along either axis (max of the
    two), so it is 1 on the whole first row/column and decays towards the centre. Note
    ``height - i`` (not ``height - 1 - i``): the last row is one step from the border, so the
    weights are not symmetric (row 0 weighs 1, row ``height - 1`` weighs ``gamma``). Computed in
    float64 and rounded to float32, as the original (NumPy, then ``tf.constant(float32)``).

    Args:
        height, width: local patch size (config ``height`` x ``width``, the box size).
        gamma: ``spatial_discounting_gamma`` (0.9).
        discounted: ``discounted_mask``; False gives all ones.

    Returns:
        float32 (1, height, width, 1).
    """
    if not discounted:
        return np.ones((1, height, width, 1), np.float32)
    rows = np.arange(height)
    cols = np.arange(width)
    row_w = float(gamma) ** np.minimum(rows, height - rows).astype(np.float64)  # [h]
    col_w = float(gamma) ** np.minimum(cols, width - cols).astype(np.float64)  # [w]
    weights = np.maximum(row_w[:, None], col_w[None, :])
    return weights.astype(np.float32)[None, :, :, None]


def discounted_l1(target: tf.Tensor, prediction: tf.Tensor, weights) -> tf.Tensor:
    """``mean(|target - prediction| * weights)`` over every element (weights broadcast).

    Args:
        target, prediction: (B, h, w, C).
        weights: broadcastable to (B, h, w, C), e.g. ``spatial_discounting_mask`` (1, h, w, 1).
    """
    return tf.reduce_mean(tf.abs(target - prediction) * weights)


def v1_l1_loss(
    real_local: tf.Tensor,
    x1_local: tf.Tensor,
    x2_local: tf.Tensor | None,
    weights,
    coarse_l1_alpha: float = 1.2,
) -> tf.Tensor:
    """v1 ``l1_loss``: discounted L1 of the coarse (x1) and refined (x2) local patches.

    ``coarse_l1_alpha * mean(|real - x1| * D) + mean(|real - x2| * D)``; the x2 term is left
    out when ``x2_local`` is None (``pretrain_coarse_network``).

    Args:
        real_local, x1_local, x2_local: (B, h, w, 3) crops at the box (before shrinking).
        weights: ``spatial_discounting_mask(h, w, gamma)`` (1, h, w, 1).
        coarse_l1_alpha: ``COARSE_L1_ALPHA`` (1.2).
    """
    loss = coarse_l1_alpha * discounted_l1(real_local, x1_local, weights)
    if x2_local is not None:
        loss = loss + discounted_l1(real_local, x2_local, weights)
    return loss


def v1_ae_loss(
    real: tf.Tensor,
    x1: tf.Tensor,
    x2: tf.Tensor | None,
    hole_mask: tf.Tensor,
    coarse_l1_alpha: float = 1.2,
) -> tf.Tensor:
    """v1 ``ae_loss``: L1 on the VALID (non-hole) pixels, normalised by their fraction.

    ``(coarse_l1_alpha * mean(|real - x1| * (1 - m)) + mean(|real - x2| * (1 - m)))
    / mean(1 - m)``; the means of the products run over (B, H, W, 3), ``mean(1 - m)`` over the
    mask's own elements. The x2 term is left out when ``x2`` is None (pretraining).

    Args:
        real, x1, x2: (B, H, W, 3).
        hole_mask: (1, H, W, 1) or (B, H, W, 1), 1 = hole.
        coarse_l1_alpha: ``COARSE_L1_ALPHA`` (1.2).
    """
    valid = 1.0 - hole_mask
    loss = coarse_l1_alpha * tf.reduce_mean(tf.abs(real - x1) * valid)
    if x2 is not None:
        loss = loss + tf.reduce_mean(tf.abs(real - x2) * valid)
    return loss / tf.reduce_mean(valid)


def v2_ae_loss(
    real: tf.Tensor, x1: tf.Tensor, x2: tf.Tensor, l1_loss_alpha: float = 1.0
) -> tf.Tensor:
    """v2 ``ae_loss``: ``alpha * mean|real - x1| + alpha * mean|real - x2|`` over ALL pixels
    (hole and valid alike, unlike v1).

    Args:
        real, x1, x2: (B, H, W, 3).
        l1_loss_alpha: ``l1_loss_alpha`` (1).
    """
    return l1_loss_alpha * tf.reduce_mean(tf.abs(real - x1)) + l1_loss_alpha * tf.reduce_mean(
        tf.abs(real - x2)
    )
