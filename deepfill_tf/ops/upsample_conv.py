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

import numpy as np
import tensorflow as tf


def _folding_matrix() -> np.ndarray:
    """(16, 9) 0/1 matrix: row (phase, u, v) of the folded 2x2 kernels sums the 3x3 taps it
    takes (phase = 2a + b; along an axis, phase 0 takes taps (0), (1, 2), phase 1 (0, 1), (2))."""
    taps = {0: [[0], [1, 2]], 1: [[0, 1], [2]]}
    fold = np.zeros((4, 2, 2, 3, 3), np.float32)
    for a in (0, 1):
        for b in (0, 1):
            for u, rows in enumerate(taps[a]):
                for v, cols in enumerate(taps[b]):
                    for i in rows:
                        for j in cols:
                            fold[2 * a + b, u, v, i, j] = 1.0
    return fold.reshape(16, 9)


_FOLD = _folding_matrix()


def phase_kernels(kernel: tf.Tensor) -> list[tf.Tensor]:
    """Folded (2, 2, C_in, C_out) kernels of the output phases 0..3 ((a, b) = (0, 0), (0, 1),
    (1, 0), (1, 1)) from a (3, 3, C_in, C_out) HWIO ``kernel``: one product with a 0/1
    matrix, each folded tap the sum of at most two taps (so one rounding, as ``k1 + k2``)."""
    shape = tf.shape(kernel)
    flat = tf.reshape(kernel, [9, -1])
    folded = tf.matmul(tf.constant(_FOLD, kernel.dtype), flat)  # (16, C_in * C_out)
    return tf.unstack(tf.reshape(folded, tf.concat([[4, 2, 2], shape[2:]], 0)), 4)


def phase_paddings(phase: int) -> list[list[int]]:
    """NHWC zero paddings of ``phase``: one pixel before the input for phase 0 of an axis
    (it reads rows i - 1, i), one after for phase 1 (rows i, i + 1)."""
    a, b = divmod(phase, 2)
    return [[0, 0], [1 - a, a], [1 - b, b], [0, 0]]


def phase_conv(x: tf.Tensor, folded: tf.Tensor, phase: int) -> tf.Tensor:
    """Phase ``phase`` of the upsampled conv: (B, H, W, C_in) -> (B, H, W, C_out), given the
    phase's folded (2, 2, C_in, C_out) kernel (``phase_kernels``); no bias."""
    # tf.pad + VALID rather than the conv's explicit paddings: the same sums, and oneDNN's
    # gradients of an explicitly padded conv are a third slower (measured, training shapes).
    return tf.nn.conv2d(tf.pad(x, phase_paddings(phase)), folded, strides=1, padding="VALID")


def interleave_phases(phases: list[tf.Tensor]) -> tf.Tensor:
    """(B, 2H, 2W, C) from the four (B, H, W, C) phases, in phase order 0..3. Kept apart until
    here so that elementwise work (bias, activation, gating) runs on the smaller tensors."""
    return tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)


def upsample2x_conv3x3(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """``conv3x3_same(upsample2x_nearest(x), kernel)``: (B, H, W, C_in) -> (B, 2H, 2W, C_out),
    no bias."""
    kernels = phase_kernels(kernel)
    return interleave_phases([phase_conv(x, kernels[p], p) for p in range(4)])
