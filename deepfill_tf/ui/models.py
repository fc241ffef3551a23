"""The models a ``deepfill-tf ui`` server has loaded, each behind a one-at-a-time gate.

Every model is loaded once at start through the inference facade (``load_inpainter``), so
every registered family that inpaints can be served and its traced function is reused by
every request. Requests for one model run one at a time; at
most ``queue_size`` more may wait, and a request beyond that is refused at once with
``BusyError`` (the API answers 503) instead of piling up threads and memory.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deepfill_tf.errors import DeepfillError

# Extra inputs (besides image and mask) the page has a layer for; a model lists the ones it
# takes (its family's ``inputs``), and the API accepts exactly those as form fields.
GUIDE = "guide"  # edge image, white = edge (guided DeepFill v2)
SKETCH = "sketch"  # white free-hand strokes on black (SC-FEGAN)
COLOR = "color"  # colour strokes on black (SC-FEGAN)


class BusyError(DeepfillError):
    """The model is running and its queue is full; try again shortly."""


@dataclass
class Model:
    """One loaded model.

    Args:
      name: the name clients choose it by (``model`` form field).
      family: family id, e.g. ``"deepfill_v2"``.
      label: human name, e.g. ``"DeepFill v2 (guided)"``.
      extras: names of the extra inputs it takes (``GUIDE``, ``SKETCH``, ``COLOR``).
      required: the extras it cannot run without.
      run: ``run(image, hole_mask, **extras) -> image``: image (H, W, 3) uint8 RGB, hole_mask
        (H, W) float32 1 = hole, extras (H, W, 3) uint8 RGB; returns (H, W, 3) uint8 RGB.
      queue_size: how many requests may wait while one runs.
      extras_help: one line per extra input, for the API description.
      trained_hole: width (px) of the largest training hole, for the large-photo notes.
    """

    name: str
    family: str
    label: str
    extras: tuple[str, ...]
    required: tuple[str, ...]
    run: Callable[..., np.ndarray]
    queue_size: int = 2
    extras_help: dict[str, str] = field(default_factory=dict)
    trained_hole: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _count_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pending: int = 0  # running + waiting

    @property
    def pending(self) -> int:
        """Requests running or waiting on this model."""
        return self._pending

    def describe(self) -> dict:
        """The JSON description ``GET /api/v1/models`` lists."""
        return {
            "name": self.name,
            "family": self.family,
            "label": self.label,
            "extras": list(self.extras),
            "required_extras": list(self.required),
            "busy": self._pending > 0,
        }

    def inpaint(
        self, image: np.ndarray, hole_mask: np.ndarray, hd=None, **extras
    ) -> tuple[np.ndarray, list[str]]:
        """Run the model when it is free; raise ``BusyError`` at once if the queue is full.

        As ``deepfill-tf inpaint``: the inputs are checked, then the image runs through the
        large-photo strategy ``hd`` (``HDOptions``; default: the CLI's, i.e. ``crop`` above
        1024 px), which calls the model once or per crop.

        Returns:
          (result (H, W, 3) uint8 RGB, notes: one-line messages for the user).
        """
        # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
        from deepfill_tf.inference.hd_strategy import BatchedInpainter, HDOptions, inpaint_hd

        hd = hd or HDOptions()
        if self.trained_hole:
            hd = dataclasses.replace(hd, trained_hole=self.trained_hole)
        with self._count_lock:
            if self._pending > self.queue_size:
                raise BusyError(
                    f"model {self.name!r} is busy ({self._pending} requests running or"
                    " waiting); try again in a moment"
                )
            self._pending += 1
        try:
            with self._lock:
                check = getattr(self.run, "check", None)
                if check is not None:  # sizes and inputs, before any crop
                    check(image, hole_mask, extras)
                done = inpaint_hd(BatchedInpainter(self.run), image, hole_mask, hd, **extras)
                return done.image, done.notes
        finally:
            with self._count_lock:
                self._pending -= 1


def model_name(checkpoint: str, taken: set[str]) -> str:
    """A short unique name for a checkpoint: its folder, file stem or prefix's folder name,
    with ``-2``, ``-3``... when taken."""
    path = os.path.normpath(os.fspath(checkpoint))
    base = os.path.basename(path)
    if os.path.isfile(path):
        base = os.path.splitext(base)[0]  # a one-file checkpoint: places2.t7 -> places2
    elif not os.path.isdir(path) and os.path.basename(os.path.dirname(path)):
        base = os.path.basename(os.path.dirname(path))  # TF1 prefix path/snap-0 -> folder name
    base = base or "model"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    return name


def load_model(checkpoint: str, name: str, *, queue_size: int = 2) -> Model:
    """Load one checkpoint of any registered family through ``load_inpainter``.

    The family's load-time options keep their defaults (as ``deepfill-tf inpaint`` without
    flags, e.g. SC-FEGAN's noise seed 0), so the pixels are the CLI's.

    Raises:
      CheckpointError: as ``deepfill-tf inpaint`` for an unreadable or unknown checkpoint.
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.inference import load_inpainter

    inpainter = load_inpainter(checkpoint)
    inputs = tuple(inpainter.inputs)  # the extra image inputs (registry ``Option``s)
    return Model(
        name,
        inpainter.family.name,
        inpainter.label,
        tuple(o.name for o in inputs),
        tuple(o.name for o in inputs if o.required),
        inpainter,
        queue_size,
        extras_help={o.name: o.help for o in inputs},
        trained_hole=getattr(inpainter.family, "trained_hole_px", None),
    )


def load_models(checkpoints: list[str], *, queue_size: int = 2, log=print) -> list[Model]:
    """Load every checkpoint once, naming each after its folder."""
    models: list[Model] = []
    for checkpoint in checkpoints:
        name = model_name(checkpoint, {m.name for m in models})
        model = load_model(checkpoint, name, queue_size=queue_size)
        log(f"loaded {name}: {model.label} from {checkpoint}")
        models.append(model)
    return models


def warm_up(model: Model, size: int = 128) -> None:
    """Trace the model's function once on a small blank image so the first request is fast."""
    image = np.zeros((size, size, 3), np.uint8)
    mask = np.zeros((size, size), np.float32)
    mask[size // 4 : size // 2, size // 4 : size // 2] = 1
    extras = {name: np.zeros_like(image) for name in model.required}
    model.inpaint(image, mask, **extras)
