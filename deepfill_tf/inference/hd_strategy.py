"""Photos of any size: the ``original``, ``resize`` and ``crop`` strategies around a model.

The networks were trained on 256 x 256 images with holes up to 128 px; a 12 MP photo run
whole costs minutes and gigabytes (contextual attention compares every hole cell with every
background cell) and its holes are far larger, in pixels, than anything seen in training.
Three strategies, named after IOPaint's ``hd_strategy`` (Sanster/IOPaint,
``iopaint/model/base.py``; written here from its description, not its code):

* ``original``: the whole image at full size (exact; contextual attention in bounded memory).
* ``resize``: when the long side exceeds ``resize_limit``, the image is scaled down so that
  its long side is the limit (area filter; a low-resolution pixel is a hole when any pixel
  under it is), inpainted, the result scaled back (bicubic) and only the hole pixels pasted.
* ``crop``: one crop per connected hole region (8-connectivity), regions whose crops would
  overlap merged into one, each crop the region's box plus ``crop_margin`` of context on
  every side (rounded up to a multiple of 8, shifted inward at the image borders, at least
  64 px), inpainted at full resolution (crops of equal size in one batch when the model can
  batch), and only the region's own hole pixels pasted back. A crop longer than
  ``crop_limit`` is itself run with ``resize``; when the crops together would cover most of
  the image (a mask over the whole image), the image is run with ``resize`` instead (whole,
  when it is not larger than ``resize_limit``).

``resize`` and ``crop`` apply only when the image's long side exceeds ``trigger``; smaller
images run whole. ``resize`` and ``crop`` paste hole pixels only, so the output equals the
input outside the hole byte for byte; ``original`` returns the model's own output, whose
composite keeps the known pixels too (unless a family option such as DeepFill's
``original_postprocess`` asks for the original code's rounding of them).

Everything here is NumPy/OpenCV around a callable
``infer(image, hole_mask, **extras) -> image``: image (h, w, 3) uint8 RGB, hole_mask
(h, w) float32 with 1 = hole, extras per-pixel arrays (h, w, ...) such as a guide image;
the callable returns (h, w, 3) uint8 RGB of the same size. When it has a ``batch``
attribute, ``infer.batch(images (N, h, w, 3), hole_masks (N, h, w), **extras (N, h, w, ...))
-> (N, h, w, 3)`` runs equal-size crops together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from deepfill_tf.errors import InputError

STRATEGIES = ("original", "resize", "crop")
GRID = 8  # crop sides are rounded up to multiples of this (the networks' 1/8 grid)
MIN_CROP = 64  # smallest crop side: the networks need context around a tiny hole
# When the crops would cover this fraction of the image, cropping saves nothing: resize.
CROP_COVER_LIMIT = 0.75


@dataclasses.dataclass(frozen=True)
class HDOptions:
    """How to run a model on a large image (defaults: see docs/high_resolution.md).

    Attributes:
      strategy: "original", "resize" or "crop".
      trigger: ``resize`` and ``crop`` apply only to images whose long side exceeds this (px).
      resize_limit: long side (px) the ``resize`` strategy scales the image to.
      crop_margin: context (px) added on every side of a hole region's box by ``crop``.
      crop_limit: long side (px) above which one crop is itself run with ``resize``.
      max_pixels: images with more pixels are refused (``InputError``).
      trained_hole: width (px) of the largest hole the model was trained with (DeepFill: 128
        at 256 x 256); a hole more than ``hole_warning_factor`` times wider (``hole_width``),
        at the resolution the model sees, gives a note.
      hole_warning_factor: see ``trained_hole``.
    """

    strategy: str = "crop"
    trigger: int = 1024
    resize_limit: int = 1024
    crop_margin: int = 128
    crop_limit: int = 2048
    max_pixels: int = 40_000_000
    trained_hole: int = 128
    hole_warning_factor: float = 2.0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise InputError(
                f"--hd-strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}"
            )
        for name in ("trigger", "resize_limit", "crop_limit", "max_pixels"):
            if int(getattr(self, name)) < 16:
                raise InputError(f"--{_flag(name)} must be at least 16, got {getattr(self, name)}")
        if self.crop_margin < 0:
            raise InputError(f"--hd-crop-margin must be >= 0, got {self.crop_margin}")


def _flag(name: str) -> str:
    return {
        "trigger": "hd-trigger",
        "resize_limit": "hd-resize-limit",
        "crop_margin": "hd-crop-margin",
        "crop_limit": "hd-crop-limit",
        "max_pixels": "max-pixels",
    }.get(name, name.replace("_", "-"))


# Which options each strategy reads (the CLI refuses a flag the chosen strategy ignores).
APPLIES = {
    "original": set(),
    "resize": {"trigger", "resize_limit"},
    "crop": {"trigger", "crop_margin", "crop_limit", "resize_limit"},
}


def check_applicable(strategy: str, given: set[str] | list[str]) -> None:
    """Raise ``InputError`` naming the first option in ``given`` (HDOptions field names) that
    ``strategy`` does not use, e.g. ``crop_margin`` with ``resize``."""
    for name in sorted(set(given) - APPLIES.get(strategy, set()) - {"strategy", "max_pixels"}):
        raise InputError(
            f"--{_flag(name)} does not apply to --hd-strategy {strategy} "
            f"(it is used by: {', '.join(s for s in STRATEGIES if name in APPLIES[s])})"
        )


@dataclasses.dataclass
class Run:
    """One model call: ``box`` (x0, y0, x1, y1) of the input it saw, the model input size
    (w, h) and how it was made ("whole", "resize", "crop", "crop+resize")."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]
    how: str


