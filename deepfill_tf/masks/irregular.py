"""Irregular hole masks for partial-convolution training (Liu et al., ECCV 2018, Sec. 4.1).

Two sources, one output format (float32 (1, H, W, 1), **1 = hole**, as everywhere in the
package):

* ``irregular_mask``: a built-in, seeded generator of thick strokes (random-walk polylines
  with round joints and caps, some running off the border) and blobs (random star-shaped
  polygons), drawn until the hole ratio reaches a target drawn from ``hole_ratio``; the
  result always lies in that range. NumPy + Pillow only, so the same seed gives the same
  pixels everywhere.
* ``IrregularMaskFolder``: a folder of mask images such as NVIDIA's Irregular Mask Dataset
  (download it yourself; non-commercial licence). Those files mark holes **black** (0 = hole,
  the partial-convolution convention); ``holes_are="white"`` reads files in our convention.
  Each sample gets the augmentations the paper's authors describe: random dilation, random
  rotation and a random crop to the training size. Masks smaller than that size are first
  scaled up (nearest neighbour) until they cover it, or refused with ``allow_upscale=False``.

Mask i of a stream seeded ``seed`` depends only on ``(seed, i)`` (``np.random.default_rng
([seed, i])``), so the first N masks of a longer run equal those of a shorter one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from deepfill_tf.errors import ConfigError, InputError

__all__ = [
    "RATIO_BUCKETS",
    "IrregularMaskFolder",
    "IrregularParams",
    "hole_ratio",
    "irregular_mask",
    "irregular_mask_dataset",
    "ratio_bucket",
]

# The paper's test buckets of hole-to-image area ratio, half-open (lo, hi].
RATIO_BUCKETS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _generator(rng) -> np.random.Generator:
    """An int, a sequence of ints (e.g. ``[seed, index]``), None or a Generator -> Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def hole_ratio(mask) -> float:
    """Fraction of hole pixels of a (…, H, W[, 1]) mask with 1 = hole."""
    return float(np.mean(np.asarray(mask) > 0.5))


def ratio_bucket(ratio: float) -> int | None:
    """Index 0..5 of the paper's bucket (lo, hi] holding ``ratio``, None outside (0.01, 0.6]."""
    for i, (lo, hi) in enumerate(RATIO_BUCKETS):
        if lo < ratio <= hi:
            return i
    return None


@dataclasses.dataclass(frozen=True)
class IrregularParams:
    """Settings of the built-in generator; lengths are fractions of min(H, W).

    Attributes:
      hole_ratio: (lo, hi): the target ratio is drawn uniformly from it and the result lies
        in [lo, hi] (default (0.05, 0.5)).
      blob_probability: chance that an element is a blob rather than a stroke.
      stroke_width: (min, max) width of a stroke.
      stroke_vertices: (min, max) vertices of a stroke (inclusive).
      stroke_step: (min, max) length of one stroke segment.
      blob_radius: (min, max) mean radius of a blob.
      margin: pixels along the border kept free of holes (the paper's "N" test masks keep
        about 50 px at 512x512); 0 lets holes touch the border ("B").
      max_elements: attempts before giving up on the target (then the mask is dilated up to
        ``lo``).
    """

    hole_ratio: tuple[float, float] = (0.05, 0.5)
    blob_probability: float = 0.3
    stroke_width: tuple[float, float] = (0.02, 0.09)
    stroke_vertices: tuple[int, int] = (4, 9)
    stroke_step: tuple[float, float] = (0.05, 0.25)
    blob_radius: tuple[float, float] = (0.03, 0.12)
    margin: int = 0
    max_elements: int = 400

    def check(self) -> None:
        lo, hi = self.hole_ratio
        if not 0.0 < lo <= hi < 1.0:
            raise ConfigError(f"hole_ratio must satisfy 0 < lo <= hi < 1, got ({lo}, {hi})")
        if not 0.0 <= self.blob_probability <= 1.0:
            raise ConfigError(f"blob_probability must be in [0, 1], got {self.blob_probability}")
        if self.margin < 0:
            raise ConfigError(f"margin must not be negative, got {self.margin}")


