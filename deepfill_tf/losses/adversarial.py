"""Adversarial losses of DeepFill: v1's WGAN with the hole-weighted gradient penalty, v2's
SN-PatchGAN hinge loss (neuralgym ``gan_ops``).

Critic / discriminator scores are any float32 shape with the batch first: (B, 1) for the v1
critics, (B, N) flattened feature maps for the SN-PatchGAN. ``pos`` are the scores of real
images, ``neg`` of completed ones. Each loss returns ``(g_loss, d_loss)``, scalars to
minimise, means over every element.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

__all__ = [
    "gradient_penalty",
    "hinge_loss",
    "random_interpolates",
    "slope_penalty",
    "wgan_loss",
]


def wgan_loss(pos: tf.Tensor, neg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """WGAN losses (neuralgym ``gan_wgan_loss``): ``g = -mean(neg)``, ``d = mean(neg - pos)``.

    Args:
        pos, neg: critic scores of real and fake samples, same shape (B, 1).
    """
    return -tf.reduce_mean(neg), tf.reduce_mean(neg - pos)


def hinge_loss(pos: tf.Tensor, neg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """SN-PatchGAN hinge losses (neuralgym ``gan_hinge_loss``).

    ``d = 0.5 * mean(relu(1 - pos)) + 0.5 * mean(relu(1 + neg))``, ``g = -mean(neg)``: every
    element of the flattened patch map counts as one GAN output.

    Args:
        pos, neg: discriminator outputs (B, N) for real and completed images.
    """
    hinge_pos = tf.reduce_mean(tf.nn.relu(1.0 - pos))
    hinge_neg = tf.reduce_mean(tf.nn.relu(1.0 + neg))
    return -tf.reduce_mean(neg), 0.5 * hinge_pos + 0.5 * hinge_neg


def random_interpolates(real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """``real + alpha * (fake - real)`` with one factor per sample (neuralgym
    ``random_interpolates``, which draws ``alpha ~ U[0, 1)`` of shape (B, 1)).

    Args:
        real, fake: (B, H, W, C).
        alpha: (B, 1) or (B,) float32 in [0, 1).
    """
    alpha = tf.reshape(tf.cast(alpha, real.dtype), [-1, 1, 1, 1])  # (B, 1) -> (B, 1, 1, 1)
    return real + alpha * (fake - real)


def slope_penalty(gradients: tf.Tensor, mask=None, norm: float = 1.0) -> tf.Tensor:
    """``mean((sqrt(sum(grad^2 * mask over H, W, C)) - norm)^2)`` (neuralgym
    ``gradients_penalty`` once it has the gradients).

    DeepFill v1 passes the HOLE mask, so only the gradient at hole pixels counts.

    Args:
        gradients: (B, H, W, C) gradient of the critic output w.r.t. its input.
        mask: None (all ones) or broadcastable to (B, H, W, C), e.g. (1, H, W, 1), 1 = hole.
        norm: target slope (1).
    """
    squares = tf.square(gradients)
    if mask is not None:
        squares = squares * mask
    slopes = tf.sqrt(tf.reduce_sum(squares, axis=[1, 2, 3]))  # (B,)
    return tf.reduce_mean(tf.square(slopes - norm))


def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor],
    interpolates: tf.Tensor,
    mask=None,
    norm: float = 1.0,
) -> tf.Tensor:
    """WGAN-GP penalty of ``critic`` at ``interpolates`` (Gulrajani et al. 2017), optionally
    weighted by ``mask``.

    The gradient is that of ``sum(critic(interpolates))`` (what ``tf.gradients`` of a
    non-scalar gives), computed with an inner ``tf.GradientTape``; under an outer tape the
    penalty stays differentiable w.r.t. the critic's variables (second order).

    Args:
        critic: callable (B, H, W, C) -> scores (B, ...).
        interpolates: (B, H, W, C), e.g. ``random_interpolates(real, fake, alpha)``.
        mask, norm: as ``slope_penalty``.
    """
    interpolates = tf.convert_to_tensor(interpolates)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(interpolates)
        scores = critic(interpolates)
    return slope_penalty(tape.gradient(scores, interpolates), mask, norm)
