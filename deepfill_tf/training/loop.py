"""The generic GAN training loop: strategy, D and G steps, one shared Adam, checkpoints.

One iteration is what the original's neuralgym trainer does per step: ``d_steps`` (5 for
v1, 1 for v2) discriminator steps, then one generator step, each on its own batch with its
own random mask; the global step counts generator steps, so ``max_iters`` and ``train_spe``
mean what they meant in the original.

The original creates ONE ``tf.train.AdamOptimizer`` and minimises both losses with it, so its
bias-correction powers ``beta1_power``/``beta2_power`` advance after every D step AND every G
step. Here one Keras Adam is built on the G + D variables and ``apply``-ed to each subset
(Keras 3 allows a subset of the variables it was built with); its ``iterations`` counter,
which gives the bias correction (``beta ** (iterations + 1)``), advances on both, as the
original (tests/test_training_loop.py checks it). ``epsilon`` is TF1's 1e-8, not Keras' 1e-7.

Distribution: every replica gets ``batch_size / replicas`` images and the same random mask
(the original shares one mask by the whole batch); each replica's loss is the mean over its
images divided by the number of replicas and the optimiser sums the gradients over replicas,
so the update is that of the mean loss over the global batch. Note that the original's
``batch_size`` was per GPU (neuralgym builds one tower per GPU): to reproduce an N-GPU
original run set ``batch_size`` to N times its value.
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

from deepfill_tf.errors import ConfigError, DeepfillError, InputError
from deepfill_tf.training.checkpointing import (
    CONFIG_NAME,
    RunCheckpoint,
    initialise_from,
    sorted_variables,
)
from deepfill_tf.training.strategy import describe_strategy, is_chief, worker_count, worker_index
from deepfill_tf.training.summaries import Progress, StaticViews, Summaries

# Fields that fix the variables' shapes: a log_dir cannot be resumed with other values.
ARCHITECTURE_KEYS = (
    "model",
    "guided",
    "cnum",
    "disc_cnum",
    "img_shapes",
    "height",
    "width",
    "gan_with_mask",
)


class TrainingError(DeepfillError):
    """Training cannot go on (a loss or a weight became NaN/Inf)."""


@dataclasses.dataclass
class TrainResult:
    """What ``Trainer.fit`` did.

    start_step / step: global (generator) step at the start and at the end; stopped_by:
    ``"SIGINT"`` / ``"SIGTERM"`` if a signal ended the run early, else None; checkpoint: the
    latest checkpoint prefix in log_dir (None if none); metrics: the last step's losses.
    """

    start_step: int
    step: int
    stopped_by: str | None
    checkpoint: str | None
    metrics: dict[str, float]


def make_optimizer(config) -> keras.optimizers.Adam:
    """The original's Adam: ``lr``, ``beta1``, ``beta2`` from the config, epsilon 1e-8."""
    return keras.optimizers.Adam(
        learning_rate=config.lr,
        beta_1=config.beta1,
        beta_2=config.beta2,
        epsilon=1e-8,  # tf.compat.v1.train.AdamOptimizer's default
        name="adam",
    )


