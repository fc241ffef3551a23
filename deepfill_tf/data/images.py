"""Decode, colour-convert, resize and crop training images in TensorFlow (tf.data-friendly).

What the original pipeline (neuralgym ``DataFromFNames``) does with every file, and what these
functions reproduce:

* ``cv2.imread(path)``: 3-channel **BGR** uint8. Grayscale is replicated to 3 channels, an
  alpha channel is dropped (not composited), 16-bit samples become 8-bit. Here:
  ``tf.io.decode_image(channels=3, dtype=uint8)`` (16-bit -> ``x >> 8``, as OpenCV) then
  reversing the channels. JPEG, PNG, GIF (first frame), BMP and WebP are read.
* ``random_crop: False``: ``cv2.resize(image, shape)``, bilinear (INTER_LINEAR, half-pixel
  centres, no anti-aliasing) to the training size, uint8 result. Here: ``tf.image.resize``
  bilinear without anti-aliasing (the same sampling geometry), rounded back to uint8; pixels
  can differ by 1 from OpenCV's fixed-point arithmetic. (cv2 takes dsize as (width, height)
  and the original passes (height, width): a swap that only matters for non-square training
  shapes, which the original's queue rejected anyway; here H x W is H x W.)
* ``random_crop: True``: ``np_random_crop(image, shape, align=False)``: an image at least as
  large as the crop is cropped at a uniformly random position
  (``top = randint(h - H + 1)``, ``left = randint(w - W + 1)``) without resizing; a smaller
  one is first upscaled by ``s = max(H / h, W / w)`` to ``ceil(h * s) x ceil(w * s)``
  (bilinear), then cropped. (The original passes that size to cv2.resize as (width,
  height) again, which transposes the aspect ratio of small non-square images; here the
  aspect ratio is kept.)

Augmentation (not in the original; off unless asked for): ``augment`` mirrors a sample
left-right and / or permutes its colour channels at random, for training on a handful of
photos (the demo model) where the network would otherwise learn the photos by heart.

Images stay uint8 until ``normalize_bgr``: ``x / 127.5 - 1`` (true division) gives the float32
BGR values in [-1, 1] the DeepFill networks expect.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = [
    "augment",
    "crop_window",
    "decode_bgr",
    "fit_to_shape",
    "normalize_bgr",
    "resize_uint8",
    "to_bgr3",
]


def decode_bgr(contents: tf.Tensor) -> tf.Tensor:
    """Decode image bytes as cv2.imread(path) would: uint8 (h, w, 3) BGR.

    Args:
        contents: scalar string tensor, the file's bytes (JPEG/PNG/GIF/BMP/WebP; gray,
            gray+alpha, RGB, RGBA, 8- or 16-bit).

    Returns:
        uint8 tensor (h, w, 3), channels B, G, R. Raises InvalidArgumentError on bytes that
        are not a decodable image.
    """
    rgb = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    rgb.set_shape([None, None, 3])
    return tf.reverse(rgb, axis=[-1])


def to_bgr3(rgb: tf.Tensor) -> tf.Tensor:
    """An already decoded RGB-like uint8 image (h, w, C), C in {1, 2, 3, 4}, as (h, w, 3) BGR.

    Gray (C = 1, 2) is replicated, alpha (C = 2, 4) dropped. Used for TFDS images.
    """
    channels = rgb.shape[-1]
    if channels in (1, 2):
        rgb = tf.tile(rgb[..., :1], [1, 1, 3])
    elif channels == 4:
        rgb = rgb[..., :3]
    elif channels != 3:
        raise ValueError(f"expected 1 to 4 channels, got an image of shape {rgb.shape}")
    return tf.reverse(rgb, axis=[-1])


def resize_uint8(image: tf.Tensor, size: tf.Tensor | Sequence[int]) -> tf.Tensor:
    """Bilinear resize (half-pixel centres, no anti-aliasing, as cv2 INTER_LINEAR) to uint8.

    Args:
        image: uint8 (h, w, C).
        size: (new_h, new_w), ints or an int tensor.

    Returns:
        uint8 (new_h, new_w, C), rounded to nearest.
    """
    out = tf.image.resize(image, size, method="bilinear", antialias=False)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def crop_window(
    image_hw: tf.Tensor, target_hw: Sequence[int], seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Random-crop geometry of the original ``np_random_crop(..., align=False)``.

    Args:
        image_hw: int tensor [2], the decoded (h, w).
        target_hw: (H, W) python ints, the crop.
        seed: shape-[2] int seed (stateless).

    Returns:
        (scaled_hw int32 [2], top int32, left int32): the size to upscale to first (equal to
        ``image_hw`` when the image already covers the crop) and the crop's top-left corner,
        uniform in [0, scaled_h - H] x [0, scaled_w - W].
    """
    target_h, target_w = int(target_hw[0]), int(target_hw[1])
    hw = tf.cast(image_hw, tf.float64)
    scale = tf.maximum(target_h / hw[0], target_w / hw[1])
    small = tf.logical_or(hw[0] < target_h, hw[1] < target_w)
    scaled = tf.where(small, tf.math.ceil(hw * scale), hw)
    # ceil(h * s) can land one pixel short of the target through rounding: never below it.
    scaled = tf.cast(tf.maximum(scaled, [float(target_h), float(target_w)]), tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    top = tf.random.stateless_uniform([], seeds[0], 0, scaled[0] - target_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, scaled[1] - target_w + 1, dtype=tf.int32)
    return scaled, top, left


def fit_to_shape(
    images: Sequence[tf.Tensor],
    target_hw: Sequence[int],
    *,
    random_crop: bool,
    seed: tf.Tensor | None = None,
) -> list[tf.Tensor]:
    """Bring decoded uint8 images to (H, W) as the original: resize, or random crop.

    Args:
        images: uint8 (h, w, C) tensors of one sample (the image, and its edge map when
            guided). With ``random_crop`` they share ONE window computed from the first
            image (the others are resized to its size first if they differ), so the edge
            map stays aligned with the image; the original cropped each file independently.
        target_hw: (H, W) python ints.
        random_crop: False = bilinear resize to (H, W); True = crop (upscaling small images).
        seed: shape-[2] int seed, needed when ``random_crop``.

    Returns:
        list of uint8 (H, W, C) tensors with static shape.
    """
    target_h, target_w = int(target_hw[0]), int(target_hw[1])
    if not random_crop:
        out = [resize_uint8(im, (target_h, target_w)) for im in images]
    else:
        if seed is None:
            raise ValueError("random_crop needs a seed")
        first_hw = tf.shape(images[0])[:2]
        scaled, top, left = crop_window(first_hw, (target_h, target_w), seed)
        out = []
        for im in images:
            same = tf.reduce_all(tf.equal(tf.shape(im)[:2], scaled))
            im = tf.cond(same, lambda im=im: im, lambda im=im: resize_uint8(im, scaled))
            out.append(im[top : top + target_h, left : left + target_w, :])
    for im, src in zip(out, images, strict=True):
        im.set_shape([target_h, target_w, src.shape[-1]])
    return out


def augment(
    images: Sequence[tf.Tensor],
    seed: tf.Tensor,
    *,
    flip: bool = False,
    shuffle_channels: bool = False,
) -> list[tf.Tensor]:
    """Random left-right flip and colour-channel permutation of one sample.

    Args:
        images: uint8 (H, W, C) tensors of one sample (the image, and its edge map when
            guided); a flip mirrors all of them alike, the channel permutation touches only
            the first (the 3-channel image).
        seed: shape-[2] int seed (stateless), e.g. the one ``fit_to_shape`` used: derived
            seeds keep the draws independent of the crop's.
        flip: mirror left-right with probability 1/2.
        shuffle_channels: reorder the 3 colour channels by a uniformly random permutation
            (identity included), so colours are filled from the context, not remembered.

    Returns:
        list of tensors of the same shapes and dtypes.
    """
    out = list(images)
    if flip:
        flip_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        mirror = tf.random.stateless_uniform([], flip_seed) < 0.5
        out = [
            tf.cond(mirror, lambda im=im: tf.reverse(im, axis=[1]), lambda im=im: im) for im in out
        ]
    if shuffle_channels:
        order_seed = tf.random.experimental.stateless_fold_in(seed, 2)
        order = tf.argsort(tf.random.stateless_uniform([3], order_seed))
        out[0] = tf.gather(out[0], order, axis=-1)
    return out


def normalize_bgr(images: tf.Tensor) -> tf.Tensor:
    """uint8 BGR -> float32 BGR in [-1, 1] as the original: ``x / 127.5 - 1`` (true division)."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0
