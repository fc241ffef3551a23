"""GLCIC training pieces: data preparation, holes, local patches, losses and the three phases.

The recipe of Iizuka, Simo-Serra & Ishikawa (SIGGRAPH 2017), section 3.3-3.4 (the released
repository satoshiiizuka/siggraph2017_inpainting has no training code):

* images with the shorter side rescaled uniformly in [256, 384], a random 256x256 crop;
* one rectangular hole per image, sides uniform in [96, 128], filled with the dataset mean
  pixel (computed from the training data by :func:`dataset_mean`, stored with the run in the
  generator's ``dataset_mean`` weight); the mask is the 4th input channel;
* the local discriminator sees the 128x128 patch centred on the hole (clipped to the image)
  of a completed image, and a random 128x128 patch of a real image;
* weighted MSE on hole pixels; a binary cross-entropy GAN loss weighted by alpha = 0.0004;
* phase 1 (steps < T_C): completion network alone, MSE only; phase 2 (T_C <= step <
  T_C + T_D): discriminators alone, completion fixed; phase 3: both, jointly, until T.

What the discriminator sees for a completed image is the composite ``x * (1 - M) + C * M``
(the paper's figure and every later method; the paper does not say), documented as our choice.

Conventions: images (B, H, W, 3) float32 RGB in [0, 1]; masks (B, H, W, 1) float32, 1 = hole;
boxes (B, 4) int32 ``[top, left, height, width]``; seeds are stateless ``(2,)`` int tensors.
"""

from __future__ import annotations

import tensorflow as tf

from deepfill_tf.data.pipeline import resolve_source
from deepfill_tf.errors import ConfigError

PHASES = ("completion", "discriminator", "joint")


def phase_index(step, t_c: int, t_d: int):
    """0 (completion only) while ``step < t_c``, 1 (discriminators only) while
    ``step < t_c + t_d``, then 2 (joint). Works on Python ints and tensors."""
    if isinstance(step, int):
        return 0 if step < t_c else (1 if step < t_c + t_d else 2)
    step = tf.cast(step, tf.int64)
    return tf.where(step < t_c, 0, tf.where(step < t_c + t_d, 1, 2))


def phase_name(step: int, t_c: int, t_d: int) -> str:
    return PHASES[phase_index(int(step), t_c, t_d)]


# --------------------------------------------------------------------------------------------
# Data.


def training_image_paths(config, label: str) -> list[str]:
    """The image files of ``config.train_data`` (a ``.flist``, a folder or a glob).

    Raises:
        ConfigError: ``train_data`` is empty or a ``tfds:`` source (these families decode
            files with their own rescale-and-crop).
    """
    if not config.train_data:
        raise ConfigError("key 'train_data' is empty: give a .flist, a folder or a glob")
    if str(config.train_data).startswith("tfds:"):
        raise ConfigError(f"{label} training reads image files (.flist, folder or glob), not tfds:")
    return resolve_source(config.train_data)


def rescale_and_crop(image, seed, short_side=(256, 384), crop: int = 256):
    """One image (H, W, 3) -> (crop, crop, 3) float32: the shorter side rescaled (bilinear,
    antialiased when shrinking) to an integer drawn uniformly in ``short_side``, then a random
    ``crop`` x ``crop`` window. ``seed``: (2,) int stateless seed."""
    image = tf.convert_to_tensor(image)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    lo, hi = int(short_side[0]), int(short_side[1])
    lo = max(lo, crop)
    target = tf.random.stateless_uniform([], seeds[0], lo, max(hi, lo) + 1, dtype=tf.int32)
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.cast(target, tf.float32) / tf.minimum(h, w)
    new_h = tf.maximum(crop, tf.cast(tf.round(h * scale), tf.int32))
    new_w = tf.maximum(crop, tf.cast(tf.round(w * scale), tf.int32))
    resized = tf.image.resize(tf.cast(image, tf.float32), [new_h, new_w], antialias=True)
    return tf.image.stateless_random_crop(resized, [crop, crop, 3], seeds[1])


