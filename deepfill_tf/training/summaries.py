"""Seeing a run train: TensorBoard summaries, a progress bar / log lines, static views.

* ``Summaries``: scalars (``losses/<name>``, ``train/steps_per_sec``, ``train/images_per_sec``)
  and image grids written with ``tf.summary`` into ``log_dir`` (chief only). Grids arrive as
  RGB in [0, 1] (``Task.display`` converts a family's value space).
* ``Progress``: on an interactive terminal a one-line bar with step rate and ETA, redrawn
  every step; otherwise (logs, CI, pipes) a plain line every ``log_every`` steps.

A family's static validation views (``Task.static_views``) live with the family.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping

import tensorflow as tf


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

    def images(self, step: int, name: str, grid: tf.Tensor, max_outputs: int) -> None:
        """Write an image grid (B, H, W, 3) RGB in [0, 1] (clipped)."""
        if self.writer is None or max_outputs < 1:
            return
        grid = tf.clip_by_value(tf.convert_to_tensor(grid, tf.float32), 0.0, 1.0)
        with self.writer.as_default(step=int(step)):
            tf.summary.image(name, grid, max_outputs=int(max_outputs))

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
