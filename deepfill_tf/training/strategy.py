"""Choosing the ``tf.distribute`` strategy of a training run.

``--strategy auto`` (the default) picks ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG``
describes a cluster, else ``MirroredStrategy`` over the visible GPUs, or over the logical
CPUs when there is no GPU (one CPU = one replica). ``--logical-cpus N`` splits the CPU into N
logical devices so that distribution can be tried without GPUs.

Two TensorFlow rules shape this module: logical devices can only be configured before the
runtime starts, and ``MultiWorkerMirroredStrategy`` must be created before any op runs
("Collective ops must be configured at program startup"). ``make_strategy`` therefore has to
run first in the process; when it is too late it raises a one-line ``ConfigError``.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from deepfill_tf.errors import ConfigError

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")


def configure_logical_cpus(count: int) -> None:
    """Split the first physical CPU into ``count`` logical devices (before TF starts).

    A no-op when TF already runs with exactly ``count`` logical CPUs.

    Raises:
        ConfigError: ``count < 1``, or TensorFlow was initialised with another device layout.
    """
    count = int(count)
    if count < 1:
        raise ConfigError(f"--logical-cpus must be >= 1, got {count}")
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have == count:
            return
        raise ConfigError(
            f"cannot split the CPU into {count} logical devices: TensorFlow has already started"
            f" with {have} (configure them first thing in the process)"
        ) from None


def tf_config_cluster() -> dict | None:
    """The ``cluster`` of the ``TF_CONFIG`` environment variable, or None if unset/empty."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {e}") from None
    cluster = data.get("cluster") if isinstance(data, dict) else None
    return cluster or None


def make_strategy(name: str = "auto", logical_cpus: int | None = None) -> tf.distribute.Strategy:
    """Create the strategy ``name`` (one of ``STRATEGIES``).

    Args:
        name: ``auto`` (multi-worker if ``TF_CONFIG`` is set, else mirrored), ``mirrored``
            (all visible GPUs, else all logical CPUs), ``multi_worker``
            (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``; one local worker without it),
            ``one_device`` (the first GPU, else the CPU).
        logical_cpus: split the CPU into this many logical devices first (None: leave it).

    Raises:
        ConfigError: unknown name, or called after TensorFlow started when the choice needs
            to act first (logical devices, multi-worker collectives).
    """
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if logical_cpus is not None:
        configure_logical_cpus(logical_cpus)
    if name == "auto":
        name = "multi_worker" if tf_config_cluster() else "mirrored"
    if name == "multi_worker":
        # Before anything that starts the runtime (even listing logical devices does).
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as e:
            raise ConfigError(
                f"cannot start MultiWorkerMirroredStrategy: {str(e).splitlines()[0]} (it must"
                " be created before TensorFlow runs anything in this process)"
            ) from None
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """One line such as ``"MirroredStrategy, 2 replicas"``."""
    n = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    elif not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        name = "default strategy"
    else:
        name = type(strategy).__name__
    text = f"{name}, {n} replica{'s' if n != 1 else ''}"
    workers = worker_count(strategy)
    if workers > 1:
        text += f" on {workers} workers (this is worker {worker_index(strategy)})"
    return text


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """Number of worker processes (1 unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, len(spec.get("worker", [])) + len(spec.get("chief", [])))


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This process's worker index (0 outside multi-worker runs)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None else 0


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True in the process that writes checkpoints and summaries (worker 0 or the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or worker_count(strategy) == 1:
        return True
    task_type = resolver.task_type
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type in (None, "worker") and not has_chief and worker_index(strategy) == 0