@dataclasses.dataclass
class HDResult:
    """Output of ``inpaint_hd``: ``image`` (H, W, 3) uint8 RGB, the ``strategy`` that ran
    ("original", "resize" or "crop"), ``notes`` (one-line messages for the user) and the
    model ``runs``."""

    image: np.ndarray
    strategy: str
    notes: list[str]
    runs: list[Run]


# --------------------------------------------------------------------------------- checks
def check_image(image: np.ndarray, hole: np.ndarray, options: HDOptions) -> None:
    """Shapes and the pixel limit; raises ``InputError`` with one line."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    if hole.shape[:2] != (h, w):
        raise InputError(f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is {w}x{h}")
    if h * w > options.max_pixels:
        raise InputError(
            f"image is {w}x{h} ({h * w / 1e6:.1f} MP), above the limit of "
            f"{options.max_pixels / 1e6:.1f} MP: scale it down or raise --max-pixels"
        )


def hole_width(hole: np.ndarray) -> float:
    """Width (px) of the widest part of the hole: twice the largest distance from a hole
    pixel to the nearest known pixel (a 512 x 512 box: 512; a 20 px stroke: 20), the measure
    that matters for a model trained on holes of bounded size. 0 without a hole; the
    distance to the image border counts as known."""
    hole = (np.asarray(hole) > 0.5).astype(np.uint8)
    if not hole.any():
        return 0.0
    padded = cv2.copyMakeBorder(hole, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return 2.0 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 5).max())


def _hole_note(width: float, scale: float, options: HDOptions):
    """A note when the widest hole (``hole_width`` in image px) is much wider, as the model
    sees it (times ``scale``), than the holes it was trained with; else None."""
    seen = width * scale
    if seen <= options.hole_warning_factor * options.trained_hole:
        return None
    return (
        f"the hole is up to {seen:.0f} px wide as the model sees it, "
        f"{seen / options.trained_hole:.1f}x the largest hole the model was trained with "
        f"({options.trained_hole} px): expect a blurry fill"
    )


# ------------------------------------------------------------------------------ regions
def hole_regions(hole: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Connected hole regions (8-connectivity).

    Returns:
      labels (H, W) int32 (0 = known, i + 1 = region i) and the regions' boxes
      (x0, y0, x1, y1), ends exclusive.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (np.asarray(hole) > 0.5).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    boxes = [
        (int(x), int(y), int(x + w), int(y + h))
        for x, y, w, h in stats[1:count, :4]  # row 0 is the background
    ]
    return labels, boxes


def _crop_box(box, margin: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The region box plus ``margin`` on every side, each side rounded up to a multiple of
    ``GRID`` and at least ``MIN_CROP``, centred on the box and shifted inward at the borders
    (the box stays inside); sides are clipped to the image."""

    def axis(lo, hi, size):
        side = hi - lo + 2 * margin
        side = max(-(-side // GRID) * GRID, MIN_CROP)
        if side >= size:
            return 0, size
        start = (lo + hi) // 2 - side // 2
        start = min(max(start, 0), size - side)  # shift inward at the borders
        return start, start + side

    x0, x1 = axis(box[0], box[2], width)
    y0, y1 = axis(box[1], box[3], height)
    return x0, y0, x1, y1


def plan_crops(hole: np.ndarray, options: HDOptions):
    """Group the hole regions into crops.

    Regions whose crops overlap are merged, repeatedly, until no two crops overlap (so
    nearby regions share one crop and its context); each hole pixel belongs to exactly one
    crop and is pasted from it.

    Returns:
      labels (H, W) int32 from ``hole_regions`` and a list of (crop box, region boxes,
      region labels) per crop, boxes (x0, y0, x1, y1) with exclusive ends.
    """
    height, width = hole.shape[:2]
    labels, boxes = hole_regions(hole)
    groups = [[i] for i in range(len(boxes))]  # region indices per crop
    while len(groups) > 1:
        crops = np.array(
            [_crop_box(_union([boxes[i] for i in g]), options.crop_margin, width, height)
             for g in groups]
        )  # fmt: skip
        overlap = (
            (crops[:, None, 0] < crops[None, :, 2])
            & (crops[None, :, 0] < crops[:, None, 2])
            & (crops[:, None, 1] < crops[None, :, 3])
            & (crops[None, :, 1] < crops[:, None, 3])
        )
        pairs = np.argwhere(np.triu(overlap, 1))
        if not len(pairs):
            break
        parent = list(range(len(groups)))
        for a, b in pairs:
            parent[_root(parent, int(b))] = _root(parent, int(a))
        merged: dict[int, list[int]] = {}
        for k, g in enumerate(groups):
            merged.setdefault(_root(parent, k), []).extend(g)
        groups = list(merged.values())
    plans = []
    for g in groups:
        region_boxes = [boxes[i] for i in g]
        crop = _crop_box(_union(region_boxes), options.crop_margin, width, height)
        plans.append((crop, region_boxes, [i + 1 for i in g]))
    return labels, plans


def _root(parent: list[int], k: int) -> int:
    """Union-find root of k (with path halving)."""
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


def _union(boxes):
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


# ----------------------------------------------------------------------------- resizing
def resize_size(width: int, height: int, limit: int) -> tuple[int, int]:
    """(w, h) with the long side ``limit`` (aspect kept, sides >= 16)."""
    scale = limit / max(width, height)
    return max(round(width * scale), 16), max(round(height * scale), 16)


def _down(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _down_hole(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A low-resolution pixel is a hole when any hole pixel lies under it (area filter > 0),
    so that thin strokes survive the downscaling."""
    area = cv2.resize((hole > 0.5).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return (area > 1e-6).astype(np.float32)


def _up(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)  # saturates to uint8


# ----------------------------------------------------------------------------- running
def _call(infer, image, hole, extras):
    out = np.asarray(infer(image, hole, **extras))
    if out.shape != image.shape or out.dtype != np.uint8:
        raise ValueError(f"infer returned {out.shape} {out.dtype}, expected {image.shape} uint8")
    return out


def _run_resized(infer, image, hole, extras, limit):
    """Run on the image scaled to long side ``limit``; returns the full-size result (only
    hole pixels are meaningful) and the model input size."""
    h, w = image.shape[:2]
    size = resize_size(w, h, limit)
    small = _call(
        infer,
        _down(image, size),
        _down_hole(hole, size),
        {k: _down(np.asarray(v), size) for k, v in extras.items()},
    )
    return _up(small, (w, h)), size


def inpaint_hd(
    infer: Callable[..., np.ndarray],
    image: np.ndarray,
    hole_mask: np.ndarray,
    options: HDOptions | None = None,
    **extras: Any,
) -> HDResult:
    """Inpaint ``image`` with ``infer`` using ``options.strategy`` (see the module docstring).

    Args:
      infer: ``infer(image, hole_mask, **extras) -> image`` on (h, w, 3) uint8 RGB images,
        (h, w) float32 masks (1 = hole); optional ``infer.batch`` for equal-size crops.
      image: (H, W, 3) uint8 RGB.
      hole_mask: (H, W) (or (H, W, 1)) float/bool/uint8, 1 (> 0.5) = hole.
      options: the strategy and its limits (``HDOptions()`` when None).
      extras: per-pixel arrays (H, W, ...) passed along (cropped / resized with the image).

    Returns:
      ``HDResult``: the (H, W, 3) uint8 RGB output (known pixels byte-identical to the
      input), the strategy used, notes for the user and the model runs.

    Raises:
      InputError: bad shapes or more than ``options.max_pixels`` pixels.
    """
    options = options or HDOptions()
    image = np.asarray(image)
    hole_mask = np.asarray(hole_mask)
    if hole_mask.ndim == 3:
        hole_mask = hole_mask[..., 0]
    check_image(image, hole_mask, options)
    for name, value in extras.items():
        if np.asarray(value).shape[:2] != image.shape[:2]:
            raise InputError(f"{name} is not the size of the image")
    hole = (hole_mask > 0.5).astype(np.float32)
    h, w = image.shape[:2]
    notes: list[str] = []
    strategy = options.strategy
    if strategy != "original" and max(h, w) <= options.trigger:
        strategy = "original"  # small enough to run whole
    if strategy == "resize" and max(h, w) <= options.resize_limit:
        strategy = "original"
    if strategy == "crop":
        return _crop(infer, image, hole, extras, options, notes)
    if strategy == "resize":
        return _resize(infer, image, hole, extras, options, notes)
    return _whole(infer, image, hole, extras, options, notes)


def _whole(infer, image, hole, extras, options, notes):
    h, w = image.shape[:2]
    note = _hole_note(hole_width(hole), 1.0, options)
    notes += [note] if note else []
    # The model's own output as it is: its composite already keeps the known pixels (or, with
    # DeepFill's original_postprocess, reproduces the original's rounding of them on purpose).
    result = _call(infer, image, hole, extras)
    return HDResult(result, "original", notes, [Run((0, 0, w, h), (w, h), "whole")])


def _paste(image, result, where):
    out = image.copy()
    out[where] = result[where]
    return out


def _resize(infer, image, hole, extras, options, notes):
    h, w = image.shape[:2]
    result, size = _run_resized(infer, image, hole, extras, options.resize_limit)
    note = _hole_note(hole_width(hole), size[0] / w, options)
    notes += [note] if note else []
    return HDResult(
        _paste(image, result, hole > 0.5), "resize", notes, [Run((0, 0, w, h), size, "resize")]
    )


def _crop(infer, image, hole, extras, options, notes):
    h, w = image.shape[:2]
    labels, plans = plan_crops(hole, options)
    covered = sum((c[2] - c[0]) * (c[3] - c[1]) for c, _, _ in plans)
    if covered >= CROP_COVER_LIMIT * h * w:
        small = max(h, w) <= options.resize_limit  # nothing to scale down: the whole image
        notes.append(
            f"the crops around the hole regions would cover {min(covered / (h * w), 1):.0%} "
            f"of the image: using --hd-strategy {'original' if small else 'resize'} instead "
            "of crop"
        )
        if small:
            return _whole(infer, image, hole, extras, options, notes)
        return _resize(infer, image, hole, extras, options, notes)
    out = image.copy()
    runs: list[Run] = []
    pending: dict[tuple[int, int], list] = {}  # (w, h) -> [(crop, region labels)]
    for crop, _, region_labels in plans:
        x0, y0, x1, y1 = crop
        if max(x1 - x0, y1 - y0) > options.crop_limit:
            sub = (slice(y0, y1), slice(x0, x1))
            result, size = _run_resized(
                infer,
                image[sub],
                hole[sub],
                {k: np.asarray(v)[sub] for k, v in extras.items()},
                options.crop_limit,
            )
            notes.append(
                f"a hole region needs a {x1 - x0}x{y1 - y0} crop, longer than --hd-crop-limit "
                f"{options.crop_limit}: that crop was scaled down to {size[0]}x{size[1]}"
            )
            note = _hole_note(hole_width(hole[y0:y1, x0:x1]), size[0] / (x1 - x0), options)
            notes += [note] if note else []
            _paste_regions(out, result, labels, crop, region_labels)
            runs.append(Run(crop, size, "crop+resize"))
            continue
        pending.setdefault((x1 - x0, y1 - y0), []).append((crop, region_labels))
    if pending:
        note = _hole_note(
            max(hole_width(hole[c[1] : c[3], c[0] : c[2]]) for g in pending.values() for c, _ in g),
            1.0,
            options,
        )
        notes += [note] if note else []
    batch = getattr(infer, "batch", None)
    for size, group in pending.items():
        subs = [(slice(c[1], c[3]), slice(c[0], c[2])) for c, _ in group]
        if batch is not None and len(group) > 1:
            results = np.asarray(
                batch(
                    np.stack([image[s] for s in subs]),
                    np.stack([hole[s] for s in subs]),
                    **{k: np.stack([np.asarray(v)[s] for s in subs]) for k, v in extras.items()},
                )
            )
        else:
            results = [
                _call(infer, image[s], hole[s], {k: np.asarray(v)[s] for k, v in extras.items()})
                for s in subs
            ]
        for (crop, region_labels), result in zip(group, results, strict=True):
            _paste_regions(out, np.asarray(result), labels, crop, region_labels)
            runs.append(Run(crop, size, "crop"))
    return HDResult(out, "crop", notes, runs)


def _paste_regions(out, result, labels, crop, region_labels):
    """Paste the crop result's pixels of the given hole regions into ``out`` (in place)."""
    x0, y0, x1, y1 = crop
    where = np.isin(labels[y0:y1, x0:x1], region_labels)
    out[y0:y1, x0:x1][where] = result[where]


# ------------------------------------------------------------------------------ adapters
def set_attention_options(model, max_attention_mb=..., foreground_margin=...) -> int:
    """Set ``max_attention_mb`` / ``foreground_margin`` on every ``ContextualAttention``
    layer of ``model`` (arguments left out are not changed). Do it before the first call:
    a traced function keeps the values it was traced with. Returns the number of layers."""
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.layers.contextual_attention import ContextualAttention

    layers = [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, ContextualAttention)
    ]
    for layer in layers:
        if max_attention_mb is not ...:
            layer.max_attention_mb = None if max_attention_mb is None else float(max_attention_mb)
        if foreground_margin is not ...:
            layer.foreground_margin = None if foreground_margin is None else int(foreground_margin)
    return len(layers)


class BatchedInpainter:
    """``infer`` for ``inpaint_hd`` from an ``Inpainter``, with ``batch`` for equal-size crops
    (one call of the Inpainter's traced function on a stack: its batch size is dynamic)."""

    def __init__(self, inpainter):
        self.inpainter = inpainter

    def __call__(self, image, hole_mask, **extras):
        return self.inpainter(image, hole_mask, **extras)

    def batch(self, images, hole_masks, **extras):
        own = getattr(self.inpainter, "batch", None)
        if own is not None:
            return own(images, hole_masks, **extras)
        fn = getattr(self.inpainter, "_fn", None)
        if fn is None:  # not an Inpainter: one at a time
            return np.stack(
                [
                    self(i, m, **{k: v[n] for k, v in extras.items()})
                    for n, (i, m) in enumerate(zip(images, hole_masks, strict=True))
                ]
            )
        for n in range(len(images)):  # the same checks as one call
            self.inpainter.check(images[n], hole_masks[n], {k: v[n] for k, v in extras.items()})
        names = tuple(sorted(extras))
        args = [images, np.asarray(hole_masks, np.float32)[..., None]]
        args += [extras[k] for k in names]
        return fn(names)(*args).numpy()


# ------------------------------------------------------------------------ in the graph
def crop_box_graph(hole, *, margin: int, min_side: int = MIN_CROP, grid: int = GRID):
    """``_crop_box`` of the union of all holes, as TF ops (for the SavedModel).

    Args:
      hole: (H, W) bool, True = hole (at least one).

    Returns:
      int32 scalars (y0, y1, x0, x1), ends exclusive: the holes' box plus ``margin`` on every
      side, each side rounded up to a multiple of ``grid`` and at least ``min_side``, centred
      and shifted inward at the borders, clipped to the image.
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    import tensorflow as tf

    def axis(any_along, size):
        first = tf.argmax(tf.cast(any_along, tf.int32), output_type=tf.int32)
        last = size - tf.argmax(tf.cast(any_along[::-1], tf.int32), output_type=tf.int32)
        side = last - first + 2 * margin
        side = tf.maximum((side + grid - 1) // grid * grid, min_side)
        start = (first + last) // 2 - side // 2
        start = tf.clip_by_value(start, 0, tf.maximum(size - side, 0))
        end = tf.minimum(start + side, size)
        return tf.where(side >= size, 0, start), tf.where(side >= size, size, end)

    shape = tf.shape(hole)
    y0, y1 = axis(tf.reduce_any(hole, axis=1), shape[0])
    x0, x1 = axis(tf.reduce_any(hole, axis=0), shape[1])
    return y0, y1, x0, x1


def crop_around_hole_graph(
    fn, image, hole_mask, extras=(), *, trigger: int, margin: int, limit: int
):
    """The ``crop`` strategy in a TF graph, with ONE crop around the union of the holes.

    Runs ``fn(image, hole_mask, *extras) -> (h, w, 3) uint8`` on the crop when the image's
    long side exceeds ``trigger``, the crop's long side is at most ``limit`` and it covers
    less than ``CROP_COVER_LIMIT`` of the image; else on the whole image (the ``original``
    strategy). Only hole pixels of the crop's result are pasted. Equals ``inpaint_hd`` with
    ``crop`` whenever its plan has one crop (one hole region, or nearby ones merged). No
    Python-bound ops: servable.

    Args:
      image: (H, W, 3) uint8; hole_mask: (H, W, 1) float32, 1 = hole; extras: (H, W, C)
        tensors cropped with the image (e.g. a guide).

    Returns:
      (H, W, 3) uint8.
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    import tensorflow as tf

    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    hole = hole_mask[..., 0] > 0.5
    has_hole = tf.reduce_any(hole)
    # A placeholder box when there is no hole (the crop branch is not taken then).
    y0, y1, x0, x1 = crop_box_graph(tf.logical_or(hole, tf.logical_not(has_hole)), margin=margin)
    area = tf.cast((y1 - y0) * (x1 - x0), tf.float32)
    use_crop = (
        has_hole
        & (tf.maximum(height, width) > trigger)
        & (tf.maximum(y1 - y0, x1 - x0) <= limit)
        & (area < CROP_COVER_LIMIT * tf.cast(height * width, tf.float32))
    )

    def cropped():
        def cut(x):
            return x[y0:y1, x0:x1]

        out = fn(cut(image), cut(hole_mask), *[cut(e) for e in extras])
        padded = tf.pad(out, [[y0, height - y1], [x0, width - x1], [0, 0]])
        return tf.where(hole[..., None], padded, image)

    return tf.cond(use_crop, cropped, lambda: fn(image, hole_mask, *extras))
