"""Seeing a run train: TensorBoard summaries, a progress bar / log lines, static views.

* ``Summaries``: scalars (``losses/<name>``, ``train/steps_per_sec``, ``train/images_per_sec``)
  and image grids written with ``tf.summary`` into ``log_dir`` (chief only). Grids arrive as
  BGR in [-1, 1] like every tensor of this package and are shown as RGB.
* ``Progress``: on an interactive terminal a one-line bar with step rate and ETA, redrawn
  every step; otherwise (logs, CI, pipes) a plain line every ``log_every`` steps.
* ``StaticViews``: the original's ``val`` option: the first ``static_view_size`` images of
  ``val_data`` with fixed masks, inpainted by the current generator every ``val_psteps``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from deepfill_tf.ops.resize import resize_bilinear_align_corners, resize_nearest_align_corners


def bgr_to_display(grid: tf.Tensor) -> tf.Tensor:
    """(B, H, W, 3) BGR in [-1, 1] -> RGB float32 in [0, 1] for ``tf.summary.image``."""
    grid = tf.convert_to_tensor(grid, tf.float32)
    return tf.clip_by_value((grid[..., ::-1] + 1.0) / 2.0, 0.0, 1.0)


class Summaries:
    """TensorBoard writer of one run; every method is a no-op when ``enabled`` is False.

    Args:
        log_dir: folder of the event files (``tensorboard --logdir`` it or its parent).
        enabled: False in non-chief workers.
    """

    def __init__(self, log_dir: str, enabled: bool = True):
        self.writer = tf.summary.create_file_writer(log_dir) if enabled else None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Write ``{name: value}`` at ``step`` (names used as given, e.g. ``losses/g_loss``)."""
        if self.writer is None:
            return
        with self.writer.as_default(step=int(step)):
            for name, value in values.items():
                tf.summary.scalar(name, float(value))

    def images(self, step: int, name: str, grid, max_outputs: int) -> None:
        """Write an image grid (B, H, W, 3) BGR in [-1, 1]."""
        if self.writer is None or max_outputs < 1:
            return
        with self.writer.as_default(step=int(step)):
            tf.summary.image(name, bgr_to_display(grid), max_outputs=int(max_outputs))

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def format_duration(seconds: float) -> str:
    """``1:02:03`` / ``02:03`` for a duration in seconds (``--:--`` if unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Step rate, images/s and ETA, as a bar on a terminal or as periodic plain lines.

    Args:
        start_step: global step the run starts from; max_iters: final step.
        batch_size: global batch (for images/s).
        interactive: draw a bar (default: ``stream.isatty()``).
        log_every: plain mode: one line every this many steps (and at the last step).
        stream: where to write (stdout).
        enabled: False in non-chief workers.

    The rate excludes the first step of the run (tracing and compilation).
    """

    def __init__(
        self,
        start_step: int,
        max_iters: int,
        batch_size: int,
        *,
        interactive: bool | None = None,
        log_every: int = 100,
        stream=None,
        enabled: bool = True,
    ):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.start_step = int(start_step)
        self.max_iters = int(max_iters)
        self.batch_size = int(batch_size)
        self.log_every = max(1, int(log_every))
        self.enabled = enabled
        self._t0: float | None = None  # time at the end of the first step
        self._s0 = self.start_step
        self._drawn = False

    def rate(self, step: int) -> float:
        """Steps per second since the first step of this run finished (nan before)."""
        if self._t0 is None or step <= self._s0:
            return float("nan")
        return (step - self._s0) / max(time.perf_counter() - self._t0, 1e-9)

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        """Report that ``step`` finished with ``metrics`` (scalar floats)."""
        if self._t0 is None:
            self._t0, self._s0 = time.perf_counter(), step
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write("\r" + self.line(step, metrics, bar=True) + "\x1b[K")
            self.stream.flush()
            self._drawn = True
        elif step % self.log_every == 0 or step >= self.max_iters or step == self.start_step + 1:
            self.stream.write(self.line(step, metrics) + "\n")
            self.stream.flush()

    def line(self, step: int, metrics: Mapping[str, float], bar: bool = False) -> str:
        """The progress text for ``step``."""
        total = max(self.max_iters, 1)
        rate = self.rate(step)
        eta = (self.max_iters - step) / rate if rate > 0 else float("nan")
        speed = (
            f"{rate:.2f} steps/s {rate * self.batch_size:.1f} img/s"
            if math.isfinite(rate)
            else "-- steps/s"
        )
        losses = " ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))
        if bar:
            width = 20
            filled = int(width * min(step, total) / total)
            return (
                f"[{'#' * filled}{'.' * (width - filled)}] {step}/{self.max_iters} {speed}"
                f" ETA {format_duration(eta)} | {losses}"
            )
        return (
            f"step {step}/{self.max_iters} ({100.0 * step / total:.1f}%) {speed}"
            f" ETA {format_duration(eta)} | {losses}"
        )

    def close(self) -> None:
        """End the bar's line (so later messages start on a new line)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def static_view_mask(config) -> np.ndarray:
    """The fixed mask of the static views: float32 (1, H, W, 1), 1 = hole.

    The original's ``build_static_infer_graph`` uses the box (top ``height // 2``, left
    ``width // 2``, ``height`` x ``width``); it still shrinks it by random deltas and, in v2,
    ORs a freshly drawn brush mask at every evaluation. Here both are drawn once (no shrink,
    brush from ``config.seed``) so the views are comparable from one summary to the next.
    """
    from deepfill_tf.masks import brush_stroke_mask_tf

    h, w = int(config.img_shapes[0]), int(config.img_shapes[1])
    mask = np.zeros((1, h, w, 1), np.float32)
    top, left = config.height // 2, config.width // 2
    mask[0, top : top + config.height, left : left + config.width, 0] = 1.0
    if config.model == "deepfill_v2":
        seed = tf.constant([config.seed, 0], tf.int64)
        mask = np.maximum(mask, brush_stroke_mask_tf(seed, h, w).numpy())
    return mask


class StaticViews:
    """Fixed validation images + fixed masks, inpainted for the ``static_view`` summaries.

    Args:
        config: ``TrainConfig`` (``val_data``, ``static_view_size``, ``img_shapes``,
            ``guided``, ``random_crop``, ``batch_size``).
        generator: the (distributed) generator; called outside ``strategy.run``.
    """

    def __init__(self, config, generator):
        from deepfill_tf.data import make_dataset

        self.config = config
        self.generator = generator
        n = int(config.static_view_size)
        ds = make_dataset(
            config.val_data,
            batch_size=1,
            img_shape=config.img_shapes,
            random_crop=config.random_crop,
            guided=config.guided,
            edge_threshold=config.edge_threshold,
            shuffle=False,
            repeat=False,
            seed=config.seed,
            drop_remainder=False,
        ).take(n)
        images, edges = [], []
        for element in ds:
            if config.guided:
                images.append(element[0].numpy())
                edges.append(element[1].numpy())
            else:
                images.append(element.numpy())
        self.images = np.concatenate(images) if images else np.zeros((0, 1, 1, 3), np.float32)
        self.edges = np.concatenate(edges) if edges else None
        self.mask = static_view_mask(config)
        self._flow_resize = (
            resize_bilinear_align_corners
            if config.model == "deepfill_v2"
            else resize_nearest_align_corners
        )
        self._infer = tf.function(self._grid)

    def __len__(self) -> int:
        return len(self.images)

    def _grid(self, images, edges, mask):
        gen_in = images if edges is None else tf.concat([images, edges], axis=-1)
        x1, x2, flow = self.generator(gen_in, mask)
        predicted = x1 if getattr(self.config, "pretrain_coarse_network", False) else x2
        incomplete = images * (1.0 - mask)
        complete = predicted * mask + incomplete * (1.0 - mask)
        shown = incomplete if edges is None else incomplete + edges * mask
        flow = self._flow_resize(flow, size=tuple(images.shape[1:3]))
        return tf.concat([images, shown, complete, tf.cast(flow, images.dtype)], axis=2)

    def grids(self) -> np.ndarray:
        """(N, H, 4W, 3) BGR in [-1, 1]: raw | incomplete | completed | attention flow."""
        chunk = max(1, int(self.config.batch_size))
        out = []
        for start in range(0, len(self.images), chunk):
            images = tf.constant(self.images[start : start + chunk])
            edges = None if self.edges is None else tf.constant(self.edges[start : start + chunk])
            out.append(self._infer(images, edges, tf.constant(self.mask)).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1, 4, 3), np.float32)