DEFAULT_IRREGULAR = IrregularParams()


def _draw_stroke(draw, rng, scale, size, shrink, params):
    h, w = size
    # Start anywhere, up to 10% outside the image, so some strokes run off the border.
    x, y = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
    width = max(1, round(rng.uniform(*params.stroke_width) * scale * shrink))
    angle = rng.uniform(0, 2 * math.pi)
    points = [(x, y)]
    for _ in range(int(rng.integers(params.stroke_vertices[0], params.stroke_vertices[1] + 1)) - 1):
        angle += rng.normal(0.0, 0.8)
        step = rng.uniform(*params.stroke_step) * scale * max(shrink, 0.3)
        x, y = x + step * math.cos(angle), y + step * math.sin(angle)
        points.append((x, y))
    draw.line(points, fill=255, width=width, joint="curve")
    r = width / 2.0
    for px, py in (points[0], points[-1]):  # round caps
        draw.ellipse([px - r, py - r, px + r, py + r], fill=255)


def _draw_blob(draw, rng, scale, size, shrink, params):
    h, w = size
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    radius = rng.uniform(*params.blob_radius) * scale * shrink
    n = int(rng.integers(6, 15))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = radius * rng.uniform(0.5, 1.5, n)
    draw.polygon(
        [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii, strict=True)],
        fill=255,
    )


def irregular_mask(
    shape: Sequence[int], rng=None, params: IrregularParams = DEFAULT_IRREGULAR
) -> np.ndarray:
    """One generated irregular mask: float32 (1, H, W, 1), 1 = hole, ratio in ``hole_ratio``.

    Args:
      shape: (H, W[, C]).
      rng: int seed, ``[seed, index]``, ``np.random.Generator`` or None (OS entropy).
      params: ``IrregularParams``.
    """
    params.check()
    height, width = int(shape[0]), int(shape[1])
    m = params.margin
    if height - 2 * m < 1 or width - 2 * m < 1:
        raise ConfigError(f"margin {m} leaves no room in a {height}x{width} mask")
    gen = _generator(rng)
    lo, hi = params.hole_ratio
    target = gen.uniform(lo, hi)
    scale = min(height, width)
    inner = np.zeros((height, width), bool)
    inner[m : height - m, m : width - m] = True
    hole = np.zeros((height, width), bool)
    ratio, shrink = 0.0, 1.0
    for _ in range(params.max_elements):
        if ratio >= target:
            break
        layer = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(layer)
        if gen.random() < params.blob_probability:
            _draw_blob(draw, gen, scale, (height, width), shrink, params)
        else:
            _draw_stroke(draw, gen, scale, (height, width), shrink, params)
        candidate = hole | ((np.asarray(layer) > 127) & inner)
        new_ratio = float(candidate.mean())
        if new_ratio > hi:  # too big an element for what is left: try smaller ones
            shrink *= 0.7
            continue
        hole, ratio = candidate, new_ratio
    while ratio < lo:  # rare: grow what is there by one pixel at a time
        grown = Image.fromarray(hole.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))
        candidate = (np.asarray(grown) > 127) & inner
        if float(candidate.mean()) > hi or candidate.sum() == hole.sum():
            break
        hole, ratio = candidate, float(candidate.mean())
    return hole.astype(np.float32)[None, :, :, None]


