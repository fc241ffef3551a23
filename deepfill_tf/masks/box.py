"""Random box ("regular") training masks of DeepFill v1 and v2.

The original draws the box in two steps:

1. ``random_bbox``: top and left are uniform integers in
   ``[vertical_margin, H - vertical_margin - height)`` and
   ``[horizontal_margin, W - horizontal_margin - width)`` (upper bound exclusive), the box is
   ``height x width`` (inpaint.yml: 128 x 128 in a 256 x 256 image). v1 crops its local
   patch with this box as it is.
2. ``bbox2mask``: the hole is the box shrunk on the top AND bottom by one random
   ``dh = randint(max_delta_height // 2 + 1)`` (so in [0, max_delta_height // 2]) and on the
   left and right by one random ``dw`` drawn likewise: rows ``[top + dh, top + height - dh)``,
   columns ``[left + dw, left + width - dw)``.

Two implementations with the same distribution:

* NumPy (``random_bbox``, ``bbox_to_mask``, ``random_box_mask``): a ``np.random.RandomState``
  (or an int seed). The original drew step 1 with TF's stateful RNG and step 2 with NumPy's
  global RandomState, so no seed replays its exact sequence.
* TensorFlow (``*_tf``): stateless random ops (``tf.random.stateless_uniform``) from a
  shape-[2] integer seed, so they run inside ``tf.data`` maps and ``tf.function`` training
  steps, reproducibly, without Python callbacks.

Masks are float32 (1, H, W, 1), 1 = hole, 0 = valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import ConfigError

__all__ = [
    "BoxParams",
    "as_random_state",
    "bbox_to_mask",
    "bbox_to_mask_tf",
    "random_bbox",
    "random_bbox_tf",
    "random_box_mask",
    "random_box_mask_tf",
]

BBox = tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class BoxParams:
    """Box-mask settings under their inpaint.yml names; defaults = inpaint.yml (256x256 images).

    Attributes:
        height, width: box size (128, 128).
        max_delta_height, max_delta_width: the hole is the box shrunk on each side by a random
            amount in [0, max_delta // 2] (32, 32).
        vertical_margin, horizontal_margin: smallest distance of the box to the border (0, 0).
    """

    height: int = 128
    width: int = 128
    max_delta_height: int = 32
    max_delta_width: int = 32
    vertical_margin: int = 0
    horizontal_margin: int = 0

    @classmethod
    def for_image(cls, img_height: int, img_width: int) -> BoxParams:
        """inpaint.yml's proportions for another size: box H/2 x W/2, max deltas H/8, W/8."""
        return cls(img_height // 2, img_width // 2, img_height // 8, img_width // 8)


def as_random_state(rng: int | np.random.RandomState | None) -> np.random.RandomState:
    """``rng`` as a legacy ``np.random.RandomState`` (the generator the original used).

    An int seeds a new one; ``None`` gives an unseeded (OS-entropy) one.
    """
    if isinstance(rng, np.random.RandomState):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.RandomState(None if rng is None else int(rng) % 2**32)
    raise TypeError(f"rng must be an int seed, a np.random.RandomState or None, got {rng!r}")


def _check_box(
    img_shape: Sequence[int],
    height: int,
    width: int,
    vertical_margin: int,
    horizontal_margin: int,
) -> tuple[int, int, int, int]:
    """(min_top, max_top, min_left, max_left), max exclusive; ConfigError if the box cannot fit."""
    img_h, img_w = int(img_shape[0]), int(img_shape[1])
    max_top = img_h - vertical_margin - height
    max_left = img_w - horizontal_margin - width
    if height < 1 or width < 1:
        raise ConfigError(f"box size must be positive, got {height}x{width}")
    if max_top <= vertical_margin or max_left <= horizontal_margin:
        raise ConfigError(
            f"a {height}x{width} box with margins ({vertical_margin}, {horizontal_margin}) does not "
            f"fit a {img_h}x{img_w} image: need H > height + 2*vertical_margin and "
            "W > width + 2*horizontal_margin"
        )
    return vertical_margin, max_top, horizontal_margin, max_left


def _check_deltas(max_delta_height: int, max_delta_width: int) -> None:
    if max_delta_height < 0 or max_delta_width < 0:
        raise ConfigError(
            f"max_delta_height/width must be >= 0, got {max_delta_height}, {max_delta_width}"
        )


# ------------------------------------------------------------------------------------ NumPy


def random_bbox(
    img_shape: Sequence[int],
    height: int = 128,
    width: int = 128,
    vertical_margin: int = 0,
    horizontal_margin: int = 0,
    *,
    rng: int | np.random.RandomState | None = None,
) -> BBox:
    """A random box (top, left, height, width) as the original ``random_bbox``.

    Args:
        img_shape: (H, W[, C]) of the image.
        height, width: box size (inpaint.yml ``height``/``width``, 128).
        vertical_margin, horizontal_margin: minimum distance to the top/left border; the
            bottom/right limit is ``H - margin - height`` exclusive (inpaint.yml: 0).
        rng: int seed or ``np.random.RandomState``.

    Returns:
        (top, left, height, width) python ints, top in [vm, H - vm - height),
        left in [hm, W - hm - width).
    """
    min_t, max_t, min_l, max_l = _check_box(
        img_shape, height, width, vertical_margin, horizontal_margin
    )
    rs = as_random_state(rng)
    top = int(rs.randint(min_t, max_t))
    left = int(rs.randint(min_l, max_l))
    return top, left, int(height), int(width)


def bbox_to_mask(
    bbox: Sequence[int],
    img_shape: Sequence[int],
    max_delta_height: int = 32,
    max_delta_width: int = 32,
    *,
    rng: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """Hole mask of ``bbox`` shrunk by random deltas, as the original ``bbox2mask``.

    Draws ``dh = randint(max_delta_height // 2 + 1)`` then ``dw = randint(max_delta_width // 2
    + 1)`` (this order) and fills rows [top + dh, top + height - dh), columns
    [left + dw, left + width - dw).

    Returns:
        float32 (1, H, W, 1), 1 = hole.
    """
    _check_deltas(max_delta_height, max_delta_width)
    rs = as_random_state(rng)
    img_h, img_w = int(img_shape[0]), int(img_shape[1])
    top, left, h, w = (int(v) for v in bbox)
    dh = int(rs.randint(max_delta_height // 2 + 1))
    dw = int(rs.randint(max_delta_width // 2 + 1))
    mask = np.zeros((1, img_h, img_w, 1), np.float32)
    mask[:, top + dh : top + h - dh, left + dw : left + w - dw, :] = 1.0
    return mask


def random_box_mask(
    img_shape: Sequence[int],
    height: int = 128,
    width: int = 128,
    max_delta_height: int = 32,
    max_delta_width: int = 32,
    vertical_margin: int = 0,
    horizontal_margin: int = 0,
    *,
    rng: int | np.random.RandomState | None = None,
) -> tuple[BBox, np.ndarray]:
    """``random_bbox`` then ``bbox_to_mask`` from one generator.

    Returns:
        (bbox, mask): bbox = (top, left, height, width) before shrinking (v1's local patch),
        mask float32 (1, H, W, 1), 1 = hole.
    """
    rs = as_random_state(rng)
    bbox = random_bbox(img_shape, height, width, vertical_margin, horizontal_margin, rng=rs)
    return bbox, bbox_to_mask(bbox, img_shape, max_delta_height, max_delta_width, rng=rs)


# ------------------------------------------------------------------------------- TensorFlow


def random_bbox_tf(
    seed: tf.Tensor,
    img_shape: Sequence[int],
    height: int = 128,
    width: int = 128,
    vertical_margin: int = 0,
    horizontal_margin: int = 0,
) -> tf.Tensor:
    """Stateless ``random_bbox``: int32 tensor [4] = (top, left, height, width).

    Args:
        seed: shape-[2] int32/int64 tensor (a ``tf.random.stateless_*`` seed).
        img_shape, height, width, vertical_margin, horizontal_margin: python ints, as
            ``random_bbox``.
    """
    min_t, max_t, min_l, max_l = _check_box(
        img_shape, height, width, vertical_margin, horizontal_margin
    )
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    top = tf.random.stateless_uniform([], seeds[0], min_t, max_t, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], min_l, max_l, dtype=tf.int32)
    return tf.stack([top, left, tf.constant(height, tf.int32), tf.constant(width, tf.int32)])


def bbox_to_mask_tf(
    bbox: tf.Tensor,
    seed: tf.Tensor,
    img_shape: Sequence[int],
    max_delta_height: int = 32,
    max_delta_width: int = 32,
) -> tf.Tensor:
    """Stateless ``bbox_to_mask``: float32 (1, H, W, 1), 1 = hole.

    Args:
        bbox: int tensor [4] (top, left, height, width).
        seed: shape-[2] int seed.
        img_shape: (H, W[, C]) python ints.
    """
    _check_deltas(max_delta_height, max_delta_width)
    img_h, img_w = int(img_shape[0]), int(img_shape[1])
    bbox = tf.cast(bbox, tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    dh = tf.random.stateless_uniform([], seeds[0], 0, max_delta_height // 2 + 1, dtype=tf.int32)
    dw = tf.random.stateless_uniform([], seeds[1], 0, max_delta_width // 2 + 1, dtype=tf.int32)
    rows = tf.range(img_h, dtype=tf.int32)
    cols = tf.range(img_w, dtype=tf.int32)
    in_rows = (rows >= bbox[0] + dh) & (rows < bbox[0] + bbox[2] - dh)  # [H]
    in_cols = (cols >= bbox[1] + dw) & (cols < bbox[1] + bbox[3] - dw)  # [W]
    hole = tf.logical_and(in_rows[:, None], in_cols[None, :])  # [H, W]
    return tf.cast(hole, tf.float32)[None, :, :, None]


def random_box_mask_tf(
    seed: tf.Tensor,
    img_shape: Sequence[int],
    height: int = 128,
    width: int = 128,
    max_delta_height: int = 32,
    max_delta_width: int = 32,
    vertical_margin: int = 0,
    horizontal_margin: int = 0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Stateless ``random_box_mask``: (bbox int32 [4], mask float32 (1, H, W, 1))."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    bbox = random_bbox_tf(seeds[0], img_shape, height, width, vertical_margin, horizontal_margin)
    mask = bbox_to_mask_tf(bbox, seeds[1], img_shape, max_delta_height, max_delta_width)
    return bbox, mask
