"""Training masks: box bounds and deltas, brush-stroke parameters and statistics, union,
reproducibility, and the pure-TF versions against the NumPy/PIL reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.errors import ConfigError
from deepfill_tf.masks import (
    BoxParams,
    BrushParams,
    bbox_to_mask,
    brush_stroke_mask,
    brush_stroke_mask_tf,
    draw_brush_strokes,
    mask_dataset,
    random_bbox,
    random_box_mask,
    random_box_mask_tf,
    random_mask,
    random_mask_tf,
    rasterize_brush_strokes_tf,
    sample_brush_strokes,
    sample_brush_strokes_tf,
    union_masks,
)


def _seed(*v):
    return tf.constant(v, tf.int64)


def _hole_box(mask):
    """(row0, row1, col0, col1) half-open extent of the hole; asserts it is a filled rectangle."""
    rows, cols = np.nonzero(mask[0, :, :, 0])
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    assert mask[0, r0:r1, c0:c1, 0].all() and mask.sum() == (r1 - r0) * (c1 - c0)
    return r0, r1, c0, c1


def _check_mask(mask, h, w):
    mask = np.asarray(mask)
    assert mask.shape == (1, h, w, 1) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}


# ---------------------------------------------------------------------------------- box


@pytest.mark.parametrize("impl", ["numpy", "tf"])
def test_box_bounds_and_deltas(impl):
    # 40x48 image, 16x20 box, margins 3/5, max deltas 8/6: shrink dh in [0,4], dw in [0,3].
    img, p = (40, 48), BoxParams(16, 20, 8, 6, 3, 5)
    tops, lefts, dhs, dws = set(), set(), set(), set()
    for i in range(300):
        if impl == "numpy":
            bbox, mask = random_box_mask(img, **p.__dict__, rng=i)
        else:
            b, m = random_box_mask_tf(_seed(0, i), img, **p.__dict__)
            bbox, mask = tuple(int(v) for v in b.numpy()), m.numpy()
        _check_mask(mask, *img)
        top, left, bh, bw = bbox
        assert (bh, bw) == (16, 20)
        assert 3 <= top < 40 - 3 - 16 and 5 <= left < 48 - 5 - 20, bbox
        r0, r1, c0, c1 = _hole_box(mask)
        dh, dw = r0 - top, c0 - left
        assert (r1, c1) == (top + 16 - dh, left + 20 - dw), "box must shrink symmetrically"
        tops.add(top), lefts.add(left), dhs.add(dh), dws.add(dw)
    # every value of the ranges is reached (upper bounds exclusive for top/left)
    assert tops == set(range(3, 21)) and lefts == set(range(5, 23))
    assert dhs == set(range(5)) and dws == set(range(4))


def test_box_numpy_reproducible_and_seed_dependent():
    a = random_box_mask((64, 64), 32, 32, 8, 8, rng=7)
    b = random_box_mask((64, 64), 32, 32, 8, 8, rng=7)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    others = {random_box_mask((64, 64), 32, 32, 8, 8, rng=s)[0] for s in range(8, 16)}
    assert len(others) > 1
    # bbox_to_mask with an explicit bbox, zero deltas: exactly the box
    m = bbox_to_mask((2, 3, 4, 5), (10, 12), 0, 0, rng=0)
    assert m[0, 2:6, 3:8, 0].all() and m.sum() == 20


def test_box_tf_reproducible_in_tf_function():
    f = tf.function(lambda s: random_box_mask_tf(s, (64, 64), 32, 32, 8, 8))
    b1, m1 = f(_seed(1, 2))
    b2, m2 = random_box_mask_tf(_seed(1, 2), (64, 64), 32, 32, 8, 8)
    assert np.array_equal(b1, b2) and np.array_equal(m1, m2)
    b3, _ = random_box_mask_tf(_seed(1, 3), (64, 64), 32, 32, 8, 8)
    b4, _ = random_box_mask_tf(_seed(1, 4), (64, 64), 32, 32, 8, 8)
    assert not (np.array_equal(b2, b3) and np.array_equal(b2, b4))


def test_box_that_cannot_fit_is_a_config_error():
    with pytest.raises(ConfigError, match="does not fit"):
        random_bbox((64, 64), 64, 32)
    with pytest.raises(ConfigError, match="does not fit"):
        random_box_mask_tf(_seed(0, 0), (64, 64), 32, 32, vertical_margin=16)
    assert BoxParams.for_image(256, 256) == BoxParams()  # inpaint.yml at 256x256


# -------------------------------------------------------------------------------- brush


def test_brush_parameters_match_the_original():
    """Strokes per mask, segments, widths, start points and step lengths (256x256)."""
    n_strokes, n_segments, widths = set(), set(), set()
    radius = math.sqrt(2 * 256**2) / 8
    for seed in range(150):
        strokes = sample_brush_strokes(256, 256, rng=seed)
        n_strokes.add(len(strokes))
        for s in strokes:
            n_segments.add(len(s.vertices) - 1)
            widths.add(s.width)
            pts = np.array(s.vertices, float)
            assert ((pts >= 0) & (pts <= 256)).all()
            steps = np.hypot(*np.diff(pts, axis=0).T)
            # clip(normal(R, R // 2), 0, 2R), then both coordinates truncated (< 1 px each)
            assert steps.max() <= 2 * radius + math.sqrt(2)
    assert n_strokes == {1, 2, 3}
    assert n_segments == set(range(4, 12))
    assert min(widths) >= 12 and max(widths) <= 39 and len(widths) > 20


def test_brush_consumes_the_stream_like_the_original():
    """One normal() per segment plus the two no-op flips; 3 + num_vertex uniforms per stroke."""

    class Counting(np.random.RandomState):
        def __init__(self, seed):
            super().__init__(seed)
            self.calls = {"normal": 0, "uniform": 0, "randint": 0}

        def normal(self, *a, **k):
            self.calls["normal"] += 1
            return super().normal(*a, **k)

        def uniform(self, *a, **k):
            self.calls["uniform"] += 1
            return super().uniform(*a, **k)

        def randint(self, *a, **k):
            self.calls["randint"] += 1
            return super().randint(*a, **k)

    rs = Counting(2018)
    strokes = sample_brush_strokes(256, 256, rng=rs)
    segments = sum(len(s.vertices) - 1 for s in strokes)
    assert rs.calls["normal"] == segments + 2
    assert rs.calls["uniform"] == segments + 3 * len(strokes)  # 2 angle bounds + width
    assert rs.calls["randint"] == 1 + 3 * len(strokes)  # strokes; vertices, x, y per stroke


def test_brush_mask_values_reproducibility_and_hole_fraction():
    masks = [brush_stroke_mask(128, 128, rng=s) for s in range(40)]
    for m in masks:
        _check_mask(m, 128, 128)
    assert np.array_equal(masks[3], brush_stroke_mask(128, 128, rng=3))
    assert not np.array_equal(masks[3], masks[4])
    frac = np.array([m.mean() for m in masks])
    # 1-3 strokes 12-39 px wide on 128x128: never empty, never the whole image
    assert frac.min() > 0.02 and frac.max() < 0.8, (frac.min(), frac.max())
    assert 0.15 < frac.mean() < 0.45, frac.mean()


@pytest.mark.parametrize("stroke_width", [12, 25, 39])
def test_stroke_width_in_pixels(stroke_width):
    """A horizontal stroke is `width` pixels thick in both rasterisers (+-1 for PIL)."""
    from deepfill_tf.masks import Stroke

    pil = draw_brush_strokes([Stroke(((20, 50), (100, 50)), stroke_width)], 100, 120)
    thick_pil = pil[0, :, 60, 0].sum()
    verts = np.array([[[20, 50], [100, 50]]], np.float32)
    ours = rasterize_brush_strokes_tf(verts, [1], [stroke_width], 1, 100, 120).numpy()
    thick_tf = ours[0, :, 60, 0].sum()
    assert abs(thick_pil - stroke_width) <= 1 and abs(thick_tf - stroke_width) <= 1
    # round caps: the disc at (20, 50) reaches about width // 2 left of the end point
    assert (
        ours[0, 50, 20 - stroke_width // 2, 0] == 1 and ours[0, 50, 19 - stroke_width // 2, 0] == 0
    )


def test_swap_hw_quirk():
    """The original draws x (column) in [0, H] and y (row) in [0, W]: on a wide image the
    strokes stay in the first H columns; swap_hw=False spreads them over the width."""
    h, w = 32, 160
    xs_swapped, xs_fixed = [], []
    for seed in range(30):
        for s in sample_brush_strokes(h, w, rng=seed):
            xs_swapped += [p[0] for p in s.vertices]
        for s in sample_brush_strokes(h, w, rng=seed, swap_hw=False):
            xs_fixed += [p[0] for p in s.vertices]
    assert max(xs_swapped) <= h
    assert max(xs_fixed) > 2 * h


def test_tf_brush_parameters_and_reproducibility():
    f = tf.function(lambda s: sample_brush_strokes_tf(s, 256, 256))
    n_strokes, n_vertex, widths = set(), set(), set()
    for i in range(60):
        s = f(_seed(5, i))
        n = int(s["num_strokes"])
        n_strokes.add(n)
        n_vertex.update(s["num_vertex"].numpy()[:n].tolist())
        widths.update(s["widths"].numpy()[:n].tolist())
        v = s["vertices"].numpy()
        assert v.shape == (3, 12, 2) and (v >= 0).all() and (v <= 256).all()
        assert np.array_equal(v, np.floor(v))
    assert n_strokes == {1, 2, 3}
    assert n_vertex <= set(range(4, 12)) and len(n_vertex) >= 6
    assert min(widths) >= 12 and max(widths) <= 39
    m1 = brush_stroke_mask_tf(_seed(9, 9), 64, 80)
    _check_mask(m1, 64, 80)
    g = tf.function(lambda s: brush_stroke_mask_tf(s, 64, 80))
    assert np.array_equal(m1, g(_seed(9, 9)))
    assert not np.array_equal(m1, g(_seed(9, 10)))


def test_tf_rasteriser_matches_pil_on_the_same_strokes():
    ious = []
    for seed in range(8):
        strokes = sample_brush_strokes(128, 128, rng=seed)
        ref = draw_brush_strokes(strokes, 128, 128)[0, :, :, 0] > 0
        verts = np.zeros((3, 12, 2), np.float32)
        nv, wd = np.zeros(3, np.int32), np.zeros(3, np.int32)
        for k, s in enumerate(strokes):
            verts[k, : len(s.vertices)] = s.vertices
            nv[k], wd[k] = len(s.vertices) - 1, s.width
        got = rasterize_brush_strokes_tf(verts, nv, wd, len(strokes), 128, 128).numpy()
        got = got[0, :, :, 0] > 0
        iou = (ref & got).sum() / (ref | got).sum()
        if iou < 0.94:
            bad = np.argwhere(ref != got)
            pytest.fail(f"seed {seed}: IoU {iou:.4f}, {len(bad)} pixels differ, first at {bad[0]}")
        ious.append(iou)
    assert np.mean(ious) > 0.975, ious


def test_tf_and_numpy_brush_have_the_same_hole_statistics():
    f = tf.function(lambda s: brush_stroke_mask_tf(s, 128, 128))
    tf_frac = np.array([f(_seed(11, i)).numpy().mean() for i in range(60)])
    np_frac = np.array([brush_stroke_mask(128, 128, rng=1000 + i).mean() for i in range(60)])
    assert abs(tf_frac.mean() - np_frac.mean()) < 0.06, (tf_frac.mean(), np_frac.mean())
    assert abs(np.median(tf_frac) - np.median(np_frac)) < 0.08


def test_brush_params_are_used():
    thin = BrushParams(min_strokes=1, max_strokes=1, min_width=3, max_width=4)
    for seed in range(5):
        (s,) = sample_brush_strokes(64, 64, rng=seed, params=thin)
        assert s.width == 3
    s = sample_brush_strokes_tf(_seed(0, 1), 64, 64, params=thin)
    assert int(s["num_strokes"]) == 1 and int(s["widths"][0]) == 3


# ----------------------------------------------------------------------- union, kinds


def test_union_is_box_or_brush():
    box = BoxParams(32, 32, 8, 8)
    both = random_mask("both", (64, 64), rng=5, box=box)
    rs = np.random.RandomState(5)  # "both" draws the box first, then the strokes
    _, b = random_box_mask((64, 64), 32, 32, 8, 8, rng=rs)
    s = brush_stroke_mask(64, 64, rng=rs)
    assert np.array_equal(both, np.maximum(b, s))
    _check_mask(both, 64, 64)
    assert np.array_equal(union_masks(b, s), both)
    t = union_masks(tf.constant(b), tf.constant(s))
    assert isinstance(t, tf.Tensor) and np.array_equal(t.numpy(), both)


def test_random_mask_tf_kinds():
    seed = _seed(3, 4)
    box = random_mask_tf("box", seed, (64, 64))
    brush = random_mask_tf("free_form", seed, (64, 64))
    both = random_mask_tf("both", seed, (64, 64))
    for m in (box, brush, both):
        _check_mask(m.numpy(), 64, 64)
    assert np.array_equal(both.numpy(), np.maximum(box.numpy(), brush.numpy()))
    _hole_box(box.numpy())  # the default box (H/2 x W/2) fits a 64x64 image
    with pytest.raises(ConfigError, match="unknown mask kind"):
        random_mask_tf("circle", seed, (64, 64))
    with pytest.raises(ConfigError, match="unknown mask kind"):
        random_mask("circle", (64, 64))


def test_mask_dataset_is_reproducible():
    ds = mask_dataset("both", (48, 48), seed=4)
    assert ds.element_spec.shape == (1, 48, 48, 1)
    a = [m.numpy() for m in ds.take(3)]
    b = [m.numpy() for m in ds.take(3)]
    c = [m.numpy() for m in mask_dataset("both", (48, 48), seed=5).take(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    with pytest.raises(ConfigError, match="does not fit"):
        mask_dataset("box", (48, 48), seed=0, box=BoxParams(48, 48, 0, 0))
