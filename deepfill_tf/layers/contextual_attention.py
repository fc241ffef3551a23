"""DeepFill's contextual attention (Yu et al., CVPR 2018), exact and batched.

Reproduces ``contextual_attention`` of the original generative_inpainting code (v1 and v2 are
identical except for the flow picture's x2 resize; JiahuiYu/generative_inpainting
``inpaint_ops.py``), step by step. Notation: the inputs are at 1/4 of the image size
(``h x w``), matching happens at 1/8 (``hs x ws``, ``L = hs * ws`` cells, row-major
``l = i * ws + j``).

How the arithmetic is organised (same values as the original, other op order):

* Scores are one batched matmul of the normalised 3x3 background patches with the 3x3
  foreground patches, computed transposed (rows = background patch ``l``, columns =
  foreground cell ``p``) and already multiplied by ``softmax_scale``.
* The fuse (two passes of a 3-tap diagonal sum over the FLATTENED indices, the second one in
  column-major order) is done without any convolution or transpose. Both factors of the matmul
  are laid out on a padded "halo" sequence: ``[0, 0, cells L-ws..L-2, cells 0..L-1,
  cells 1..ws-1, 0, 0...]``. In that sequence a row-major neighbour is one step away and a
  column-major neighbour (including the wrap from the bottom of one grid column to the top of
  the next) is ``ws`` steps away, so each pass is a sum of three shifted copies of the flat
  score buffer (offsets ``+-(W + 1)`` and ``+-ws * (W + 1)``, W the padded row length) and
  both passes together are ONE AddN of 9 zero-copy views. The few rows/columns where the
  sequence's joints break the neighbourhood (at most 10 cells per axis) are recomputed
  exactly from the raw scores and patched in.
* Softmax, argmax and the paste only use the rows of patches whose ``mm`` is 1 (the others
  have logit 0 and weight 0, so they enter the softmax denominator as ``n_masked * exp(-max)``).

Bounded memory (``max_attention_mb``): the single pass above holds about four (L + 2 ws)^2
float32 buffers, which grows with the square of the image area (10 GB per buffer at 2048 x
1536). When that estimate exceeds the budget, the foreground cells are processed in chunks
(``ContextualAttention._chunked``, a ``tf.while_loop``): a chunk of c cells (a square tile of
the grid) computes the raw scores of the rows its fuse reads (its cells and their 8 fuse
neighbours, laid out as runs of consecutive cells; about c + 6 sqrt(c) rows) against every
background patch laid out on the halo sequence. Along a run the row-major fuse step is a
diagonal shift, so the 9 fuse terms are one AddN of 3 zero-copy views plus 3 row gathers
and column shifts (``_chunk_fused_scores``); the few joint columns are recomputed exactly,
and then the same softmax, argmax and paste run per row. Memory is O(c x L), the chunk size
follows from the budget; the results equal the single pass up to float32 reassociation (the
tests compare them on the oracle inputs). The choice is made at trace time when the shapes
are static, else by a ``tf.cond``. ``foreground_margin`` restricts the work to the cells near
the hole; a ``region`` argument (where the caller reads the output) restricts it to the cells
whose paste window covers the region.

The output ``y`` uses only ops with TFLite builtin kernels (at most 5-D, no int64 division, no
new-axis slices of tensors with two unknown dimensions), fixed or dynamic shapes: keep it so
(``tests/test_export.py`` converts the layer). The flow picture is float64 and has no TFLite
kernels; the TFLite export does not use it.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from deepfill_tf.ops.resize import resize_bilinear_align_corners, resize_nearest_align_corners

# Default memory budget of the score buffers (``max_attention_mb``): the single pass up to
# about 700 x 500 images (batch 1) and 256 x 256 training batches up to 24, chunks above.
DEFAULT_MAX_ATTENTION_MB = 512.0

# The original divides by (max radius + np.finfo(float).eps) in float64.
_EPS64 = float(np.finfo(np.float64).eps)


def _make_colour_wheel() -> np.ndarray:
    """Middlebury colour wheel (55 x 3, values 0..255): RY15, YG6, GC4, CB11, BM13, MR6."""
    segments = [  # (length, channel that ramps, ramp direction, channels held at 255)
        (15, 1, +1, (0,)),  # red -> yellow: G ramps up
        (6, 0, -1, (1,)),  # yellow -> green: R ramps down
        (4, 2, +1, (1,)),  # green -> cyan: B ramps up
        (11, 1, -1, (2,)),  # cyan -> blue: G ramps down
        (13, 0, +1, (2,)),  # blue -> magenta: R ramps up
        (6, 2, -1, (0,)),  # magenta -> red: B ramps down
    ]
    rows = []
    for n, ramp, direction, full in segments:
        block = np.zeros((n, 3))
        steps = np.floor(255 * np.arange(n) / n)
        block[:, ramp] = steps if direction > 0 else 255 - steps
        for c in full:
            block[:, c] = 255
        rows.append(block)
    return np.concatenate(rows, axis=0)


# col0/col1 of the original are `wheel[k] / 255` in float64; precomputed (same IEEE division)
# so that no graph-level division by a constant can be rewritten into a multiplication.
_WHEEL_01 = _make_colour_wheel() / 255.0
_N_COLOURS = _WHEEL_01.shape[0]


# ------------------------------------------------------------------------------------ patches
def _window_slices(x, k: int, h, w):
    """The k*k taps of x's k x k windows, TF 'SAME' zero padding: list of (B, h, w, C)."""
    pb = (k - 1) // 2
    xp = tf.pad(x, [[0, 0], [pb, k - 1 - pb], [pb, k - 1 - pb], [0, 0]])
    size = tf.stack([-1, h, w, -1])  # tf.slice: its gradient is a pad, StridedSlice's is slow
    return [tf.slice(xp, [0, i, j, 0], size) for i in range(k) for j in range(k)]


def _patches(x, k: int, h, w):
    """k x k patches of x (B, h, w, C), stride 1, TF 'SAME' zero padding -> (B, h, w, k*k*C)
    in (ki, kj, c) order like ``tf.image.extract_patches``; slices keep the gradient cheap."""
    return tf.concat(_window_slices(x, k, h, w), axis=-1)


def _paste_patches(x, rate: int, hs, ws):
    """2r x 2r patches of x (B, r*hs, r*ws, C) at stride r, TF 'SAME' padding (r//2 before).

    Returns (B, hs, ws, 4 r^2 C) in (di, dj, ry, rx, c) order: tap (a, b) of the patch is
    (r*di + ry, r*dj + rx): the four r x r blocks (space_to_depth) of the window. Strided
    slices would be slow, and tf.slice's gradient is a cheap pad.
    """
    pb = rate // 2
    xp = tf.pad(x, [[0, 0], [pb, rate - pb], [pb, rate - pb], [0, 0]])
    # (B, hs + 1, ws + 1, r*r*C) in (ry, rx, c) order
    blocks = tf.nn.space_to_depth(xp, rate) if rate > 1 else xp
    size = tf.stack([-1, hs, ws, -1])
    return tf.concat(
        [tf.slice(blocks, [0, di, dj, 0], size) for di in range(2) for dj in range(2)], axis=-1
    )


