"""The models a ``deepfill-tf ui`` server has loaded, each behind a one-at-a-time gate.

Every model is loaded once at start through the inference facade (``load_inpainter``), so
its traced function is reused by every request. Requests for one model run one at a time; at
most ``queue_size`` more may wait, and a request beyond that is refused at once with
``BusyError`` (the API answers 503) instead of piling up threads and memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deepfill_tf.errors import DeepfillError

# Extra inputs (besides image and mask) a family takes, as API form fields / page layers.
GUIDE = "guide"  # guided DeepFill v2: edge image, white = edge
SKETCH = "sketch"  # SC-FEGAN: white free-hand strokes on black
COLOR = "color"  # SC-FEGAN: colour strokes on black


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
    """

    name: str
    family: str
    label: str
    extras: tuple[str, ...]
    required: tuple[str, ...]
    run: Callable[..., np.ndarray]
    queue_size: int = 2
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

    def inpaint(self, image: np.ndarray, hole_mask: np.ndarray, **extras) -> np.ndarray:
        """Run the model when it is free; raise ``BusyError`` at once if the queue is full."""
        with self._count_lock:
            if self._pending > self.queue_size:
                raise BusyError(
                    f"model {self.name!r} is busy ({self._pending} requests running or"
                    " waiting); try again in a moment"
                )
            self._pending += 1
        try:
            with self._lock:
                return self.run(image, hole_mask, **extras)
        finally:
            with self._count_lock:
                self._pending -= 1


def model_name(checkpoint: str, taken: set[str]) -> str:
    """A short unique name for a checkpoint: its folder (or prefix) name, ``-2``... if taken."""
    path = os.path.normpath(os.fspath(checkpoint))
    base = os.path.basename(path)
    if not os.path.isdir(path) and os.path.basename(os.path.dirname(path)):
        base = os.path.basename(os.path.dirname(path))  # path/snap-0 -> path's folder name
    base = base or "model"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    return name


def load_model(checkpoint: str, name: str, *, queue_size: int = 2) -> Model:
    """Load one checkpoint (any family that inpaints) as a ``Model``.

    Raises:
      CheckpointError: as ``deepfill-tf inpaint`` for an unreadable or unknown checkpoint.
    """
    try:
        from deepfill_tf.inference import load_inpainter
    except ImportError:  # before the family facade: DeepFill v1 / v2 through Inpainter
        load_inpainter = None
    if load_inpainter is not None:
        inpainter = load_inpainter(checkpoint)
        family = inpainter.family
        extras, required = _family_extras(family.name, inpainter)
        label = getattr(inpainter, "label", family.label)
        return Model(name, family.name, label, extras, required, inpainter, queue_size)

    from deepfill_tf.inference.inpainter import Inpainter
    from deepfill_tf.inference.loading import load_generator

    generator, spec = load_generator(checkpoint)
    if spec.name == "scfegan":
        from deepfill_tf.errors import CheckpointError

        raise CheckpointError(
            f"{checkpoint}: SC-FEGAN checkpoints need the inference facade (load_inpainter)"
        )
    inpainter = Inpainter(generator)
    extras = (GUIDE,) if spec.guided else ()
    return Model(name, spec.name, spec.label, extras, extras, inpainter, queue_size)


def _family_extras(family: str, inpainter) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extras, required extras) of a loaded inpainter: its ``inputs`` (name, required)."""
    inputs = getattr(inpainter, "inputs", None)
    if inputs is not None:
        names = tuple(o.name for o in inputs)
        return names, tuple(o.name for o in inputs if o.required)
    if family == "scfegan":
        return (SKETCH, COLOR), ()
    if getattr(inpainter, "guided", False):
        return (GUIDE,), (GUIDE,)
    return (), ()


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
