"""Context Encoder training pieces: regions, the overlap-weighted L2 and the BCE GAN loss.

As pathak22/context-encoder ``train.lua`` (centre region) and ``train_random.lua`` (the
paper's random-region variant): 128x128 images in [-1, 1]; the centre 64x64 region (or a
random-pattern region covering 20-30 % of the image) is filled with the mean colour
``2 * (117, 104, 123) / 255 - 1``; the generator's loss is

    (1 - wtl2) * BCE(D(G(x)), real) + mean(W * (G(x) - x_region)^2)

with ``wtl2`` = 0.999 (lambda_rec; lambda_adv = 1 - wtl2 = 0.001) and ``W`` = wtl2 inside
the filled region and ``10 * wtl2`` on the ``overlap`` border the network also sees (the
original weights the gradient this way; ``train_random.lua``: 10x on the known pixels);
the discriminator's is ``BCE(D(real), 1) + BCE(D(G(x)), 0)``. Adam, lr 0.0002 (x10 for G
when 0 < wtl2 < 1), beta1 0.5. The original zeroes every convolution bias before each step;
the task keeps them at zero (not trainable).

Conventions: images (B, 128, 128, 3) float32 RGB in [-1, 1]; masks (1 or B, H, W, 1), 1 = hole.
"""

from __future__ import annotations

import tensorflow as tf

from deepfill_tf.models.context_encoder import FILL_COLOUR_255, INPUT_SIZE, OUTPUT_SIZE

OVERLAP_L2_WEIGHT = 10.0


def fill_colour():
    """(3,) float32: the original's fill colour in [-1, 1]."""
    return tf.constant([2.0 * c / 255.0 - 1.0 for c in FILL_COLOUR_255], tf.float32)


def overlap_weights(size: int = OUTPUT_SIZE, overlap: int = 4, wtl2: float = 0.999):
    """(1, size, size, 1) float32: ``wtl2`` inside ``[overlap, size - overlap)``,
    ``10 * wtl2`` on the border (``train.lua`` ``wtl2Matrix``); all ``wtl2`` if overlap = 0."""
    if overlap == 0:
        return tf.fill((1, size, size, 1), tf.constant(wtl2, tf.float32))
    idx = tf.range(size)
    inner = (idx >= overlap) & (idx < size - overlap)
    inside = tf.cast(inner[:, None] & inner[None, :], tf.float32)
    w = wtl2 * (inside + OVERLAP_L2_WEIGHT * (1.0 - inside))
    return w[None, :, :, None]


def reconstruction_loss(pred, target, weights):
    """``mean(W * (pred - target)^2)``: MSECriterion (mean over elements) with the original's
    per-pixel weights folded in."""
    return tf.reduce_mean(weights * tf.square(pred - target))


def _bce(logits, label: float):
    labels = tf.fill(tf.shape(logits), tf.cast(label, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_loss(real_logits, fake_logits):
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def generator_loss(fake_logits, pred, target, weights, wtl2: float = 0.999):
    """``(1 - wtl2) * BCE(D(G(x)), 1) + mean(W * (G(x) - x)^2)`` (W already holds wtl2)."""
    return (1.0 - wtl2) * _bce(fake_logits, 1.0) + reconstruction_loss(pred, target, weights)


def centre_inputs(images, overlap: int = 4):
    """``train.lua``: (B, 128, 128, 3) -> (filled input, real 64x64 centre)."""
    q = INPUT_SIZE // 4
    real_centre = images[:, q : q + OUTPUT_SIZE, q : q + OUTPUT_SIZE, :]
    lo, hi = q + overlap, q + OUTPUT_SIZE - overlap
    idx = tf.range(INPUT_SIZE)
    inner = (idx >= lo) & (idx < hi)
    region = tf.cast(inner[:, None] & inner[None, :], images.dtype)[None, :, :, None]
    filled = images * (1.0 - region) + tf.reshape(fill_colour(), (1, 1, 1, 3)) * region
    return filled, real_centre


def random_pattern_mask(
    seed,
    size: int = INPUT_SIZE,
    res: float = 0.06,
    density: float = 0.25,
    area=(0.2, 0.3),
    tries: int = 16,
):
    """``train_random.lua``'s random region: uniform noise at ``res`` x the resolution,
    bicubic-upscaled, thresholded at ``< density``; a window whose hole fraction lies in
    ``area`` (the first of ``tries`` candidates, else the one closest to the middle).

    Returns (1, size, size, 1) float32, 1 = hole (shared by the batch, as the original)."""
    cells = int(size * res) + 4
    up = int(round(cells / res))
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), tries * 2)
    cands = []
    for t in range(tries):
        low = tf.random.stateless_uniform((1, cells, cells, 1), seeds[2 * t])
        big = tf.image.resize(low, (up, up), method="bicubic")
        window = tf.image.stateless_random_crop(big, (1, size, size, 1), seeds[2 * t + 1])
        cands.append(tf.cast(window < density, tf.float32))
    cands = tf.stack(cands)  # (tries, 1, size, size, 1)
    frac = tf.reduce_mean(cands, axis=[1, 2, 3, 4])
    ok = (frac > area[0]) & (frac < area[1])
    closest = tf.argmin(tf.abs(frac - 0.5 * (area[0] + area[1])))
    first_ok = tf.argmax(tf.cast(ok, tf.int32))
    pick = tf.where(tf.reduce_any(ok), first_ok, closest)
    return tf.gather(cands, pick)


def random_region_inputs(images, mask):
    """``train_random.lua``: fill the hole pixels with the mean colour; the target is the
    whole image."""
    filled = images * (1.0 - mask) + tf.reshape(fill_colour(), (1, 1, 1, 3)) * mask
    return filled, images


def random_region_weights(mask, wtl2: float = 0.999, overlap: bool = True):
    """``train_random.lua`` with ``useOverlapPred``: ``wtl2`` in the hole, 10x on the known
    pixels; without it ``wtl2`` everywhere."""
    if not overlap:
        return tf.ones_like(mask) * wtl2
    return wtl2 * (mask + OVERLAP_L2_WEIGHT * (1.0 - mask))