def _overlap_add(cols, rate: int, hs, ws, channels):
    """Transposed conv of per-cell patch sums: cols (B, hs, ws, 4 r^2 C) in ``_paste_patches``
    order -> (B, hs*r, ws*r, C), the adjoint of ``_paste_patches``.

    Cell (i, j) adds its 2r x 2r patch at rows r*i - r//2 + a, cols r*j - r//2 + b (clipped),
    which is ``conv2d_transpose(..., strides=r, padding='SAME')`` with a 2r x 2r filter: block
    (di, dj) of cell (i, j) lands on r x r block (i + di, j + dj) of the padded output.
    """
    pb = rate // 2
    parts = tf.unstack(tf.reshape(cols, [-1, hs, ws, 4, rate * rate * channels]), axis=3)
    blocks = tf.add_n(
        [
            tf.pad(part, [[0, 0], [di, 1 - di], [dj, 1 - dj], [0, 0]])
            for part, (di, dj) in zip(parts, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True)
        ]
    )  # (B, hs + 1, ws + 1, r*r*C)
    padded = tf.nn.depth_to_space(blocks, rate) if rate > 1 else blocks
    return tf.slice(padded, [0, pb, pb, 0], tf.stack([-1, hs * rate, ws * rate, -1]))


# ------------------------------------------------------------------------------------ flow
def flow_to_colour(offsets, resize: str, rate: int = 2):
    """The original's ``flow_to_image_tf`` as graph ops (no py_func), then the x``rate`` resize.

    Args:
      offsets: (B, hs, ws, 2) int32 (dy, dx) attention offsets.
      resize: "bilinear" (v2) or "nearest" (v1), align_corners=True.

    Returns:
      (B, hs*rate, ws*rate, 3) float32 in [-1, 1]: Middlebury colour coding with dy as u and dx
      as v, normalised by the running maximum radius over the batch so far (+ float64 eps),
      ``floor(255 * colour) / 127.5 - 1``. Computed in float64 with the original's op order.
    """
    u = tf.cast(offsets[..., 0], tf.float64)
    v = tf.cast(offsets[..., 1], tf.float64)
    max_rad = tf.reduce_max(tf.sqrt(u * u + v * v), axis=[1, 2])  # (B,)
    batch = tf.shape(max_rad)[0]
    seen = tf.range(batch)[:, None] >= tf.range(batch)[None, :]  # j <= i
    # Quirk: the normaliser is the running maximum over the batch (starting at -1).
    running = tf.reduce_max(tf.where(seen, max_rad[None, :], -np.inf), axis=1)
    denom = (tf.maximum(running, -1.0) + _EPS64)[:, None, None]
    u = tf.math.divide_no_nan(u, denom)  # divide_no_nan: a plain division grappler won't touch
    v = tf.math.divide_no_nan(v, denom)
    rad = tf.sqrt(u * u + v * v)
    angle = tf.math.divide_no_nan(tf.math.atan2(-v, -u), tf.constant(np.pi, tf.float64))
    fk = (angle + 1.0) / 2.0 * float(_N_COLOURS - 1) + 1.0
    k0 = tf.cast(tf.floor(fk), tf.int32)
    k1 = tf.where(k0 + 1 == _N_COLOURS + 1, 1, k0 + 1)
    frac = fk - tf.cast(k0, tf.float64)
    wheel = tf.constant(_WHEEL_01, tf.float64)
    col0 = tf.gather(wheel, k0 - 1)  # (B, hs, ws, 3)
    col1 = tf.gather(wheel, k1 - 1)
    frac, rad = frac[..., None], rad[..., None]
    col = (1.0 - frac) * col0 + frac * col1
    col = tf.where(rad <= 1.0, 1.0 - rad * (1.0 - col), col * 0.75)
    img = tf.cast(tf.floor(255.0 * col), tf.float32)  # the uint8 picture, as float
    img = img / 127.5 - 1.0
    if resize == "bilinear":
        return resize_bilinear_align_corners(img, scale=rate)
    return resize_nearest_align_corners(img, scale=rate)


# ------------------------------------------------------------------------------------ matmul
def _matmul(a, b, transpose_b: bool = False, rows=None):
    """Batched matmul ``a @ b``, optionally only for the first ``rows`` rows of ``a``.

    Batch 1 runs the 2-D MatMul kernel, about 2x faster than the batched one on CPU (oneDNN)
    for these shapes, and its row prefix is a zero-copy slice. Unknown batch: decided at run
    time.
    """

    def flat():
        a2 = a[0] if rows is None else a[0][:rows]
        return tf.linalg.matmul(a2, b[0], transpose_b=transpose_b)[None]

    def batched():
        out = tf.linalg.matmul(a, b, transpose_b=transpose_b)
        return out if rows is None else tf.slice(out, [0, 0, 0], tf.stack([-1, rows, -1]))

    if a.shape[0] is not None:
        return flat() if a.shape[0] == 1 else batched()
    return tf.cond(tf.equal(tf.shape(a)[0], 1), flat, batched)


# ---------------------------------------------------------------------- fuse index geometry
def _h_step(cells, step: int, n):
    """Row-major neighbour (flattened index + step); -1 when outside or already invalid."""
    out = cells + step
    return tf.where((cells < 0) | (out < 0) | (out >= n), -1, out)


def _g_step(cells, step: int, hs, ws):
    """Column-major neighbour (y + step, wrapping to the next/previous grid column)."""
    y, x = cells // ws, cells % ws
    cm = x * hs + y + step  # column-major flat index
    out = (cm % hs) * ws + cm // hs
    return tf.where((cells < 0) | (cm < 0) | (cm >= hs * ws), -1, out)


def _fuse_neighbours(cells, hs, ws):
    """The 9 cell maps of the fuse: S2[p, l] = sum_m S[m(p), m(l)] (m = h_r after g_c)."""
    n = hs * ws
    maps = []
    for c in (0, 1, -1):
        gc = cells if c == 0 else _g_step(cells, c, hs, ws)
        for r in (0, 1, -1):
            maps.append(gc if r == 0 else _h_step(gc, r, n))
    return tf.stack(maps, axis=0)  # (9, ...)


# ------------------------------------------------------------------------------ fused scores
def _shift_sum(x, offsets, size, opaque_one):
    """``sum_o x[o : o + size]`` over row offsets ``o`` of a (N, 16) tensor, and its gradient
    (``sum_o`` of the upstream gradient shifted back), as AddNs of zero-copy views.

    Rows of the (N, 16) float32 view are 64-byte aligned, so TF's slices along dim 0 share the
    buffer instead of copying. ``opaque_one`` is any data-dependent int tensor >= 1.
    """

    def opaque(length):
        # Grappler's memory optimizer rewrites a >2-input AddN whose shape it can infer into a
        # temporary variable plus one AssignAdd per input (10 passes over the buffer instead
        # of 1). min(n, n + K) == n (K >= 1) but is data-dependent, so the shape stays unknown
        # (as long as no consumer reshapes the result to a static shape: it infers backwards).
        return tf.minimum(length, length + tf.cast(opaque_one, tf.int64))

    size = opaque(size)

    @tf.custom_gradient
    def shift_sum(x):
        def grad(upstream):
            n = opaque(tf.shape(x, out_type=tf.int64)[0])
            top = offsets[-1]  # the largest offset
            padded = tf.pad(tf.convert_to_tensor(upstream), tf.stack([[top, n - size], [0, 0]]))
            return tf.add_n([padded[top - o :][:n] for o in offsets])

        return tf.add_n([x[o:][:size] for o in offsets]), grad

    return shift_sum(x)