def random_boxes(batch: int, height: int, width: int, sides=(96, 128), seed=(0, 0)):
    """One rectangular hole per image: (B, 4) int32 ``[top, left, h, w]``, h and w uniform
    integers in ``sides`` (inclusive, capped by the image), placed uniformly inside."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    lo, hi = int(sides[0]), int(sides[1])
    hs = tf.random.stateless_uniform(
        [batch], seeds[0], min(lo, height), min(hi, height) + 1, tf.int32
    )
    ws = tf.random.stateless_uniform(
        [batch], seeds[1], min(lo, width), min(hi, width) + 1, tf.int32
    )
    u = tf.random.stateless_uniform([batch, 2], seeds[2])
    top = tf.cast(tf.floor(u[:, 0] * tf.cast(height - hs + 1, tf.float32)), tf.int32)
    left = tf.cast(tf.floor(u[:, 1] * tf.cast(width - ws + 1, tf.float32)), tf.int32)
    return tf.stack([top, left, hs, ws], axis=1)


def box_masks(boxes, height: int, width: int):
    """(B, 4) boxes -> (B, H, W, 1) float32 masks, 1 inside the box."""
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    top, left, h, w = (boxes[:, i][:, None, None] for i in range(4))
    inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return tf.cast(inside, tf.float32)[..., None]


def centred_patch_offsets(boxes, height: int, width: int, patch: int):
    """Top-left (B, 2) of the ``patch`` x ``patch`` window centred on each box, shifted to
    lie inside the image (the paper's local discriminator input for completed images)."""
    cy = boxes[:, 0] + boxes[:, 2] // 2
    cx = boxes[:, 1] + boxes[:, 3] // 2
    top = tf.clip_by_value(cy - patch // 2, 0, max(height - patch, 0))
    left = tf.clip_by_value(cx - patch // 2, 0, max(width - patch, 0))
    return tf.stack([top, left], axis=1)


def random_patch_offsets(batch: int, height: int, width: int, patch: int, seed=(0, 0)):
    """Top-left (B, 2) of uniformly placed ``patch`` windows (real images)."""
    u = tf.random.stateless_uniform([batch, 2], tf.cast(seed, tf.int64))
    top = tf.cast(tf.floor(u[:, 0] * (height - patch + 1)), tf.int32)
    left = tf.cast(tf.floor(u[:, 1] * (width - patch + 1)), tf.int32)
    return tf.stack([top, left], axis=1)


def crop_patches(images, offsets, patch: int):
    """(B, H, W, C) images, (B, 2) top-left offsets -> (B, patch, patch, C) windows."""
    r = offsets[:, 0][:, None] + tf.range(patch)[None, :]  # (B, patch)
    c = offsets[:, 1][:, None] + tf.range(patch)[None, :]
    rows = tf.gather(images, r, axis=1, batch_dims=1)  # (B, patch, W, C)
    return tf.gather(rows, c, axis=2, batch_dims=1)


def dataset_mean(batches, max_batches: int = 100):
    """The mean RGB pixel in [0, 1] over up to ``max_batches`` batches of (B, H, W, 3) RGB
    [0, 1] images: float32 (3,). The filling colour of the holes and the normalisation of the
    network input (the released models store theirs in the .t7)."""
    total = tf.zeros([3], tf.float64)
    count = tf.constant(0.0, tf.float64)
    for i, images in enumerate(batches):
        if i >= max_batches:
            break
        x = tf.cast(images, tf.float64)
        total += tf.reduce_sum(x, axis=[0, 1, 2])
        count += tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float64)
    if float(count) == 0:
        raise ValueError("no training images to compute the dataset mean from")
    return tf.cast(total / count, tf.float32)


# --------------------------------------------------------------------------------------------
# Losses.


def weighted_mse(output, target, mask):
    """``|| M * (C(x, M) - x) ||^2`` averaged over pixels and channels (MSE on the hole)."""
    return tf.reduce_mean(tf.square(mask * (output - target)))


def _bce(logits, label: float):
    labels = tf.fill(tf.shape(logits), tf.cast(label, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_loss(real_logits, fake_logits):
    """``-log D(x, M_d) - log(1 - D(C(x, M_c), M_c))`` (binary cross-entropy, batch mean)."""
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def generator_gan_loss(fake_logits):
    """The completion network's adversarial term in the non-saturating form
    ``-log D(C(x, M_c), M_c)`` (the usual stand-in for minimising ``log(1 - D)``)."""
    return _bce(fake_logits, 1.0)
