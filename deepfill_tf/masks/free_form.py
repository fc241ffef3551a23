"""Free-form brush-stroke training masks of DeepFill v2 (gated convolution paper, Alg. 1).

What the original ``brush_stroke_mask`` (generative_inpainting v2.0.0) draws, all with
NumPy's legacy global ``RandomState`` (seeded 2018 at import), in this order, for an image of
H rows and W columns (``BrushParams`` holds every number below):

* number of strokes ``randint(1, 4)``: 1 to 3;
* per stroke:

  - vertices ``num_vertex = randint(4, 12)``: 4 to 11 segments (num_vertex + 1 points);
  - ``angle_min = 2pi/5 - uniform(0, 2pi/15)``, ``angle_max = 2pi/5 + uniform(0, 2pi/15)``;
  - one angle per segment, ``uniform(angle_min, angle_max)``, reflected as
    ``2pi - angle`` on even segments (0, 2, 4, ...), so the stroke zig-zags;
  - start point ``x = randint(0, w)``, ``y = randint(0, h)`` where ``(h, w) = mask.size`` of a
    PIL image of size (W, H), i.e. ``h = W`` and ``w = H``: **the original swaps H and W**, so
    x (the column) is drawn in [0, H) and y (the row) in [0, W) (``swap_hw=True``; irrelevant
    for square images);
  - per segment a length ``r = clip(normal(R, R // 2), 0, 2R)`` with the average radius
    ``R = sqrt(H^2 + W^2) / 8`` (``R // 2`` is a float floor: 22.0 at 256x256); the next
    point is ``clip(x + r cos(angle), 0, w)``, ``clip(y + r sin(angle), 0, h)`` (same swapped
    limits, upper bound inclusive) truncated to int;
  - width ``int(uniform(12, 40))``: 12 to 39 pixels;
  - drawn with ``ImageDraw.line(points, width=width)`` plus a disc at every point,
    ``ellipse((x - width // 2, y - width // 2, x + width // 2, y + width // 2))`` (round
    joints and caps);

* then two ``normal() > 0`` "random flips" that are **no-ops** (``Image.transpose`` returns a
  new image that is discarded); they still consume two normals of the stream;
* result float32 (1, H, W, 1), 1 = hole. In v2 training it is OR-ed with the box mask.

Two implementations:

* ``brush_stroke_mask`` (NumPy + PIL): samples with a ``np.random.RandomState`` in exactly the
  original's call order (``np.random.RandomState(2018)`` replays the original stream as
  long as nothing else draws from it; in v2 training the box mask's deltas came from the
  same global stream, in graph-scheduling order) and draws with PIL as the original (the
  border pixels of PIL's wide lines and ellipses have changed between Pillow releases).
  For offline use (the ``deepfill-tf masks`` CLI) and as the reference in tests; never
  inside exported models.
* ``brush_stroke_mask_tf`` (pure TensorFlow): the same distribution from stateless random ops
  and a shape-[2] seed, rasterised as "distance from the pixel centre to a segment
  <= width / 2, or to a vertex <= width // 2 + 0.4". It runs in ``tf.data`` maps and in
  ``tf.function`` training steps on any device, reproducibly, without ``tf.numpy_function``
  (which would hold the GIL, pin the op to the CPU and not serialise). Its pixels match
  PIL's rasterisation of the same strokes except for a one-pixel fringe on some borders
  (IoU 0.987 on average, above 0.94 for every mask tried; tests/test_masks.py checks it),
  not bit for bit; the stroke geometry is the same.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from deepfill_tf.masks.box import as_random_state

__all__ = [
    "BrushParams",
    "Stroke",
    "brush_stroke_mask",
    "brush_stroke_mask_tf",
    "draw_brush_strokes",
    "rasterize_brush_strokes_tf",
    "sample_brush_strokes",
    "sample_brush_strokes_tf",
]


@dataclasses.dataclass(frozen=True)
class BrushParams:
    """Parameters of the brush-stroke mask; the defaults are the original's.

    Attributes:
        min_strokes, max_strokes: strokes per mask, both inclusive (original ``randint(1, 4)``).
        min_num_vertex, max_num_vertex: segments per stroke, ``randint(min, max)`` so max is
            EXCLUSIVE (original 4 and 12: 4 to 11 segments).
        mean_angle: 2pi/5, centre of the segment angles (radians).
        angle_range: 2pi/15, largest deviation of ``angle_min``/``angle_max`` from the mean.
        min_width, max_width: stroke width ``int(uniform(min, max))`` in pixels (12, 40: 12 to
            39).
        radius_divisor: average segment length R = sqrt(H^2 + W^2) / radius_divisor (8).
    """

    min_strokes: int = 1
    max_strokes: int = 3
    min_num_vertex: int = 4
    max_num_vertex: int = 12
    mean_angle: float = 2 * math.pi / 5
    angle_range: float = 2 * math.pi / 15
    min_width: float = 12.0
    max_width: float = 40.0
    radius_divisor: float = 8.0

    def average_radius(self, height: int, width: int) -> float:
        return math.sqrt(height * height + width * width) / self.radius_divisor


DEFAULT_BRUSH = BrushParams()
# PIL's ellipse with the inclusive box (x - r, y - r, x + r, y + r) fills the pixels within
# about r + 0.4 of the centre (measured against Pillow for r = 6..19; r + 0.5 over-fills).
_DISC_PAD = 0.4


class Stroke(NamedTuple):
    """One brush stroke: integer (x = column, y = row) points and a width in pixels."""

    vertices: tuple[tuple[int, int], ...]
    width: int


def _limits(height: int, width: int, swap_hw: bool) -> tuple[int, int]:
    """(x_limit, y_limit): range of the start point and clip bound of x (column) and y (row)."""
    return (height, width) if swap_hw else (width, height)


# ------------------------------------------------------------------------------ NumPy + PIL


def sample_brush_strokes(
    height: int,
    width: int,
    *,
    rng: int | np.random.RandomState | None = None,
    params: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> list[Stroke]:
    """Draw the strokes of one mask, consuming ``rng`` exactly as the original does.

    Args:
        height, width: mask size H x W.
        rng: int seed or ``np.random.RandomState`` (the original's global one was seeded 2018).
        params: ``BrushParams`` (defaults = original).
        swap_hw: reproduce the original's H/W swap of the start point and clipping (see the
            module docstring); False uses x in [0, W], y in [0, H].

    Returns:
        list of 1-3 ``Stroke`` with num_vertex + 1 points each.
    """
    rs = as_random_state(rng)
    x_limit, y_limit = _limits(height, width, swap_hw)
    radius = params.average_radius(height, width)
    strokes = []
    for _ in range(rs.randint(params.min_strokes, params.max_strokes + 1)):
        num_vertex = rs.randint(params.min_num_vertex, params.max_num_vertex)
        angle_min = params.mean_angle - rs.uniform(0, params.angle_range)
        angle_max = params.mean_angle + rs.uniform(0, params.angle_range)
        angles = []
        for i in range(num_vertex):
            angle = rs.uniform(angle_min, angle_max)
            angles.append(2 * math.pi - angle if i % 2 == 0 else angle)
        points = [(int(rs.randint(0, x_limit)), int(rs.randint(0, y_limit)))]
        for angle in angles:
            # Float floor division `radius // 2` as the original (22.0, not 22.6, at 256^2).
            r = np.clip(rs.normal(loc=radius, scale=radius // 2), 0, 2 * radius)
            x = np.clip(points[-1][0] + r * math.cos(angle), 0, x_limit)
            y = np.clip(points[-1][1] + r * math.sin(angle), 0, y_limit)
            points.append((int(x), int(y)))
        stroke_width = int(rs.uniform(params.min_width, params.max_width))
        strokes.append(Stroke(tuple(points), stroke_width))
    # The original's two random flips: `mask.transpose(...)` results are discarded, so they
    # change nothing, but their normal() draws advance the shared stream.
    rs.normal()
    rs.normal()
    return strokes


def draw_brush_strokes(strokes: list[Stroke], height: int, width: int) -> np.ndarray:
    """Rasterise strokes with PIL as the original: wide polyline + a disc at every point.

    Returns:
        float32 (1, H, W, 1), 1 = hole.
    """
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        draw.line(list(stroke.vertices), fill=1, width=stroke.width)
        half = stroke.width // 2
        for x, y in stroke.vertices:
            draw.ellipse((x - half, y - half, x + half, y + half), fill=1)
    return np.asarray(image, np.float32).reshape(1, height, width, 1)


def brush_stroke_mask(
    height: int,
    width: int,
    *,
    rng: int | np.random.RandomState | None = None,
    params: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> np.ndarray:
    """Free-form mask as the original ``brush_stroke_mask`` (NumPy RNG + PIL drawing).

    Returns:
        float32 (1, H, W, 1) with values {0, 1}, 1 = hole.
    """
    strokes = sample_brush_strokes(height, width, rng=rng, params=params, swap_hw=swap_hw)
    return draw_brush_strokes(strokes, height, width)


# --------------------------------------------------------------------------------- TensorFlow


def sample_brush_strokes_tf(
    seed: tf.Tensor,
    height: int,
    width: int,
    *,
    params: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> dict[str, tf.Tensor]:
    """Stateless version of ``sample_brush_strokes`` with fixed-size, padded outputs.

    S = params.max_strokes strokes and V = params.max_num_vertex - 1 segments are always
    drawn; ``num_strokes`` and ``num_vertex`` say how many are real.

    Args:
        seed: shape-[2] int32/int64 seed.
        height, width, params, swap_hw: as ``sample_brush_strokes``.

    Returns:
        dict with ``vertices`` float32 [S, V + 1, 2] (x = column, y = row, integer valued),
        ``num_vertex`` int32 [S] (segments of each stroke), ``widths`` int32 [S],
        ``num_strokes`` int32 scalar.
    """
    num_s = params.max_strokes
    num_v = params.max_num_vertex - 1
    x_limit, y_limit = _limits(height, width, swap_hw)
    radius = params.average_radius(height, width)
    seeds = tf.random.experimental.stateless_split(seed, num=8)
    uniform = tf.random.stateless_uniform

    num_strokes = uniform([], seeds[0], params.min_strokes, params.max_strokes + 1, dtype=tf.int32)
    num_vertex = uniform(
        [num_s], seeds[1], params.min_num_vertex, params.max_num_vertex, dtype=tf.int32
    )
    spread = uniform([num_s, 2], seeds[2], 0.0, params.angle_range)
    angle_min = params.mean_angle - spread[:, 0:1]  # [S, 1]
    angle_max = params.mean_angle + spread[:, 1:2]
    angles = angle_min + (angle_max - angle_min) * uniform([num_s, num_v], seeds[3])
    even = tf.range(num_v) % 2 == 0  # segments 0, 2, 4, ... are reflected
    angles = tf.where(even[None, :], 2 * math.pi - angles, angles)  # [S, V]
    x = tf.cast(uniform([num_s], seeds[4], 0, x_limit, dtype=tf.int32), tf.float32)
    y = tf.cast(uniform([num_s], seeds[5], 0, y_limit, dtype=tf.int32), tf.float32)
    lengths = radius + (radius // 2) * tf.random.stateless_normal([num_s, num_v], seeds[6])
    lengths = tf.clip_by_value(lengths, 0.0, 2 * radius)
    points = [tf.stack([x, y], axis=-1)]
    for i in range(num_v):  # each step clips, so the walk is sequential
        x = tf.floor(tf.clip_by_value(x + lengths[:, i] * tf.cos(angles[:, i]), 0.0, x_limit))
        y = tf.floor(tf.clip_by_value(y + lengths[:, i] * tf.sin(angles[:, i]), 0.0, y_limit))
        points.append(tf.stack([x, y], axis=-1))
    widths = uniform([num_s], seeds[7], params.min_width, params.max_width)
    return {
        "vertices": tf.stack(points, axis=1),  # [S, V + 1, 2]
        "num_vertex": num_vertex,
        "widths": tf.cast(tf.floor(widths), tf.int32),
        "num_strokes": num_strokes,
    }


def rasterize_brush_strokes_tf(
    vertices: tf.Tensor,
    num_vertex: tf.Tensor,
    widths: tf.Tensor,
    num_strokes: tf.Tensor,
    height: int,
    width: int,
) -> tf.Tensor:
    """Rasterise padded strokes: the pure-TF counterpart of ``draw_brush_strokes``.

    A pixel (centre at integer column x, row y) is a hole if it lies within ``width / 2`` of
    one of the stroke's segments (PIL's wide line is a width-pixel band) or within
    ``width // 2 + 0.4`` of one of its points (PIL's disc of diameter 2 * (width // 2) + 1).

    Args:
        vertices: float [S, P, 2] (x, y) points; stroke s uses points 0..num_vertex[s].
        num_vertex: int [S] segments per stroke.
        widths: int [S] stroke widths.
        num_strokes: int scalar, strokes 0..num_strokes-1 are drawn.
        height, width: python ints, the mask size.

    Returns:
        float32 (1, H, W, 1), 1 = hole.
    """
    vertices = tf.cast(vertices, tf.float32)
    num_s = vertices.shape[0]
    num_p = vertices.shape[1]
    stroke_on = tf.range(num_s) < tf.cast(num_strokes, tf.int32)  # [S]
    point_on = tf.range(num_p)[None, :] <= tf.cast(num_vertex, tf.int32)[:, None]  # [S, P]
    point_on = point_on & stroke_on[:, None]
    seg_on = point_on[:, 1:]  # segment j joins points j and j + 1
    stroke_w = tf.cast(widths, tf.float32)
    seg_r2 = tf.square(stroke_w / 2.0)  # [S]
    disc_r2 = tf.square(tf.floor(stroke_w / 2.0) + _DISC_PAD)

    rows = tf.range(height, dtype=tf.float32)[:, None, None]  # [H, 1, 1]
    cols = tf.range(width, dtype=tf.float32)[None, :, None]  # [1, W, 1]
    hole = tf.zeros([height, width], tf.bool)
    for s in range(num_s):  # a python loop keeps the [H, W, P] temporaries small
        px, py = vertices[s, :, 0], vertices[s, :, 1]  # [P]
        # Points (discs).
        d2 = tf.square(cols - px) + tf.square(rows - py)  # [H, W, P]
        in_disc = (d2 <= disc_r2[s]) & point_on[s]
        # Segments: distance to the closest point of each segment (zero-length ones are points).
        x0, y0, dx, dy = px[:-1], py[:-1], px[1:] - px[:-1], py[1:] - py[:-1]  # [P - 1]
        len2 = tf.maximum(dx * dx + dy * dy, 1e-12)
        t = tf.clip_by_value(((cols - x0) * dx + (rows - y0) * dy) / len2, 0.0, 1.0)
        e2 = tf.square(cols - (x0 + t * dx)) + tf.square(rows - (y0 + t * dy))  # [H, W, P - 1]
        in_line = (e2 <= seg_r2[s]) & seg_on[s]
        hole = hole | tf.reduce_any(in_disc, axis=-1) | tf.reduce_any(in_line, axis=-1)
    return tf.cast(hole, tf.float32)[None, :, :, None]


def brush_stroke_mask_tf(
    seed: tf.Tensor,
    height: int,
    width: int,
    *,
    params: BrushParams = DEFAULT_BRUSH,
    swap_hw: bool = True,
) -> tf.Tensor:
    """Stateless free-form mask (pure TF, graph- and tf.data-friendly).

    Args:
        seed: shape-[2] int32/int64 seed; the same seed gives the same mask.
        height, width: python ints.
        params, swap_hw: as ``brush_stroke_mask``.

    Returns:
        float32 (1, H, W, 1) with values {0, 1}, 1 = hole.
    """
    s = sample_brush_strokes_tf(seed, height, width, params=params, swap_hw=swap_hw)
    return rasterize_brush_strokes_tf(
        s["vertices"], s["num_vertex"], s["widths"], s["num_strokes"], height, width
    )