def prepare_run_dir(config, log_dir: str) -> str:
    """Create ``log_dir`` and write the resolved config there (atomically).

    Raises:
        ConfigError: ``log_dir`` holds a run whose architecture (``ARCHITECTURE_KEYS``)
            differs, so its checkpoints could not be restored into this model.
    """
    from deepfill_tf.config import load_config, save_config

    path = os.path.join(log_dir, CONFIG_NAME)
    if os.path.isfile(path):
        try:
            previous = load_config(path)
        except DeepfillError:
            previous = None
        if previous is not None:
            for key in ARCHITECTURE_KEYS:
                old, new = getattr(previous, key), getattr(config, key)
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
    """Trains a task (``deepfill_tf.training.task``) under a ``tf.distribute`` strategy.

    Args:
        config: ``TrainConfig``.
        strategy: default: the current (default) strategy, i.e. one device.
        task: a task whose models were created under ``strategy.scope()``; default
            ``make_task(config)`` built here.
        optimizer: an unbuilt optimiser created under ``strategy.scope()``, instead of
            ``make_optimizer(config)`` (tests: ``SGD(1.0)`` makes the weight change equal
            the gradient).
        log_dir: run directory (default ``config.log_dir``).
        max_to_keep: checkpoints kept in log_dir.
        log: where one-line messages go (chief only); default ``print``.

    Attributes:
        task, optimizer, step (int64 variable, generator steps), checkpoints (RunCheckpoint).
    """

    def __init__(
        self,
        config,
        strategy: tf.distribute.Strategy | None = None,
        *,
        task=None,
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
                from deepfill_tf.training.task import make_task

                task = make_task(config)
            self.task = task
            self.optimizer = optimizer or make_optimizer(config)
            self.optimizer.build(
                sorted_variables(
                    list(task.g_variables) + list(task.d_variables),
                    task.generator,
                    task.discriminator,
                )
            )
            self.step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self.checkpoints = RunCheckpoint(
            self.log_dir,
            task.generator,
            task.discriminator,
            self.optimizer,
            self.step,
            max_to_keep=max_to_keep,
            chief=self.chief,
            worker=worker_index(self.strategy),
        )
        self._d_fn = tf.function(self._d_step)
        self._g_fn = tf.function(self._g_step)
        self._visual_fn = tf.function(self._visuals)
        self._any_fn = tf.function(self._any_worker)

    # ------------------------------------------------------------------ messages

    def log(self, message: str) -> None:
        if self.chief:
            self._log(message)

    # ------------------------------------------------------------------ one step

    def _replica_step(self, loss_fn, variables, batch, seed):
        random = self.task.sample_random(seed)
        with tf.GradientTape() as tape:
            loss, metrics = loss_fn(batch, random)
            scaled = loss / float(self.replicas)
        grads = tape.gradient(scaled, variables)
        # Variables the loss does not reach (v1 pretrain_coarse_network: stage 2) are skipped,
        # as TF1's minimize skips None gradients.
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return metrics

    def _reduce(self, per_replica: dict) -> dict:
        return {
            k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    def _d_step(self, batch, seed):
        # A closure, not strategy.run(args=variables): MirroredStrategy would hand each
        # replica its component variables, which the optimiser does not know.
        def replica(batch, seed):
            return self._replica_step(self.task.d_loss, self.task.d_variables, batch, seed)

        return self._reduce(self.strategy.run(replica, args=(batch, seed)))

    def _g_step(self, batch, seed):
        def replica(batch, seed):
            return self._replica_step(self.task.g_loss, self.task.g_variables, batch, seed)

        metrics = self._reduce(self.strategy.run(replica, args=(batch, seed)))
        self.step.assign_add(1)
        return metrics

    def d_step(self, batch, seed) -> dict[str, tf.Tensor]:
        """One discriminator step on a distributed batch; ``seed`` int64 [2]. Mean metrics."""
        return self._d_fn(batch, tf.convert_to_tensor(seed, tf.int64))

    def g_step(self, batch, seed) -> dict[str, tf.Tensor]:
        """One generator step (advances ``step``). Mean metrics."""
        return self._g_fn(batch, tf.convert_to_tensor(seed, tf.int64))

    def seed(self, counter: int) -> tf.Tensor:
        """Stateless seed of the ``counter``-th D/G step of the run: [config.seed, counter]."""
        return tf.constant([self.config.seed, counter], tf.int64)

    def _visuals(self, batch, seed):
        return self.task.visuals(batch, self.task.sample_random(seed))

    def _any_worker(self, flag):
        """Sum of ``flag`` over all replicas of all workers (a collective: all must call)."""
        per_replica = self.strategy.run(tf.identity, args=(flag,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    # ------------------------------------------------------------------ data

    def make_dataset(self, seed: int) -> tf.data.Dataset:
        """The training images of ``config.train_data`` (global batches, repeated)."""
        from deepfill_tf.data import make_dataset

        c = self.config
        if not c.train_data:
            raise ConfigError("key 'train_data' is empty: give a .flist, a folder or tfds:NAME")
        ds = make_dataset(
            c.train_data,
            batch_size=c.batch_size,
            img_shape=c.img_shapes,
            random_crop=c.random_crop,
            random_flip=c.random_flip,
            random_channel_shuffle=c.random_channel_shuffle,
            guided=c.guided,
            edge_threshold=c.edge_threshold,
            shuffle=True,
            repeat=True,
            seed=seed,
        )
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
        latest = self.checkpoints.latest
        if latest:
            step = self.checkpoints.restore(latest)
            self.log(f"resumed from step {step} ({latest})")
        elif self.config.model_restore:
            self.log(
                initialise_from(
                    self.config.model_restore,
                    self.checkpoints,
                    self.task.generator,
                    self.task.discriminator,
                )
            )
        # The checkpoint holds the optimiser's learning-rate variable; the config decides.
        self.optimizer.learning_rate = self.config.lr
        return int(self.step.numpy())

    # ------------------------------------------------------------------ the loop

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
            dataset: global batches to use instead of ``config.train_data`` (tests).
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
            # A resumed run reshuffles with another seed rather than replaying the first files.
            dataset = self.make_dataset(seed=c.seed + start)
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        summaries = Summaries(self.log_dir, enabled=self.chief)
        static = StaticViews(c, self.task.generator) if (c.val and self.chief) else None
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
        d_steps = int(self.task.d_steps)
        try:
            while step < max_iters:
                counter = step * (d_steps + 1)
                for k in range(d_steps):
                    values = self.d_step(self._next(iterator), self.seed(counter + k))
                    metrics.update(self._finite(values, step + 1, "discriminator"))
                batch = self._next(iterator)
                g_seed = self.seed(counter + d_steps)
                metrics.update(self._finite(self.g_step(batch, g_seed), step + 1, "generator"))
                step += 1
                progress.update(step, metrics)
                if on_step is not None:
                    on_step(step, dict(metrics))
                if step % c.val_psteps == 0:
                    self._write_summaries(summaries, step, metrics, batch, g_seed, static, progress)
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
        variables = self.task.generator.weights + self.task.discriminator.weights
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
        summaries.scalars(step, values)
        n = int(self.config.viz_max_out)
        if n > 0:
            local = tf.nest.map_structure(
                lambda v: self.strategy.experimental_local_results(v)[0][:n], batch
            )
            grid = self._visual_fn(local, seed)
            summaries.images(step, "raw_incomplete_predicted_complete", grid, n)
        if static is not None and len(static):
            for i, grid in enumerate(static.grids()):
                summaries.images(step, f"static_view/{i}_raw_incomplete_complete", grid[None], 1)
        summaries.flush()


def train(
    config,
    *,
    strategy: tf.distribute.Strategy | None = None,
    max_iters: int | None = None,
    log: Callable[[str], None] = print,
    **fit_kwargs,
) -> TrainResult:
    """Build a ``Trainer`` for ``config`` under ``strategy`` and ``fit`` it (see both)."""
    trainer = Trainer(config, strategy, log=log)
    return trainer.fit(max_iters, **fit_kwargs)
