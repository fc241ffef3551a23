"""What the generic training loop asks of a family's training task.

A task (built by ``Family.make_task(config)``) declares:

* ``networks``: ``{checkpoint key: Keras model}``, e.g. ``{"generator": g}`` or
  ``{"generator": g, "discriminator": d}``; the run checkpoint stores each model's variables
  under its TF1-style names (``deepfill_tf.convert.tf1_variable_table``);
* ``objectives()``: ``{name: Objective}``, each a loss function and the variables it trains;
* ``phases()``: the schedule: a list of ``Phase`` (which objectives run how many times per
  iteration, until which global step, at which learning rate);
* ``sample_random(seed)``: the random parts of one step (masks, ...), stateless from a
  shape-[2] int64 seed so every replica draws the same;
* ``visuals(batch, random)``: an image grid for TensorBoard, (B, H, W', 3), shown through
  ``display(grid)`` as RGB in [0, 1];
* optionally ``make_optimizer()``, ``make_dataset(seed)``, ``begin_phase(phase)`` (e.g. to
  freeze batch norm) and ``static_views()``.

``AdversarialTask`` fills in ``networks``/``objectives``/``phases`` for the common case of a
generator and a discriminator trained alternately (``d_steps`` D steps, then one G step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from deepfill_tf.config import TrainConfig
from deepfill_tf.data import make_dataset
from deepfill_tf.errors import ConfigError

# A batch of images (B, H, W, 3), or a tuple such as (images, edges).
Batch = tf.Tensor | tuple[tf.Tensor, ...]
# (loss scalar, {metric name: scalar})
LossResult = tuple[tf.Tensor, dict[str, tf.Tensor]]
LossFn = Callable[[Batch, dict], LossResult]


@dataclasses.dataclass(frozen=True)
class Objective:
    """One kind of optimisation step: ``loss(batch, random) -> (loss, metrics)`` minimised over
    ``variables()`` (a callable, since freezing layers changes the list)."""

    loss: LossFn
    variables: Callable[[], list]


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with a fixed step recipe.

    Args:
        name: shown in the log and in TensorBoard (``train/phase``).
        steps: ``((objective, times), ...)`` run in this order in every iteration; an
            iteration advances the global step by one.
        end: the global step at which the phase ends (exclusive); ``None`` = until max_iters.
        learning_rate: overrides the config's ``lr`` during the phase.
    """

    name: str
    steps: tuple[tuple[str, int], ...]
    end: int | None = None
    learning_rate: float | None = None

    @property
    def steps_per_iteration(self) -> int:
        return sum(times for _, times in self.steps)


def phase_at(phases: Sequence[Phase], step: int) -> Phase:
    """The phase that global step ``step`` (0-based count of finished iterations) runs in."""
    for phase in phases:
        if phase.end is None or step < phase.end:
            return phase
    return phases[-1]


def batches_before(phases: Sequence[Phase], step: int) -> int:
    """Batches the loop reads in global steps ``0 .. step - 1`` (one per objective step)."""
    total, start = 0, 0
    for phase in phases:
        end = step if phase.end is None else min(step, phase.end)
        if end > start:
            total += (end - start) * phase.steps_per_iteration
            start = end
        if start >= step:
            break
    if start < step:  # past the last phase's end: it goes on
        total += (step - start) * phases[-1].steps_per_iteration
    return total


class Task:
    """Base class of training tasks; see the module docstring for the contract."""

    # Images of the training stream already read (set by the loop before ``make_dataset`` on a
    # resume): the base ``make_dataset`` skips them, so a resumed run sees the images an
    # uninterrupted one would, in the same order, with the same crops.
    data_position: int = 0

    networks: dict[str, keras.Model]

    def __init__(self, config: TrainConfig):
        self.config = config

    def objectives(self) -> dict[str, Objective]:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def sample_random(self, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """Random parts of a step; default none."""
        return {}

    def visuals(self, batch: Batch, random: dict[str, tf.Tensor]) -> tf.Tensor | None:
        """(B, H, W', 3) image grid for TensorBoard (see ``display``), or None."""
        return None

    def display(self, grid: tf.Tensor) -> tf.Tensor:
        """``visuals``' grid as RGB in [0, 1] (default: already is)."""
        return grid

    def begin_phase(self, phase: Phase) -> None:
        """Called (eagerly) when training enters ``phase``, before its first step."""

    def static_views(self) -> object | None:
        """An object with ``grids() -> (N, H, W', 3) RGB [0, 1]`` for ``val``, or None."""
        return None

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        """Adam at the config's ``lr`` (families override with their published optimiser)."""
        return keras.optimizers.Adam(learning_rate=self.config.lr, name="adam")

    def make_dataset(self, seed: int) -> tf.data.Dataset:
        """Global batches of training images from ``config.train_data`` (repeated)."""
        c = self.config
        if not c.train_data:
            raise ConfigError("key 'train_data' is empty: give a .flist, a folder or tfds:NAME")
        return make_dataset(
            c.train_data,
            batch_size=c.batch_size,
            img_shape=c.img_shapes,
            random_crop=c.random_crop,
            random_flip=c.random_flip,
            random_channel_shuffle=c.random_channel_shuffle,
            shuffle=True,
            repeat=True,
            seed=seed,
            skip=self.data_position,
            **self.dataset_options(),
        )

    def dataset_options(self) -> dict:
        """Extra keyword arguments of ``deepfill_tf.data.make_dataset`` (e.g. guide edges)."""
        return {}


class AdversarialTask(Task):
    """A generator and a discriminator trained alternately: per iteration ``d_steps``
    discriminator steps (``d_loss``), then one generator step (``g_loss``).

    Subclasses set ``generator``, ``discriminator`` and ``d_steps`` and define ``d_loss``
    and ``g_loss``; with ``d_steps == 0`` only the generator trains.
    """

    generator: keras.Model
    discriminator: keras.Model
    d_steps: int = 1

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    @property
    def g_variables(self) -> list:
        """Trainable generator variables."""
        return list(self.generator.trainable_variables)

    @property
    def d_variables(self) -> list:
        """Trainable discriminator variables (e.g. spectral-norm ``u`` is state, not trained)."""
        return list(self.discriminator.trainable_variables)

    def objectives(self) -> dict[str, Objective]:
        return {
            "discriminator": Objective(self.d_loss, lambda: self.d_variables),
            "generator": Objective(self.g_loss, lambda: self.g_variables),
        }

    def phases(self) -> list[Phase]:
        steps = (("generator", 1),)
        if int(self.d_steps) > 0:
            steps = (("discriminator", int(self.d_steps)), *steps)
        return [Phase("train", steps)]

    def d_loss(self, batch: Batch, random: dict[str, tf.Tensor]) -> LossResult:
        raise NotImplementedError

    def g_loss(self, batch: Batch, random: dict[str, tf.Tensor]) -> LossResult:
        raise NotImplementedError
