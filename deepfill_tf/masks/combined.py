"""Training masks by kind ("box", "free_form", "both") and an infinite tf.data mask stream.

DeepFill v2 trains on the union (logical OR) of one box mask and one free-form mask; v1 on a
box mask alone. The original draws one mask per training step and shares it across the
batch: masks here are (1, H, W, 1) float32, 1 = hole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import ConfigError
from deepfill_tf.masks.box import (
    BoxParams,
    _check_box,
    as_random_state,
    random_box_mask,
    random_box_mask_tf,
)
from deepfill_tf.masks.free_form import (
    DEFAULT_BRUSH,
    BrushParams,
    brush_stroke_mask,
    brush_stroke_mask_tf,
)

__all__ = ["MASK_KINDS", "mask_dataset", "random_mask", "random_mask_tf", "union_masks"]

MASK_KINDS = ("box", "free_form", "both")


def _check_kind(kind: str) -> None:
    if kind not in MASK_KINDS:
        raise ConfigError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")


def union_masks(*masks):
    """Element-wise OR of {0, 1} masks (the v2 box + brush union); NumPy in, NumPy out, else TF.

    Args:
        *masks: arrays or tensors of one shape, e.g. (1, H, W, 1), 1 = hole.
    """
    if not masks:
        raise ValueError("union_masks needs at least one mask")
    if all(isinstance(m, np.ndarray) for m in masks):
        return np.maximum.reduce([np.asarray(m, np.float32) for m in masks])
    out = tf.cast(masks[0], tf.float32)
    for m in masks[1:]:
        out = tf.maximum(out, tf.cast(m, tf.float32))
    return out


def random_mask(
    kind: str,
    img_shape: Sequence[int],
    *,
    rng: int | np.random.RandomState | None = None,
    box: BoxParams | None = None,
    brush: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> np.ndarray:
    """One NumPy/PIL training mask: float32 (1, H, W, 1), 1 = hole.

    Args:
        kind: "box", "free_form" or "both" (box OR brush strokes, DeepFill v2 training).
        img_shape: (H, W[, C]).
        rng: int seed or ``np.random.RandomState``; "both" draws the box first, then the
            strokes, from the same generator.
        box: ``BoxParams``; default ``BoxParams.for_image(H, W)``: a box H/2 x W/2 with max
            deltas H/8, W/8 (inpaint.yml's 128x128 box and deltas 32 at 256x256).
        brush: ``BrushParams`` (default: the original's).
        swap_hw: reproduce the original brush H/W swap (see ``deepfill_tf.masks.free_form``).
    """
    _check_kind(kind)
    rs = as_random_state(rng)
    height, width = int(img_shape[0]), int(img_shape[1])
    box = BoxParams.for_image(height, width) if box is None else box
    masks = []
    if kind in ("box", "both"):
        masks.append(random_box_mask((height, width), **_box_kwargs(box), rng=rs)[1])
    if kind in ("free_form", "both"):
        masks.append(brush_stroke_mask(height, width, rng=rs, params=brush, swap_hw=swap_hw))
    return union_masks(*masks)


def random_mask_tf(
    kind: str,
    seed: tf.Tensor,
    img_shape: Sequence[int],
    *,
    box: BoxParams | None = None,
    brush: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> tf.Tensor:
    """Stateless pure-TF training mask: float32 (1, H, W, 1), 1 = hole.

    Same arguments as ``random_mask`` with a shape-[2] int seed instead of ``rng``; usable in
    ``tf.data`` maps and ``tf.function`` steps (same seed, same mask).
    """
    _check_kind(kind)
    height, width = int(img_shape[0]), int(img_shape[1])
    box = BoxParams.for_image(height, width) if box is None else box
    box_seed, brush_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    masks = []
    if kind in ("box", "both"):
        masks.append(random_box_mask_tf(box_seed, (height, width), **_box_kwargs(box))[1])
    if kind in ("free_form", "both"):
        masks.append(brush_stroke_mask_tf(brush_seed, height, width, params=brush, swap_hw=swap_hw))
    return union_masks(*masks)


def mask_dataset(
    kind: str,
    img_shape: Sequence[int],
    *,
    seed: int,
    box: BoxParams | None = None,
    brush: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> tf.data.Dataset:
    """Infinite, reproducible ``tf.data`` stream of masks (1, H, W, 1) float32, 1 = hole.

    Element i is ``random_mask_tf(kind, [seed, i], ...)``: the stream does not depend on
    threading or on how much of it was consumed before. Zip it with a batched image dataset
    for one mask per batch, as the original.
    """
    _check_kind(kind)
    height, width = int(img_shape[0]), int(img_shape[1])
    box = BoxParams.for_image(height, width) if box is None else box
    if kind != "free_form":  # fail here with a one-line ConfigError, not inside a trace
        _check_box(
            (height, width), box.height, box.width, box.vertical_margin, box.horizontal_margin
        )
    seed_t = tf.constant(int(seed), tf.int64)

    @tf.autograph.experimental.do_not_convert
    def make(i):
        return random_mask_tf(
            kind, tf.stack([seed_t, i]), (height, width), box=box, brush=brush, swap_hw=swap_hw
        )

    return tf.data.Dataset.counter(dtype=tf.int64).map(
        make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def _box_kwargs(box: BoxParams) -> dict[str, int]:
    return {
        "height": box.height,
        "width": box.width,
        "max_delta_height": box.max_delta_height,
        "max_delta_width": box.max_delta_width,
        "vertical_margin": box.vertical_margin,
        "horizontal_margin": box.horizontal_margin,
    }
