"""A 3x3 'SAME' convolution of an x2 nearest-neighbour upsampled image, without the upsampling.

The original ``gen_deconv`` (JiahuiYu/generative_inpainting ``inpaint_ops.py``) repeats every
pixel twice in each direction (neuralgym's ``resize`` with ``align_corners=True`` at scale 2)
and convolves the result with a 3x3 kernel ``k``. Output pixel (2i + a, 2j + b) then reads
input rows (i - 1, i) with weights (k0, k1 + k2) when a = 0 and rows (i, i + 1) with weights
(k0 + k1, k2) when a = 1; the same holds for columns. So each of the four output phases
(a, b) is a 2x2 convolution of the input itself, with a folded kernel and its own one-pixel
padding, and the phases interleave into the output (``depth_to_space``).

The result is the same convolution up to float32 reassociation (``k1 + k2`` is summed before
the product), with 16 instead of 36 multiply-adds per input pixel and channel pair, and
without the 4x larger upsampled tensor (this sub-pixel form is Shi et al. 2016, "Real-Time
Single Image and Video Super-Resolution Using an Efficient Sub-Pixel CNN").
"""

from __future__ import annotations

import tensorflow as tf


def _fold(kernel: tf.Tensor, axis: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The two 2-tap kernels (phase 0, phase 1) of a 3-tap ``kernel`` along ``axis``."""
    k0, k1, k2 = tf.unstack(kernel, 3, axis=axis)
    return tf.stack([k0, k1 + k2], axis=axis), tf.stack([k0 + k1, k2], axis=axis)


def phase_kernel(kernel: tf.Tensor, phase: int) -> tf.Tensor:
    """Folded (2, 2, C_in, C_out) kernel of output phase ``phase`` (0..3 = (a, b) in (0, 0),
    (0, 1), (1, 0), (1, 1)) from a (3, 3, C_in, C_out) HWIO ``kernel``."""
    a, b = divmod(phase, 2)
    return _fold(_fold(kernel, 0)[a], 1)[b]


def phase_paddings(phase: int) -> list[list[int]]:
    """NHWC zero paddings of ``phase``: one pixel before the input for phase 0 of an axis
    (it reads rows i - 1, i), one after for phase 1 (rows i, i + 1)."""
    a, b = divmod(phase, 2)
    return [[0, 0], [1 - a, a], [1 - b, b], [0, 0]]


def upsample2x_conv3x3_phase(x: tf.Tensor, kernel: tf.Tensor, phase: int) -> tf.Tensor:
    """Phase ``phase`` of ``conv3x3_same(upsample2x_nearest(x), kernel)`` (no bias).

    Args:
      x: (B, H, W, C_in) float.
      kernel: (3, 3, C_in, C_out).
      phase: 0..3, the output pixels (2i + a, 2j + b) with (a, b) = divmod(phase, 2).

    Returns:
      (B, H, W, C_out). ``interleave_phases`` assembles the four phases; they are kept apart
      so that elementwise work (bias, activation, gating) runs before the interleave.
    """
    # tf.pad + VALID rather than the conv's explicit paddings: the same sums, and oneDNN's
    # gradients of an explicitly padded conv are a third slower (measured, training shapes).
    padded = tf.pad(x, phase_paddings(phase))
    return tf.nn.conv2d(padded, phase_kernel(kernel, phase), strides=1, padding="VALID")


def interleave_phases(phases: list[tf.Tensor]) -> tf.Tensor:
    """(B, 2H, 2W, C) from the four (B, H, W, C) phases, in phase order 0..3."""
    return tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)


def upsample2x_conv3x3(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """``conv3x3_same(upsample2x_nearest(x), kernel)``: (B, H, W, C_in) -> (B, 2H, 2W, C_out)."""
    return interleave_phases([upsample2x_conv3x3_phase(x, kernel, p) for p in range(4)])