def _fused_scores(fg, bg, hs, ws, opaque_one):
    """softmax_scale * fused scores on the halo layout (see the module docstring).

    ``opaque_one`` is any data-dependent int tensor >= 1 (see ``_shift_sum``).

    Returns (scores, row_base, raw): scores (rows, W) where background patch l of sample b
    is row ``b * row_base + l`` and foreground cell p is column p (columns >= L: padding);
    raw (B, row_base, W), the unfused scores on the halo layout (for ``_fix_joints``).
    """
    n = hs * ws
    # Halo sequence, -1 = zero: [0, 0, L-ws..L-2, 0..L-1, 1..ws-1, 0]; cell c at ws + 1 + c.
    core = tf.concat(
        [[-1, -1], tf.range(n - ws, n - 1), tf.range(n), tf.range(1, ws), [-1]], axis=0
    )
    core_len = n + 2 * ws + 1
    rows_n = (core_len + 19 + 15) // 16 * 16  # multiple of 16, room for the view offsets
    width = core_len + 1 + (15 - (core_len + 1)) % 16  # width + 1 is a multiple of 16

    def lay_out(mat, length):
        seq = tf.concat([core, tf.fill([length - core_len], -1)], axis=0)
        src = tf.concat([mat, tf.zeros_like(mat[:, :1])], axis=1)  # row n = zeros
        return tf.gather(src, tf.where(seq < 0, n, seq), axis=1)

    raw = _matmul(lay_out(bg, rows_n), lay_out(fg, width), transpose_b=True)

    # The two passes (3-tap diagonal sums at offsets +-(width + 1), then +-ws * (width + 1))
    # compose into one sum of 9 shifted views of the flat buffer.
    flat = tf.reshape(raw, [-1, 16])
    step1 = tf.cast((width + 1) // 16, tf.int64)  # row-major neighbour
    step2 = tf.cast(ws, tf.int64) * step1  # column-major neighbour
    offsets = [i * step2 + j * step1 for i in range(3) for j in range(3)]
    # fused[e] is the fused score at raw flat position e + (ws + 1) * (width + 1): viewed as
    # rows of `width`, (q, j) is raw row ws + 1 + q, column ws + 1 + j. Only whole 16-row
    # groups of `width` are computed, so that the view is a plain reshape.
    width64 = tf.cast(width, tf.int64)
    room = tf.shape(flat, out_type=tf.int64)[0] - offsets[-1]
    # 16 * groups rows of `width` = groups * width rows of 16. Divided in int32 (TFLite has no
    # int64 FloorDiv): room, the buffer's rows of 16, is far below 2**31.
    groups = tf.cast(tf.cast(room, tf.int32) // width, tf.int64)
    fused = _shift_sum(flat, offsets, groups * width64, opaque_one)
    fused = tf.reshape(fused, tf.stack([-1, width64]))  # -1: see _shift_sum's `opaque`
    return fused, rows_n, raw


def _chunk_fused_scores(own, fg_ext, bg_wide, hs, ws, joint_cols, opaque_one):
    """Fused scores of the foreground cells ``own`` (c,) int32 against every background patch.

    The fuse sums, over its 9 neighbour maps m = h_dr after g_dc, the raw scores of row m(p)
    at column m(l). g_dc (the column-major neighbour) is a gather; h_dr (the row-major one) is
    a flat shift by dr. So the rows are laid out as runs of consecutive cells: the cells g_dc(p)
    of the chunk, sorted, each run with one more cell on either side. A row's h_dr neighbour is
    then the row dr further, and the three dr terms of one dc are diagonal shifts of the raw
    score buffer, summed as ONE AddN of 3 zero-copy views (as in ``_fused_scores``): 3 row
    gathers and column slices instead of 9, and the same rows as the 9 maps would need.

    Args:
      own: (c,) int32 foreground cells, c >= 1.
      fg_ext: (B, L + 1, D) foreground patches, row L zeros.
      bg_wide: (B, W, D) background kernels on the halo sequence (cell l at ws + 1 + l),
        padded with zero rows so that W + 1 is a multiple of 16.
      joint_cols: (9 nb,) int32 halo columns of the 9 neighbours of each of the nb joint
        cells (``_joint_cells``), 0 for none: their fused scores are summed exactly.
      opaque_one: any data-dependent int tensor >= 1 (see ``_shift_sum``).

    Returns:
      (B, c, L + nb): the fused scores of every background patch, then of the joint cells
      computed exactly (their columns among the first L read broken joints).
    """
    n = hs * ws
    batch = tf.shape(fg_ext)[0]
    width = tf.shape(bg_wide)[1]
    by_dc = [own if dc == 0 else _g_step(own, dc, hs, ws) for dc in (0, 1, -1)]  # -1: none
    every = tf.concat(by_dc, axis=0)
    # > 0 where a cell is a base: true whether a duplicate index overwrites or adds (TFLite).
    present = tf.tensor_scatter_nd_update(
        tf.zeros([n + 1], tf.int32),
        tf.expand_dims(tf.where(every < 0, n, every), 1),
        tf.ones_like(every),
    )
    bases = tf.cast(tf.where(present[:n] > 0)[:, 0], tf.int32)  # sorted, >= 1 (c >= 1)
    starts = tf.not_equal(bases, tf.concat([[-2], bases[:-1]], axis=0) + 1)
    runs = tf.cumsum(tf.cast(starts, tf.int32))  # 1-based run of each base
    row = tf.range(tf.size(bases)) + 2 * runs - 1  # one extra row before each run
    used = tf.size(bases) + 2 * runs[-1]  # rows of the runs with their extra rows
    zero = used + 1  # rows used .. used + 2 are zero: the rows of an invalid g_dc(p)
    # The views below read 3 rows of `width` from each row of `padded`; width + 1 is a
    # multiple of 16, so the flat buffer is whole rows of 16 when `rows` is.
    padded = (used + 1 + 15) // 16 * 16
    rows = padded + 16
    # Every base's cell, and the extra rows of each run: b - 1 before its first base, b + 1
    # after its last one (outside [0, L): a zero row). Scatters to one position each (TFLite's
    # scatter adds duplicates); the other bases' extra-row writes go to row `rows`, dropped.
    ends = tf.not_equal(tf.concat([bases[1:], [-2]], axis=0), bases + 1)
    at = tf.concat([tf.where(starts, row - 1, rows), tf.where(ends, row + 1, rows), row], 0)
    cells = tf.concat([bases - 1, bases + 1, bases], axis=0)
    cells = tf.where(cells >= n, -1, cells)
    row_cells = tf.tensor_scatter_nd_update(
        tf.fill(tf.expand_dims(rows + 1, 0), -1), tf.expand_dims(at, 1), cells
    )[:rows]
    row_of = tf.tensor_scatter_nd_update(
        tf.fill([n + 1], zero), tf.expand_dims(bases, 1), row
    )  # cell -> its row; L (none) -> the zero rows
    where_dc = [tf.gather(row_of, tf.where(g < 0, n, g)) for g in by_dc]
    where = tf.stack([w + dr for w in where_dc for dr in (0, 1, -1)], axis=0)  # (9, c)

    fg_rows = tf.gather(fg_ext, tf.where(row_cells < 0, n, row_cells), axis=1)  # (B, rows, D)
    raw = _matmul(fg_rows, bg_wide, transpose_b=True)  # (B, rows, W)
    # The joint columns first, so that the raw scores are freed before the terms' gathers.
    sub = tf.gather(raw, joint_cols, axis=2)  # (B, rows, 9 nb)
    sub = tf.reshape(sub, tf.stack([batch, rows, 9, -1]))
    fix = tf.add_n([tf.gather(sub[:, :, m], where[m], axis=1) for m in range(9)])  # (B, c, nb)
    # summed[e] = sum_dr raw[e + (dr + 1) (W + 1)]: viewed as rows of W, (r, j) is the sum
    # over dr of raw (r + 1 + dr, j + 1 + dr). Rows (B rows - 16) x W, whole rows of 16.
    flat = tf.reshape(raw, [-1, 16])
    step = tf.cast((width + 1) // 16, tf.int64)
    size = tf.cast((batch * rows - 16) // 16 * width, tf.int64)
    summed = _shift_sum(flat, [0 * step, step, 2 * step], size, opaque_one)
    summed = tf.reshape(summed, tf.stack([-1, tf.cast(width, tf.int64)]))
    sample = tf.expand_dims(tf.range(batch) * rows, 1)
    fused = None
    for dc, w in zip((0, 1, -1), where_dc, strict=True):
        with tf.control_dependencies([sub]):
            term = tf.gather(summed, sample + tf.expand_dims(w, 0) - 1)  # (B, c, W)
        term = tf.slice(term, tf.stack([0, 0, ws + dc * ws]), tf.stack([-1, -1, n]))
        fused = term if fused is None else fused + term  # (B, c, L)
    return tf.concat([fused, fix], axis=2)


def _joint_cells(hs, ws):
    """Cells (nb <= 10,) int32, unique, whose fused score reads a broken joint of the halo
    sequence (``_halo_sequence``) when taken as shifts of it."""
    n = hs * ws
    # The joints sit at sequence offsets -ws, 1-ws, -1, 0, n-1, n, n+ws-2, n+ws-1 from cell 0,
    # and a cell reads itself and +-ws.
    bad = tf.clip_by_value(
        tf.stack([0, 1, ws - 1, ws, n - ws - 1, n - ws, n - 2, n - 1, 1 - ws, n + ws - 2]),
        0,
        n - 1,
    )
    # Unique, or the scatters' gradients would count a duplicated cell twice.
    return tf.unique(bad).y


def _fix_joints(logits, raw, idx, hs, ws, is_pad):
    """Patch the rows/columns that read a broken joint of the halo layout, -inf padding rows.

    Args:
      logits: (B, K, W) fused scores of the kept patches (rows) for every foreground column.
      raw: (B, rows, W) unfused scores on the halo layout (from ``_fused_scores``).
      idx: (B, K) patch index of each kept row; is_pad: (B, K) rows that are only padding.

    Returns:
      (B, W, K): the corrected scores, transposed (foreground cell first).
    """
    n = hs * ws
    batch = tf.shape(raw)[0]
    width = tf.shape(logits)[2]
    bad = _joint_cells(hs, ws)
    nb = tf.size(bad)

    def pos(cells):  # raw row/column of a cell, invalid -> 0 (a zero row/column)
        return tf.where(cells < 0, 0, cells + ws + 1)

    bad_pos = pos(_fuse_neighbours(bad, hs, ws))  # (9, nb)

    # Background patches l in `bad` (rows, every column p): sum_m raw[m(l), m(p)].
    sub = tf.gather(raw, tf.reshape(bad_pos, [-1]), axis=1)  # (B, 9 nb, W)
    sub = tf.reshape(sub, tf.stack([batch, 9, nb, -1]))
    col_maps = pos(_fuse_neighbours(tf.range(n), hs, ws))  # (9, L)
    col_maps = tf.broadcast_to(col_maps[None], [batch, 9, n])
    row_fix = tf.reduce_sum(tf.gather(sub, col_maps, axis=3, batch_dims=2), axis=1)
    row_fix = tf.pad(row_fix, [[0, 0], [0, 0], [0, width - n]])  # (B, nb, W)
    table = tf.concat([row_fix, tf.fill(tf.stack([batch, 1, width]), -np.inf)], axis=1)
    # Which kept row gets which replacement: a joint cell's exact row, or -inf padding.
    # expand_dims, not x[:, :, None]: TFLite cannot convert a new-axis slice of a tensor with
    # two unknown dimensions.
    match = tf.equal(tf.expand_dims(idx, 2), bad[None, None, :])  # (B, K, nb)
    slot = tf.argmax(tf.cast(match, tf.int32), axis=-1, output_type=tf.int32)
    source = tf.where(is_pad, nb, tf.where(tf.reduce_any(match, -1), slot, -1))
    fix_at = tf.cast(tf.where(source >= 0), tf.int32)  # (m, 2) [b, k]
    updates = tf.gather_nd(table, tf.stack([fix_at[:, 0], tf.gather_nd(source, fix_at)], 1))
    logits = tf.tensor_scatter_nd_update(logits, fix_at, updates)
    logits = tf.transpose(logits, [0, 2, 1])  # (B, W, K)

    # Foreground cells p in `bad` (rows now, every kept patch l): sum_m raw[m(l), m(p)].
    sub = tf.gather(raw, tf.reshape(bad_pos, [-1]), axis=2)  # (B, rows, 9 nb)
    sub = tf.reshape(sub, tf.stack([batch, -1, 9, nb]))
    sub = tf.transpose(sub, [0, 2, 3, 1])  # (B, 9, nb, rows)
    row_maps = tf.transpose(pos(_fuse_neighbours(idx, hs, ws)), [1, 0, 2])  # (B, 9, K)
    col_fix = tf.reduce_sum(tf.gather(sub, row_maps, axis=3, batch_dims=2), axis=1)  # (B, nb, K)
    col_fix = tf.where(tf.expand_dims(is_pad, 1), -np.inf, col_fix)  # expand_dims: as above
    at = tf.stack(
        [tf.broadcast_to(tf.range(batch)[:, None], tf.stack([batch, nb])),
         tf.broadcast_to(bad[None, :], tf.stack([batch, nb]))],
        axis=-1,
    )  # fmt: skip
    return tf.tensor_scatter_nd_update(logits, at, col_fix)


# ------------------------------------------------------------------- softmax, paste, chunks
class _Common(NamedTuple):
    """What both score paths share (see ``ContextualAttention._attend``)."""

    fg: tf.Tensor  # (B, L, D) foreground patches
    bg: tf.Tensor  # (B, L, D) background kernels, normalised and times softmax_scale
    idx: tf.Tensor  # (B, K) background patch of each kept slot (valid first)
    is_pad: tf.Tensor  # (B, K) slots that are only padding (masked patches)
    count: tf.Tensor  # (B,) valid patches
    n_masked: tf.Tensor  # (B,) float32 masked patches
    patches: tf.Tensor  # (B, K, 4r^2 C) paste patches of the kept slots
    hs: tf.Tensor
    ws: tf.Tensor
    kk: tf.Tensor  # K


def _softmax_paste(c: _Common, logits, details: bool, rows=None):
    """Steps 7-9 for some foreground cells: logits (B, P, K) (padding slots -inf) ->
    cols (B, P', 4r^2 C) (the weighted paste patches, /4), argmax cell (B, P'), attention
    (B, P', K) or None; P' = ``rows`` first rows (all when None)."""
    # Softmax over ALL L patches where masked ones have logit 0 and weight 0.
    # (The patches are the last axis: TF reduces that axis much faster.)
    best = tf.reduce_max(logits, axis=-1, keepdims=True)  # (B, P, 1)
    has_masked = (c.n_masked > 0)[:, None, None]
    top = tf.stop_gradient(tf.where(has_masked, tf.maximum(best, 0.0), best))
    weights = tf.exp(logits - top)  # (B, P, K) unnormalised attention of valid patches
    masked_term = c.n_masked[:, None, None] * tf.exp(-tf.maximum(top, 0.0))
    denom = tf.reduce_sum(weights, axis=-1, keepdims=True) + masked_term  # (B, P, 1)

    # Step 8: argmax over the patches (first maximum, like tf.argmax on the original's A).
    arg = tf.argmax(logits, axis=-1, output_type=tf.int32)[:, :rows]  # (B, P') slot in idx
    cell = tf.gather(c.idx, arg, batch_dims=1)
    # The original's A is all zero when every patch is masked (or underflows): argmax 0.
    nonzero = tf.exp(best - top)[:, :rows, 0] / denom[:, :rows, 0] > 0.0
    cell = tf.where(nonzero & (c.count[:, None] > 0), cell, 0)

    # Step 9: paste with the valid patches only.
    cols = _matmul(weights, c.patches, rows=rows)  # (B, P', 4r^2 C)
    # Quirk: the original divides the transposed conv by 4 (each pixel gets 4 windows).
    cols = cols / (denom[:, :rows] * 4.0)
    attention = (weights / denom)[:, :rows] if details else None
    return cols, cell, attention


def single_pass_bytes(batch, hs, ws):
    """Estimated peak bytes of the single-pass attention: four (L + 2 ws)^2 float32 buffers
    per sample (scores on the halo layout, fused, kept rows, weights; measured: 2.1 GB at
    L = 12288 against 2.5 GB estimated). A Python float when the three sizes are Python ints
    (static shapes), else a float32 tensor."""
    side = hs * ws + 2 * ws + 20
    if all(isinstance(v, int) for v in (batch, hs, ws)):
        side = float(side)
    else:
        side, batch = tf.cast(side, tf.float32), tf.cast(batch, tf.float32)
    return 16.0 * batch * side * side


def _chunk_rows(budget, batch, hs, ws, kk, n_cells):
    """Foreground cells per chunk (int32 tensor in [1, max(n_cells, 1)]) for a byte budget.

    A chunk of c cells (a square tile) reads u ~ c + 6 sqrt(c) + 16 score rows of
    W = L + 2 ws + 2 columns; it holds the raw scores (u x W), one fuse term (c x W, then
    c x L), the running sum, the kept columns and the softmax weights (c x L at most, each):
    about 4 B W (8 c + 12 sqrt(c) + 32) bytes with some room.
    At least 16 cells, so that a tiny budget still makes progress.
    """
    n_all = tf.maximum(n_cells, 1)
    if budget is None:
        return n_all
    per_row = 4.0 * tf.cast(batch, tf.float32) * tf.cast(hs * ws + 2 * ws + 2, tf.float32)
    room = budget / per_row  # 8 c + 12 s + 32 <= room, s = sqrt(c)
    s = (-12.0 + tf.sqrt(tf.maximum(144.0 - 32.0 * (32.0 - room), 0.0))) / 16.0
    chunk = tf.cast(tf.floor(tf.maximum(s, 0.0) ** 2), tf.int32)
    return tf.minimum(tf.maximum(chunk, 16), n_all)


def _tile_order(cells, chunk, ws):
    """cells (N,) int32 sorted by square tiles of about ``chunk`` cells (row-major inside)."""
    t = tf.maximum(tf.cast(tf.floor(tf.sqrt(tf.cast(chunk, tf.float32))), tf.int32), 1)
    y, x = cells // ws, cells % ws
    per_row = (ws + t - 1) // t
    key = ((y // t) * per_row + x // t) * (t * t) + (y % t) * t + x % t
    return tf.gather(cells, tf.argsort(key))


def _cells_near_hole(mask_s, margin: int, hs, ws):
    """Cells (N,) int32, row-major, within ``margin`` cells (Chebyshev) of a hole cell of any
    mask of the batch; mask_s (Bm, hs, ws, 1) at the matching resolution."""
    hole = tf.reduce_max(mask_s, axis=0, keepdims=True)  # (1, hs, ws, 1)
    if margin > 0:
        hole = tf.nn.max_pool2d(hole, 2 * margin + 1, 1, "SAME")
    return tf.cast(tf.where(tf.reshape(hole, [-1]) > 0.5)[:, 0], tf.int32)


def _cells_reading(region, margin: int, rate: int, hs, ws):
    """Cells (N,) int32, row-major, whose 2r x 2r paste window covers a pixel of ``region``
    (of any sample), dilated by ``margin`` cells (Chebyshev); region (Bm, h, w, 1) at the
    inputs' resolution, > 0.5 = the output is read there."""
    region = tf.reduce_max(tf.cast(region, tf.float32), axis=0, keepdims=True)  # (1, h, w, 1)
    touched = tf.reduce_max(_paste_patches(region, rate, hs, ws), axis=-1, keepdims=True)
    if margin > 0:
        touched = tf.nn.max_pool2d(touched, 2 * margin + 1, 1, "SAME")
    return tf.cast(tf.where(tf.reshape(touched, [-1]) > 0.5)[:, 0], tf.int32)


def _partly_skipped(cells, rate: int, hs, ws):
    """(1, hs*rate, ws*rate, 1) bool: output pixels that a skipped cell's window covers."""
    n = hs * ws
    done = tf.scatter_nd(tf.expand_dims(cells, 1), tf.ones_like(cells, tf.float32), [n])
    skipped = tf.tile(tf.reshape(1.0 - done, [1, hs, ws, 1]), [1, 1, 1, 4 * rate * rate])
    return _overlap_add(skipped, rate, hs, ws, 1) > 0.0


# ----------------------------------------------------------------------------------- layer
@keras.saving.register_keras_serializable(package="deepfill_tf")
class ContextualAttention(keras.layers.Layer):
    """DeepFill's contextual attention: fill the hole with weighted background patches.

    Per sample: downscale f, b and the hole mask by 1/``rate`` (nearest neighbour,
    align_corners), score every foreground cell against every ``ksize`` x ``ksize`` background
    patch (normalised by max(norm, 1e-4)), fuse the scores (two flattened diagonal passes, see
    the module docstring), set the scores of patches touching the hole to 0, take
    ``softmax(softmax_scale * score) * mm`` and paste the 2r x 2r full-resolution background
    patches with these weights (transposed conv, stride r, divided by 4). No weights.

    Args:
      ksize: matching patch size (odd; 3 in DeepFill).
      stride: background patch stride; only 1 (what DeepFill uses; the original's fuse
        reshape fails for other strides).
      rate: downscaling factor of the matching (2 in DeepFill); paste patches are 2r x 2r.
      fuse_k: size of the fuse kernel; only 3 is implemented.
      softmax_scale: multiplies the (fused) scores before the softmax.
      fuse: apply the fuse step.
      flow_resize: "bilinear" (DeepFill v2) or "nearest" (v1): the x``rate`` resize of the
        flow picture.
      max_attention_mb: memory budget (MiB) of the score buffers. Inputs whose single pass
        is estimated above it run in chunks of foreground cells (same results up to float32
        reassociation, memory O(chunk x L), slower by about 2x). None: always one pass.
      foreground_margin: None (default) computes every foreground cell, as the original.
        An int computes only the cells within that many 1/``rate`` cells (Chebyshev) of a
        hole cell of the mask (of any mask of the batch), in chunks; the output pixels that
        a skipped cell's window touches are ``b``, skipped cells' argmax is the cell itself.
        Exact wherever the model only reads the attention output near the hole (DeepFill's
        decoder reads it within a few cells of each hole pixel); a hole that disappears in
        the downscaled mask is not seen at all (``region`` gives an exact set of cells).

    Call arguments:
      f: (B, h, w, C) float foreground features (any range); h, w multiples of ``rate``
        (multiples of 2 at 1/4 image size in DeepFill). Unknown h, w, B are fine.
      b: (B, h, w, C) background features, same shape as f (f = b in DeepFill).
      hole_mask: (1, h, w, 1) or (B, h, w, 1), 1 = hole, 0 = known (binary). Batch 1: one mask
        shared by the batch (the original always uses batch element 0); batch B: per sample.
      region: optional (1, h, w, 1) or (B, h, w, 1), 1 where the caller reads the output (any
        sample's). Given, only the cells whose paste window covers it (dilated by
        ``foreground_margin`` cells, if set) are computed, in chunks; every output pixel of
        the region is then the full computation's (up to float32 reassociation) and the
        pixels a skipped cell's window touches are ``b``. DeepFill's inference passes the
        hole's reach through its decoder (``DeepFillGenerator(..., hole_only=True)``), which
        makes the inpainted (composited) image exact at a fraction of the cost.

    Returns:
      ``(y, flow)``: y (B, h, w, C) the attention output; flow (B, h, w, 3) float32 colour
      picture of the attention offsets in [-1, 1] (visualisation only, no gradient).
    """

    def __init__(
        self,
        ksize: int = 3,
        stride: int = 1,
        rate: int = 2,
        fuse_k: int = 3,
        softmax_scale: float = 10.0,
        fuse: bool = True,
        flow_resize: str = "bilinear",
        max_attention_mb: float | None = DEFAULT_MAX_ATTENTION_MB,
        foreground_margin: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.ksize = int(ksize)
        self.stride = int(stride)
        self.rate = int(rate)
        self.fuse_k = int(fuse_k)
        self.softmax_scale = float(softmax_scale)
        self.fuse = bool(fuse)
        self.flow_resize = str(flow_resize)
        self.max_attention_mb = None if max_attention_mb is None else float(max_attention_mb)
        self.foreground_margin = None if foreground_margin is None else int(foreground_margin)
        if self.ksize < 1 or self.ksize % 2 == 0:
            raise ValueError(f"ksize must be a positive odd number, got {ksize}")
        if self.stride != 1:
            raise ValueError(f"only stride=1 is supported (DeepFill's setting), got {stride}")
        if self.rate < 1:
            raise ValueError(f"rate must be >= 1, got {rate}")
        if self.fuse and self.fuse_k != 3:
            raise ValueError(f"only fuse_k=3 is implemented (DeepFill's setting), got {fuse_k}")
        if self.flow_resize not in ("bilinear", "nearest"):
            raise ValueError(f"flow_resize must be 'bilinear' or 'nearest', got {flow_resize!r}")
        if self.max_attention_mb is not None and not self.max_attention_mb > 0:
            raise ValueError(f"max_attention_mb must be > 0 or None, got {max_attention_mb}")
        if self.foreground_margin is not None and self.foreground_margin < 0:
            raise ValueError(f"foreground_margin must be >= 0 or None, got {foreground_margin}")

    def build(self, f_shape, b_shape=None, hole_mask_shape=None, region_shape=None):
        # Argument names follow Keras 3's `<call arg>_shape` rule for multi-input builds.
        shapes = (("f", f_shape), ("b", b_shape), ("hole_mask", hole_mask_shape))
        for name, shape in shapes + (("region", region_shape),):
            if shape is not None and len(shape) != 4:
                raise ValueError(f"ContextualAttention: {name} must be NHWC (rank 4), got {shape}")
        for dim in f_shape[1:3]:
            if dim is not None and dim % self.rate:
                raise ValueError(
                    f"ContextualAttention: h and w must be multiples of rate={self.rate}, "
                    f"got f of shape {tuple(f_shape)}"
                )
        self.built = True

    def call(self, f, b, hole_mask, region=None):
        out = self._attend(f, b, hole_mask, region, details=False)
        return out["output"], out["flow"]

    def details(self, f, b, hole_mask, region=None) -> dict:
        """All intermediate tensors, for tests and visualisation (comparable to the oracles).

        Returns a dict: "mask_s8" (B|1, hs, ws, 1) float32; "mm" (B|1, 1, 1, L) float32;
        "attention" (B, hs, ws, L) float32 (row-major patch index); "argmax" (B, hs, ws) int32;
        "offsets" (B, hs, ws, 2) int32 (dy, dx); "flow" (B, h, w, 3); "output" (B, h, w, C).
        """
        return self._attend(
            tf.convert_to_tensor(f), tf.convert_to_tensor(b), tf.convert_to_tensor(hole_mask),
            None if region is None else tf.convert_to_tensor(region), details=True,
        )  # fmt: skip

    def compute_output_shape(self, f_shape, b_shape=None, hole_mask_shape=None, region_shape=None):
        f_shape = tuple(f_shape)
        return [f_shape, f_shape[:3] + (3,)]

    def get_config(self):
        config = super().get_config()
        config.update(
            ksize=self.ksize,
            stride=self.stride,
            rate=self.rate,
            fuse_k=self.fuse_k,
            softmax_scale=self.softmax_scale,
            fuse=self.fuse,
            flow_resize=self.flow_resize,
            max_attention_mb=self.max_attention_mb,
            foreground_margin=self.foreground_margin,
        )
        return config

    # -------------------------------------------------------------------------------- core
    def _attend(self, f, b, hole_mask, region, details: bool) -> dict:
        out_dtype = f.dtype
        f = tf.cast(f, tf.float32)
        b = tf.cast(b, tf.float32)
        hole_mask = tf.stop_gradient(tf.cast(hole_mask, tf.float32))
        r, k = self.rate, self.ksize
        shape = tf.shape(f)
        batch, h, w = shape[0], shape[1], shape[2]
        channels = f.shape[-1] if f.shape[-1] is not None else shape[3]
        hs, ws = h // r, w // r
        n = hs * ws  # L

        # Steps 1-2: paste patches of the full-resolution b, NN align-corners downscaling.
        paste = _paste_patches(b, r, hs, ws)  # (B, hs, ws, 4r^2 C)
        paste = tf.reshape(paste, [batch, n, 4 * r * r * channels])
        f_s = resize_nearest_align_corners(f, size=tf.stack([hs, ws]))
        b_s = resize_nearest_align_corners(b, size=tf.stack([hs, ws]))
        mask_s = resize_nearest_align_corners(hole_mask, size=tf.stack([hs, ws]))

        # Step 3: matching kernels, normalised by max(||patch||, 1e-4); the foreground is not.
        fg = tf.reshape(_patches(f_s, k, hs, ws), [batch, n, k * k * channels])
        bg = tf.reshape(_patches(b_s, k, hs, ws), [batch, n, k * k * channels])
        sq = tf.reduce_sum(tf.square(bg), axis=-1, keepdims=True)
        # max(sq, 1e-10) changes no forward value (sqrt(1e-10) < 1e-4) but keeps the gradient
        # of all-zero patches finite (the original's sqrt would give 0 * inf = NaN there).
        norm = tf.maximum(tf.sqrt(tf.maximum(sq, 1e-10)), 1e-4)
        bg = bg * (self.softmax_scale / norm)  # softmax_scale folded into the kernels

        # Step 4: mm = no hole pixel in the k x k zero-padded window (mean == 0).
        window = tf.add_n(_window_slices(mask_s, k, hs, ws))
        mm = tf.reshape(tf.cast(tf.equal(window, 0.0), tf.float32), [-1, n])  # (Bm, L)

        # Valid patches first (ascending), then masked ones; K = most valid patches in a sample.
        valid = mm > 0.5
        order = tf.argsort(tf.cast(~valid, tf.int32), axis=-1, stable=True)
        count = tf.reduce_sum(tf.cast(valid, tf.int32), axis=-1)  # (Bm,)
        kk = tf.maximum(tf.reduce_max(count), 1)
        mask_batch = tf.shape(mm)[0]
        idx = tf.broadcast_to(order[:, :kk], [batch, kk])  # (B, K) patch index per row
        count = tf.broadcast_to(count, [batch])
        n_masked = tf.cast(n - count, tf.float32)
        # Padding rows (k >= count: masked patches) must not count: logit -inf.
        is_pad = tf.range(kk)[None, :] >= count[:, None]  # (B, K)
        patches = tf.gather(paste, idx, batch_dims=1)  # (B, K, 4r^2 C)
        common = _Common(fg, bg, idx, is_pad, count, n_masked, patches, hs, ws, kk)

        # Steps 5-9 per foreground cell: attention cols (B, L, 4r^2 C) ready for the paste,
        # the argmax cell (B, L) and, for details, the attention (B, L, K).
        partial = region is not None or self.foreground_margin is not None
        if region is not None:
            # Only the cells whose output is read: always the chunked path.
            region = tf.stop_gradient(tf.cast(region, tf.float32))
            cells = _cells_reading(region, self.foreground_margin or 0, r, hs, ws)
            cols, cell, attention = self._chunked(common, cells, details)
        elif self.foreground_margin is not None:
            # Only the cells near the hole: always the chunked path.
            cells = _cells_near_hole(mask_s, self.foreground_margin, hs, ws)
            cols, cell, attention = self._chunked(common, cells, details)
        else:
            # Decided at trace time when the shapes are static (training): a tf.cond would put
            # both paths, and the chunked path's while loop, into the step's graph, where
            # grappler then fuses no convolution with its activation.
            budget = self._budget_bytes()
            b_static, h_static, w_static = f.shape[:3]
            sizes = (batch, hs, ws)
            if None not in (b_static, h_static, w_static):
                sizes = (b_static, h_static // r, w_static // r)
            fits = True if budget is None else single_pass_bytes(*sizes) <= budget
            static = tf.get_static_value(fits)
            if static is not None:
                path = self._single_pass if bool(static) else self._chunked_all
                cols, cell, attention = path(common, details)
            else:
                cols, cell, attention = tf.cond(
                    fits,
                    lambda: self._single_pass(common, details),
                    lambda: self._chunked_all(common, details),
                )

        cell = tf.reshape(cell, [batch, hs, ws])
        offsets = tf.stack(
            [cell // ws - tf.range(hs)[None, :, None], cell % ws - tf.range(ws)[None, None, :]],
            axis=-1,
        )

        # Step 9: the paste (transposed conv of the weighted patches).
        y = _overlap_add(cols, r, hs, ws, channels)
        y = tf.reshape(y, shape)
        if partial:
            # Pixels with a window of a skipped cell are not the attention output: keep b there
            # (the model only reads them far from the hole, see `foreground_margin`).
            y = tf.where(_partly_skipped(cells, r, hs, ws), b, y)
        y.set_shape(f.shape)

        # Step 11: flow picture (graph ops, no gradient).
        flow = flow_to_colour(tf.stop_gradient(offsets), self.flow_resize, rate=r)
        flow.set_shape(f.shape[:3].concatenate([3]))

        result = {"output": tf.cast(y, out_dtype), "flow": flow}
        if details:
            attention = tf.concat([attention, tf.zeros_like(attention[:, :, :1])], axis=-1)
            slot = tf.cumsum(tf.cast(valid, tf.int32), axis=-1) - 1  # row of each patch
            slot = tf.broadcast_to(tf.where(valid, slot, kk), [batch, n])
            attention = tf.gather(attention, slot, axis=2, batch_dims=1)  # (B, L_f, L)
            result.update(
                mask_s8=mask_s,
                mm=tf.reshape(mm, [mask_batch, 1, 1, n]),
                attention=tf.reshape(attention, [batch, hs, ws, n]),
                argmax=cell,
                offsets=offsets,
            )
        return result

    def _budget_bytes(self):
        if self.max_attention_mb is None:
            return None
        return float(self.max_attention_mb) * 2.0**20

    def _single_pass(self, c: _Common, details: bool):
        """All foreground cells at once (the fastest way while the L x L buffers fit)."""
        n = c.hs * c.ws
        batch = tf.shape(c.fg)[0]
        # Steps 5-6: scores (transposed: rows = background patch, columns = foreground cell).
        if self.fuse:
            scores, row_base, raw = _fused_scores(c.fg, c.bg, c.hs, c.ws, c.kk)
        else:
            full = _matmul(c.bg, c.fg, transpose_b=True)  # (B, L_b, L_f)
            scores, row_base = tf.reshape(full, [-1, n]), n
        rows = tf.range(batch)[:, None] * row_base + c.idx
        logits = tf.gather(scores, rows)  # (B, K, W >= L): only the valid patches' rows
        if self.fuse:
            logits = _fix_joints(logits, raw, c.idx, c.hs, c.ws, c.is_pad)  # (B, W, K)
        else:
            pad_rows = tf.where(c.is_pad)
            logits = tf.tensor_scatter_nd_update(
                logits, pad_rows, tf.fill(tf.stack([tf.shape(pad_rows)[0], n]), -np.inf)
            )
            logits = tf.transpose(logits, [0, 2, 1])  # (B, L, K)
        cols, cell, attention = _softmax_paste(c, logits, details, rows=n)
        if attention is None:
            attention = tf.zeros([0, 0, 0])
        return cols, cell, attention

    def _chunked_all(self, c: _Common, details: bool):
        return self._chunked(c, tf.range(c.hs * c.ws), details)

    def _chunked(self, c: _Common, cells, details: bool):
        """Foreground ``cells`` (N,) int32 in chunks of rows against all background patches.

        The chunk size follows from ``max_attention_mb`` (``_chunk_rows``). Chunks are taken
        in square tiles of the 1/rate grid, so that the rows a chunk's fuse reads (its cells
        and their 8 fuse neighbours) are few more than the chunk itself.
        Returns cols (B, L, 4r^2 C), cell (B, L) and attention (B, L, K) (empty unless
        ``details``); skipped cells get zero cols and their own index as argmax.
        """
        hs, ws = c.hs, c.ws
        n = hs * ws
        batch = tf.shape(c.fg)[0]
        n_cells = tf.size(cells)
        chunk = _chunk_rows(self._budget_bytes(), batch, hs, ws, c.kk, n_cells)
        cells = _tile_order(cells, chunk, ws)
        fg_ext = tf.concat([c.fg, tf.zeros_like(c.fg[:, :1])], axis=1)  # row L = zeros
        bg_ext = tf.concat([c.bg, tf.zeros_like(c.bg[:, :1])], axis=1)
        # Background patches on the halo sequence (module docstring), one more zero at the end:
        # a fuse term's column neighbour is then a shift by dc * ws + dr. Cell l at ws + 1 + l.
        # Padded with zeros so that its length + 1 is a multiple of 16 (_chunk_fused_scores).
        halo = tf.concat(
            [[-1, -1], tf.range(n - ws, n - 1), tf.range(n), tf.range(1, ws), [-1, -1]], axis=0
        )
        halo = tf.concat([halo, tf.fill([(15 - tf.size(halo)) % 16], -1)], axis=0)
        bg_halo = tf.gather(bg_ext, tf.where(halo < 0, n, halo), axis=1)  # (B, W, D)
        fuse = self.fuse
        # Columns where the shifts break (joints): exact from their true neighbours' columns,
        # appended after the L shifted ones; `pick` (B, K) reads each kept patch's column.
        pick = c.idx
        if fuse:
            bad = _joint_cells(hs, ws)
            bad_cols = _fuse_neighbours(bad, hs, ws)  # (9, nb)
            bad_cols = tf.reshape(tf.where(bad_cols < 0, 0, bad_cols + ws + 1), [-1])  # 0: zero
            match = tf.equal(tf.expand_dims(c.idx, 2), bad[None, None, :])  # (B, K, nb)
            slot = tf.argmax(tf.cast(match, tf.int32), axis=-1, output_type=tf.int32)
            pick = tf.where(tf.reduce_any(match, -1), n + slot, c.idx)
        n_chunks = (n_cells + chunk - 1) // chunk
        depth = c.patches.shape[-1] if c.patches.shape[-1] is not None else tf.shape(c.patches)[2]

        def body(i, cols_buf, cell_buf, att_buf):
            start = i * chunk
            size = tf.minimum(chunk, n_cells - start)
            own = tf.slice(cells, tf.reshape(start, [1]), tf.reshape(size, [1]))  # (c,)
            if fuse:
                # S2[p, l] = sum_m S[m(p), m(l)] over the 9 neighbour maps m; (B, c, L + nb).
                fused = _chunk_fused_scores(own, fg_ext, bg_halo, hs, ws, bad_cols, c.kk)
            else:
                rows = tf.gather(fg_ext, own, axis=1)  # (B, c, D)
                raw = _matmul(rows, bg_halo, transpose_b=True)  # (B, c, W)
                fused = tf.slice(raw, tf.stack([0, 0, ws + 1]), tf.stack([-1, -1, n]))
            logits = tf.gather(fused, pick, axis=2, batch_dims=1)  # (B, c, K)
            # expand_dims, not [:, None]: TFLite (see _fix_joints)
            logits = tf.where(tf.expand_dims(c.is_pad, 1), -np.inf, logits)
            cols, cell, attention = _softmax_paste(c, logits, details)
            at = tf.expand_dims(tf.range(start, start + size), 1)
            cols_buf = tf.tensor_scatter_nd_update(cols_buf, at, tf.transpose(cols, [1, 0, 2]))
            cell_buf = tf.tensor_scatter_nd_update(cell_buf, at, tf.transpose(cell))
            if details:
                att_buf = tf.tensor_scatter_nd_update(
                    att_buf, at, tf.transpose(attention, [1, 0, 2])
                )
            return i + 1, cols_buf, cell_buf, att_buf

        cols_buf = tf.zeros(tf.stack([n_cells, batch, depth]))
        cell_buf = tf.zeros(tf.stack([n_cells, batch]), tf.int32)
        att_buf = tf.zeros(tf.stack([n_cells, batch, c.kk]) if details else [0, 0, 0])
        _, cols_buf, cell_buf, att_buf = tf.while_loop(
            lambda i, *_: i < n_chunks,
            body,
            [tf.constant(0), cols_buf, cell_buf, att_buf],
            parallel_iterations=1,
        )
        # Back to cell order; skipped cells read the extra zero row (cell: their own index).
        slot = tf.tensor_scatter_nd_update(
            tf.fill([n], n_cells), tf.expand_dims(cells, 1), tf.range(n_cells)
        )
        # The extra zero row is built, not sliced: with no cell to compute the buffers are empty.
        zero_row = tf.zeros(tf.stack([1, batch, depth]))
        cols = tf.gather(tf.concat([cols_buf, zero_row], 0), slot)
        cols = tf.transpose(cols, [1, 0, 2])  # (B, L, 4r^2 C)
        own = tf.broadcast_to(tf.range(n)[None], tf.stack([batch, n]))
        cell = tf.transpose(cell_buf)  # (B, N)
        cell = tf.gather(tf.concat([cell, tf.zeros([batch, 1], tf.int32)], 1), slot, axis=1)
        cell = tf.where(tf.equal(slot, n_cells)[None], own, cell)
        if details:
            zero_row = tf.zeros(tf.stack([1, batch, c.kk]))
            attention = tf.gather(tf.concat([att_buf, zero_row], 0), slot)
            attention = tf.transpose(attention, [1, 0, 2])  # (B, L, K)
        else:
            attention = tf.zeros([0, 0, 0])
        return cols, cell, attention