class IrregularMaskFolder:
    """Masks read from a folder (e.g. NVIDIA's Irregular Mask Dataset), augmented.

    Args:
      folder: directory of mask images (searched recursively; .png, .jpg, .bmp, ...), sorted
        by path so an index means the same file everywhere.
      size: (H, W) of the masks returned (the training crop).
      holes_are: "black" (default; NVIDIA's files: pixel < 128 = hole) or "white".
      dilation: (min, max) odd kernel size of the random dilation (1 = none); default (1, 9).
      rotate: random rotation by a uniform angle in [0, 360) (area outside the rotated mask
        is not hole).
      allow_upscale: masks smaller than ``size`` are scaled up (nearest neighbour) until they
        cover it; False refuses them with ``InputError``.

    Raises:
      InputError: the folder is missing or holds no mask images.
    """

    def __init__(
        self,
        folder: str,
        size: Sequence[int],
        *,
        holes_are: str = "black",
        dilation: tuple[int, int] = (1, 9),
        rotate: bool = True,
        allow_upscale: bool = True,
    ):
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise InputError(f"mask folder {folder} not found")
        if holes_are not in ("black", "white"):
            raise ConfigError(f"holes_are must be 'black' or 'white', got {holes_are!r}")
        lo, hi = (int(d) for d in dilation)
        if lo < 1 or hi < lo or lo % 2 == 0 or hi % 2 == 0:
            raise ConfigError(f"dilation must be odd kernel sizes 1 <= min <= max, got {dilation}")
        self.folder = folder
        self.size = (int(size[0]), int(size[1]))
        self.holes_are = holes_are
        self.dilation = (lo, hi)
        self.rotate = bool(rotate)
        self.allow_upscale = bool(allow_upscale)
        self.paths = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(folder)
            for name in names
            if name.lower().endswith(MASK_EXTENSIONS) and not name.startswith(".")
        )
        if not self.paths:
            raise InputError(
                f"mask folder {folder} holds no mask images ({', '.join(MASK_EXTENSIONS)})"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        """File ``index`` as a bool (h, w) array, True = hole, no augmentation."""
        path = self.paths[index]
        try:
            with Image.open(path) as img:
                gray = np.asarray(img.convert("L"))
        except Exception as e:  # PIL raises several types for damaged files
            raise InputError(f"mask {path}: unreadable image ({type(e).__name__})") from None
        return gray < 128 if self.holes_are == "black" else gray >= 128

    def sample(self, rng=None) -> np.ndarray:
        """A random file, dilated, rotated and cropped: float32 (1, H, W, 1), 1 = hole."""
        gen = _generator(rng)
        index = int(gen.integers(len(self.paths)))
        hole = self.read(index)
        img = Image.fromarray(hole.astype(np.uint8) * 255)
        k = int(gen.integers(self.dilation[0] // 2, self.dilation[1] // 2 + 1)) * 2 + 1
        if k > 1:
            img = img.filter(ImageFilter.MaxFilter(k))
        if self.rotate:
            img = img.rotate(gen.uniform(0.0, 360.0), resample=Image.NEAREST, fillcolor=0)
        th, tw = self.size
        w, h = img.size
        if h < th or w < tw:
            if not self.allow_upscale:
                raise InputError(
                    f"mask {self.paths[index]} is {h}x{w}, smaller than the {th}x{tw} crops "
                    "(allow upscaling or use larger masks)"
                )
            factor = max(th / h, tw / w)
            img = img.resize(
                (max(tw, math.ceil(w * factor)), max(th, math.ceil(h * factor))), Image.NEAREST
            )
            w, h = img.size
        top, left = int(gen.integers(h - th + 1)), int(gen.integers(w - tw + 1))
        crop = np.asarray(img)[top : top + th, left : left + tw] > 127
        return crop.astype(np.float32)[None, :, :, None]


def irregular_mask_dataset(
    shape: Sequence[int],
    *,
    seed: int,
    folder: str | None = None,
    params: IrregularParams = DEFAULT_IRREGULAR,
    **folder_kwargs,
):
    """Infinite, reproducible ``tf.data`` stream of irregular masks (1, H, W, 1), 1 = hole.

    Element i is ``irregular_mask(shape, [seed, i], params)``, or with ``folder`` the
    augmented ``IrregularMaskFolder(folder, shape, **folder_kwargs).sample([seed, i])``.
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    import tensorflow as tf

    height, width = int(shape[0]), int(shape[1])
    params.check()
    source = IrregularMaskFolder(folder, (height, width), **folder_kwargs) if folder else None

    def make(i):
        rng = [int(seed) % 2**63, int(i)]
        if source is not None:
            return source.sample(rng)
        return irregular_mask((height, width), rng, params)

    def fetch(i):
        mask = tf.numpy_function(make, [i], tf.float32, stateful=False)
        return tf.ensure_shape(mask, (1, height, width, 1))

    return tf.data.Dataset.counter(dtype=tf.int64).map(
        fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
