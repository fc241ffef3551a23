"""The generic training loop: strategy, phases of objectives, checkpoints, summaries.

One iteration runs the current phase's recipe (``deepfill_tf.training.task.Phase``): e.g.
DeepFill v1's 5 discriminator steps then one generator step, GLCIC's completion-only,
discriminator-only and joint phases, or a single reconstruction step for a family without a
discriminator. Each step draws its own batch and its own random parts (stateless seed
``[seed, counter]``); the global step counts iterations, so ``max_iters`` and ``train_spe``
mean what they meant in the originals, and a resumed run lands in the phase of its step.

One optimiser (``Task.make_optimizer``) is built on the variables of every objective and
``apply``-ed to each subset (Keras 3 allows a subset of the variables it was built with); for
DeepFill this is the original's single shared Adam, whose bias-correction counter advances on
D and G steps alike (tests/test_training_loop.py checks it).

Distribution: every replica gets ``batch_size / replicas`` images and the same random parts;
each replica's loss is the mean over its images divided by the number of replicas and the
optimiser sums the gradients over replicas, so the update is that of the mean loss over the
global batch. (The original DeepFill's ``batch_size`` was per GPU: to reproduce an N-GPU run
set ``batch_size`` to N times its value.)
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
from collections.abc import Callable

import keras
import tensorflow as tf

from deepfill_tf.config import TrainConfig, load_config, save_config
from deepfill_tf.convert.run_checkpoint import CONFIG_NAME
from deepfill_tf.errors import ConfigError, DeepfillError, InputError
from deepfill_tf.ops.gating import native_gating
from deepfill_tf.registry import get_family
from deepfill_tf.training.checkpointing import RunCheckpoint, initialise_from, sorted_variables
from deepfill_tf.training.strategy import describe_strategy, is_chief, worker_count, worker_index
from deepfill_tf.training.summaries import Progress, Summaries
from deepfill_tf.training.task import Phase, Task, batches_before, phase_at

# A (distributed) batch of images, or (images, edges) for guided DeepFill v2.
Batch = tf.Tensor | tuple[tf.Tensor, ...]
# A stateless seed: shape-[2] int64 tensor or a pair of ints.
SeedLike = tf.Tensor | tuple[int, int] | list[int]

# Shared keys that fix the variables' shapes (plus the family's ``architecture_keys``).
ARCHITECTURE_KEYS = ("model", "img_shapes")


class TrainingError(DeepfillError):
    """Training cannot go on (a loss or a weight became NaN/Inf)."""


@dataclasses.dataclass
class TrainResult:
    """What ``Trainer.fit`` did.

    start_step / step: global step at the start and at the end; stopped_by: ``"SIGINT"`` /
    ``"SIGTERM"`` if a signal ended the run early, else None; checkpoint: the latest
    checkpoint prefix in log_dir (None if none); metrics: the last step's losses.
    """

    start_step: int
    step: int
    stopped_by: str | None
    checkpoint: str | None
    metrics: dict[str, float]


def prepare_run_dir(config: TrainConfig, log_dir: str) -> str:
    """Create ``log_dir`` and write the resolved config there (atomically).

    Raises:
        ConfigError: ``log_dir`` holds a run whose architecture (``ARCHITECTURE_KEYS`` and
            the family's ``architecture_keys``) differs, so its checkpoints could not be
            restored into this model.
    """
    if os.path.exists(log_dir) and not os.path.isdir(log_dir):
        raise ConfigError(f"log_dir {log_dir}: exists and is not a folder")
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"log_dir {log_dir}: cannot create ({e.strerror})") from None
    path = os.path.join(log_dir, CONFIG_NAME)
    if os.path.isfile(path):
        try:
            previous = load_config(path)
        except DeepfillError:
            previous = None
        if previous is not None:
            keys = ARCHITECTURE_KEYS + tuple(get_family(config.model).architecture_keys)
            for key in keys:
                old, new = getattr(previous, key, None), getattr(config, key, None)
                if old != new:
                    raise ConfigError(
                        f"log_dir {log_dir} holds a run with {key}={old!r}, this config has"
                        f" {new!r}: resume with the same model or use another log_dir"
                    )
    save_config(config, path)
    return path


class _SignalStop:
    """SIGINT/SIGTERM set a flag that the loop checks after each iteration; a second signal
    interrupts at once (KeyboardInterrupt / SystemExit)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.received is not None:
            self.uninstall()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.received = signal.Signals(signum).name

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class Trainer:
    """Trains a family's task (``deepfill_tf.training.task``) under a ``tf.distribute`` strategy.

    Args:
        config: ``TrainConfig``.
        strategy: default: the current (default) strategy, i.e. one device.
        task: a task whose models were created under ``strategy.scope()``; default
            ``get_family(config.model).make_task(config)`` built here.
        optimizer: an unbuilt optimiser created under ``strategy.scope()``, instead of
            ``task.make_optimizer()`` (tests: ``SGD(1.0)`` makes the weight change equal
            the gradient).
        log_dir: run directory (default ``config.log_dir``).
        max_to_keep: checkpoints kept in log_dir.
        log: where one-line messages go (chief only); default ``print``.

    Attributes:
        task, optimizer, step (int64 variable, iterations), checkpoints (RunCheckpoint).
    """

    def __init__(
        self,
        config: TrainConfig,
        strategy: tf.distribute.Strategy | None = None,
        *,
        task: Task | None = None,
        optimizer: keras.optimizers.Optimizer | None = None,
        log_dir: str | None = None,
        max_to_keep: int = 5,
        log: Callable[[str], None] = print,
    ):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = int(self.strategy.num_replicas_in_sync)
        if config.batch_size % self.replicas:
            raise ConfigError(
                f"batch_size {config.batch_size} does not split over {self.replicas} replicas"
                f" ({describe_strategy(self.strategy)}): use a multiple of {self.replicas}"
            )
        self.chief = is_chief(self.strategy)
        self.multi_worker = worker_count(self.strategy) > 1
        self.log_dir = os.fspath(log_dir or config.log_dir)
        self._log = log
        with self.strategy.scope():
            if task is None:
                task = get_family(config.model).make_task(config)
            self.task = task
            self.phases = list(task.phases())
            self.objectives = task.objectives()
            self.optimizer = optimizer or task.make_optimizer()
            networks = list(task.networks.values())
            variables = {id(v): v for o in self.objectives.values() for v in o.variables()}
            self.optimizer.build(sorted_variables(list(variables.values()), *networks))
            self.step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self.checkpoints = RunCheckpoint(
            self.log_dir,
            task.networks,
            self.optimizer,
            self.step,
            max_to_keep=max_to_keep,
            chief=self.chief,
            worker=worker_index(self.strategy),
        )
        self._step_fns: dict[str, Callable] = {}
        self._visual_fn = tf.function(self._visuals)
        self._any_fn = tf.function(self._any_worker)

    # ------------------------------------------------------------------ messages

    def log(self, message: str) -> None:
        if self.chief:
            self._log(message)

    # ------------------------------------------------------------------ one step

    def _replica_step(self, name, batch, seed):
        objective = self.objectives[name]
        variables = objective.variables()
        random = self.task.sample_random(seed)
        with tf.GradientTape() as tape:
            loss, metrics = objective.loss(batch, random)
            scaled = loss / float(self.replicas)
        grads = tape.gradient(scaled, variables)
        # Variables the loss does not reach (DeepFill v1 pretrain_coarse_network: stage 2)
        # are skipped, as TF1's minimize skips None gradients.
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return metrics

    def _reduce(self, per_replica: dict) -> dict:
        return {
            k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    def _distributed_step(self, name, batch, seed):
        # A closure, not strategy.run(args=variables): MirroredStrategy would hand each
        # replica its component variables, which the optimiser does not know.
        def replica(batch, seed):
            return self._replica_step(name, batch, seed)

        # Traced with the fused gating kernel (DeepFill v2): a training step is never exported.
        with native_gating():
            return self._reduce(self.strategy.run(replica, args=(batch, seed)))

    def run_step(self, name: str, batch: Batch, seed: SeedLike) -> dict[str, tf.Tensor]:
        """One optimisation step of objective ``name`` on a distributed batch; ``seed`` int64
        [2]. Mean metrics over replicas. (Traced once per objective; re-traced after a phase
        change, which may freeze layers.)"""
        fn = self._step_fns.get(name)
        if fn is None:
            fn = self._step_fns[name] = tf.function(
                lambda batch, seed: self._distributed_step(name, batch, seed)
            )
        return fn(batch, tf.convert_to_tensor(seed, tf.int64))

    def d_step(self, batch: Batch, seed: SeedLike) -> dict[str, tf.Tensor]:
        """One discriminator step (adversarial tasks)."""
        return self.run_step("discriminator", batch, seed)

    def g_step(self, batch: Batch, seed: SeedLike) -> dict[str, tf.Tensor]:
        """One generator step (adversarial tasks). Does not advance ``step``."""
        return self.run_step("generator", batch, seed)

    def seed(self, counter: int) -> tf.Tensor:
        """Stateless seed of the ``counter``-th step of the run: [config.seed, counter]."""
        return tf.constant([self.config.seed, counter], tf.int64)

    def _visuals(self, batch, seed):
        return self.task.visuals(batch, self.task.sample_random(seed))

    def _any_worker(self, flag):
        """Sum of ``flag`` over all replicas of all workers (a collective: all must call)."""
        per_replica = self.strategy.run(tf.identity, args=(flag,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    # ------------------------------------------------------------------ data

    def make_dataset(self, seed: int) -> tf.data.Dataset:
        """The task's training images (global batches, repeated)."""
        ds = self.task.make_dataset(seed)
        options = tf.data.Options()
        # Workers read the same seeded stream and keep every n-th batch (no file sharding:
        # a .flist gives no per-worker files).
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return ds.with_options(options)

    # ------------------------------------------------------------------ restore

    def restore(self) -> int:
        """Resume from log_dir's latest checkpoint, else start from ``model_restore`` if set.

        Returns the global step to continue from (0 for a fresh run).
        """
        latest = self.checkpoints.latest_readable(lambda m: self.log(f"warning: {m}"))
        if latest:
            step = self.checkpoints.restore(latest)
            self.log(f"resumed from step {step} ({latest})")
        elif self.config.model_restore:
            self.log(
                initialise_from(self.config.model_restore, self.checkpoints, self.task.networks)
            )
        step = int(self.step.numpy())
        self._set_learning_rate(phase_at(self.phases, step))
        return step

    def _set_learning_rate(self, phase: Phase) -> None:
        # The checkpoint holds the optimiser's learning-rate variable; the config decides.
        rate = phase.learning_rate if phase.learning_rate is not None else self.config.lr
        self.optimizer.learning_rate = rate

    def _enter(self, phase: Phase, step: int) -> None:
        """Switch to ``phase`` (at the start, on resume, and at a phase boundary)."""
        self.task.begin_phase(phase)
        self._set_learning_rate(phase)
        self._step_fns = {}  # freezing layers changes the variables: trace again
        if len(self.phases) > 1:
            self.log(f"phase {phase.name!r} from step {step} ({_recipe(phase)})")

    # ------------------------------------------------------------------ the loop

    def _resumed_dataset(self, start: int) -> tf.data.Dataset:
        """The training stream from global step ``start``: the images an uninterrupted run
        reads from there. The data position is not stored: it follows from the step, the
        phases' recipes and ``batch_size`` (``batches_before``), and the base task's stream is
        seeded per element, so skipping is exact. A task with its own ``make_dataset`` that
        ignores ``data_position`` gets a stream reseeded by the step instead (no replay of the
        first files)."""
        c = self.config
        if start and type(self.task).make_dataset is not Task.make_dataset:
            return self.make_dataset(seed=c.seed + start)
        self.task.data_position = batches_before(self.phases, start) * c.batch_size
        return self.make_dataset(seed=c.seed)

    def fit(
        self,
        max_iters: int | None = None,
        *,
        dataset: tf.data.Dataset | None = None,
        on_step: Callable[[int, dict], None] | None = None,
        interactive: bool | None = None,
        log_every: int | None = None,
    ) -> TrainResult:
        """Train until step ``max_iters`` (default ``config.max_iters``) or a signal.

        Resumes from log_dir first. Checkpoints every ``train_spe`` steps, at the end and on
        SIGINT/SIGTERM; summaries every ``val_psteps`` steps.

        Args:
            dataset: global batches to use instead of the task's (tests).
            on_step: called as ``on_step(step, metrics)`` after every iteration.
            interactive: progress bar (True) or log lines (False); default: stdout is a tty.
            log_every: log-line interval (default ``min(val_psteps, 100)``).

        Raises:
            TrainingError: a loss or weight became NaN/Inf (nothing is saved after that).
        """
        c = self.config
        max_iters = int(c.max_iters if max_iters is None else max_iters)
        if self.chief:
            prepare_run_dir(c, self.log_dir)
        self.log(f"strategy: {describe_strategy(self.strategy)}")
        start = self.restore()
        if start >= max_iters:
            self.log(f"step {start} already reached max_iters {max_iters}: nothing to train")
            return TrainResult(start, start, None, self.checkpoints.latest, {})
        if dataset is None:
            dataset = self._resumed_dataset(start)
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        summaries = Summaries(self.log_dir, enabled=self.chief)
        static = self.task.static_views() if (c.val and self.chief) else None
        progress = Progress(
            start,
            max_iters,
            c.batch_size,
            interactive=interactive,
            log_every=log_every or min(c.val_psteps, 100),
            enabled=self.chief,
        )
        stop = _SignalStop()
        stop.install()
        step, saved_at, metrics, stopped_by = start, None, {}, None
        phase = phase_at(self.phases, step)
        self._enter(phase, step)
        self.log("tracing the training step (the first step takes longest; then progress)")
        try:
            while step < max_iters:
                if phase is not phase_at(self.phases, step):
                    phase = phase_at(self.phases, step)
                    self._enter(phase, step)
                counter = step * phase.steps_per_iteration
                for name, times in phase.steps:
                    for _ in range(times):
                        batch = self._next(iterator)
                        seed = self.seed(counter)
                        counter += 1
                        values = self.run_step(name, batch, seed)
                        metrics.update(self._finite(values, step + 1, name))
                self.step.assign_add(1)
                step += 1
                progress.update(step, metrics)
                if on_step is not None:
                    on_step(step, dict(metrics))
                if step % c.val_psteps == 0:
                    self._write_summaries(summaries, step, metrics, batch, seed, static, progress)
                if step % c.train_spe == 0:
                    self._save(step)
                    saved_at = step
                if self._should_stop(stop):
                    stopped_by = stop.received or "a signal to another worker"
                    break
            if saved_at != step:
                self._save(step)
        finally:
            stop.uninstall()
            progress.close()
            summaries.close()
        latest = self.checkpoints.latest
        if stopped_by:
            self.log(f"stopped by {stopped_by} at step {step}; checkpoint {latest}")
        else:
            self.log(f"finished at step {step}; checkpoint {latest}")
        return TrainResult(start, step, stopped_by, latest, dict(metrics))

    def _next(self, iterator):
        try:
            return next(iterator)
        except StopIteration:
            raise InputError("the training data ran out (the dataset must repeat)") from None
        except tf.errors.OpError as e:
            text = str(e.message if hasattr(e, "message") else e).strip().splitlines()
            raise InputError(
                f"reading the training data failed: {text[0] if text else e}"
            ) from None

    def _finite(self, values: dict, step: int, which: str) -> dict[str, float]:
        out = {k: float(v) for k, v in values.items()}
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(
                f"{bad[0]} is {out[bad[0]]} in the {which} step of step {step}: training"
                f" diverged and was stopped without saving; the last good checkpoint is"
                f" {self.checkpoints.latest or 'none (nothing saved yet)'}"
            )
        return out

    def _should_stop(self, stop: _SignalStop) -> bool:
        if not self.multi_worker:
            return stop.received is not None
        # Every worker must take part in the final (collective) save: agree on stopping.
        flag = tf.constant(1.0 if stop.received else 0.0)
        return bool(self._any_fn(flag).numpy() > 0)

    def _save(self, step: int) -> str:
        variables = [v for model in self.task.networks.values() for v in model.weights]
        if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables):
            raise TrainingError(
                f"a weight is NaN/Inf at step {step}: training diverged and was stopped without"
                f" saving; the last good checkpoint is {self.checkpoints.latest or 'none'}"
            )
        return self.checkpoints.save()

    def _write_summaries(self, summaries, step, metrics, batch, seed, static, progress) -> None:
        if not self.chief:
            return
        values = {f"losses/{k}": v for k, v in metrics.items()}
        rate = progress.rate(step)
        if math.isfinite(rate):
            values["train/steps_per_sec"] = rate
            values["train/images_per_sec"] = rate * self.config.batch_size
        if len(self.phases) > 1:
            values["train/phase"] = self.phases.index(phase_at(self.phases, step - 1))
        summaries.scalars(step, values)
        n = int(self.config.viz_max_out)
        if n > 0:
            local = tf.nest.map_structure(
                lambda v: self.strategy.experimental_local_results(v)[0][:n], batch
            )
            grid = self._visual_fn(local, seed)
            if grid is not None:
                shown = self.task.display(grid)
                summaries.images(step, "raw_incomplete_predicted_complete", shown, n)
        if static is not None and len(static):
            for i, grid in enumerate(static.grids()):
                image = static.display(grid[None])
                summaries.images(step, f"static_view/{i}_raw_incomplete_complete", image, 1)
        summaries.flush()


def _recipe(phase: Phase) -> str:
    return ", ".join(
        f"{times} {name} step{'s' if times > 1 else ''}" for name, times in phase.steps
    )
