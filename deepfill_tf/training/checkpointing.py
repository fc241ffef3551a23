"""Checkpoints of a training run: generator, discriminator, Adam state and the global step.

A run directory (``log_dir``) holds:

* ``config.yml``: the resolved ``TrainConfig`` (written atomically when the run starts);
* ``ckpt-<step>.index`` / ``ckpt-<step>.data-*``: object-based TF2 checkpoints, and the
  ``checkpoint`` state file naming the latest (``tf.train.CheckpointManager``);
* TensorBoard event files.

The generator and the discriminator are stored as dicts keyed by their ORIGINAL TF1 variable
names (``inpaint_net/conv1/kernel``, ``discriminator/sn_patch_gan/conv1/kernel_sn/u``), not by
Python attribute paths, so a checkpoint does not depend on how the Keras classes are written
and converts to the original layout by name (``read_run_checkpoint``). The Adam optimiser is
built on the G + D variables sorted by those names, so its slot order is stable too.

Crash safety comes from TensorFlow's writer: the data is written under a temporary name and
renamed, then the ``checkpoint`` state file is replaced atomically; a process killed while
saving leaves the previous checkpoint as the latest one (see tests/test_resume.py).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from deepfill_tf.convert.tf1_checkpoint import (
    assign_strict,
    read_tf1_checkpoint,
    resolve_checkpoint_prefix,
    tf1_variable_table,
)
from deepfill_tf.errors import CheckpointError

CONFIG_NAME = "config.yml"
CHECKPOINT_NAME = "ckpt"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def sorted_variables(variables, *models) -> list:
    """``variables`` sorted by their TF1 names in ``models`` (the optimiser's build order, so
    its slots do not depend on the order in which the Keras classes create variables)."""
    names = {id(v): k for model in models for k, v in tf1_variable_table(model).items()}
    return sorted(variables, key=lambda v: names.get(id(v), v.path))


class RunCheckpoint:
    """Save and restore G, D, optimiser and step in ``log_dir`` (``tf.train.CheckpointManager``).

    Args:
        log_dir: run directory.
        generator, discriminator: built Keras models of this package.
        optimizer: the Keras optimiser, already built (its slots exist).
        step: int64 ``tf.Variable``, the global (generator) step.
        max_to_keep: checkpoints kept (oldest deleted).
        chief: False in the non-chief workers of a multi-worker run: they take part in the
            collective save but write into a private folder that is deleted right after.
        worker: worker index (names that private folder).
    """

    def __init__(
        self,
        log_dir: str,
        generator,
        discriminator,
        optimizer,
        step: tf.Variable,
        *,
        max_to_keep: int = 5,
        chief: bool = True,
        worker: int = 0,
    ):
        self.log_dir = os.fspath(log_dir)
        self.step = step
        self.chief = chief
        self.checkpoint = tf.train.Checkpoint(
            generator=tf1_variable_table(generator),
            discriminator=tf1_variable_table(discriminator),
            optimizer=optimizer,
            step=step,
        )
        directory = self.log_dir if chief else os.path.join(self.log_dir, f".worker-{worker}")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name=CHECKPOINT_NAME
        )

    @property
    def latest(self) -> str | None:
        """Prefix of the latest checkpoint in ``log_dir`` (None if there is none)."""
        return tf.train.latest_checkpoint(self.log_dir)

    def save(self) -> str:
        """Write a checkpoint numbered by the global step; returns its prefix (in log_dir)."""
        step = int(self.step.numpy())
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
            path = os.path.join(self.log_dir, os.path.basename(path))
        return path

    def restore(self, prefix: str) -> int:
        """Restore everything from one of our checkpoints, strictly; returns its step.

        Raises:
            CheckpointError: unreadable, or it does not match these models (another
                ``cnum``, image size, model...).
        """
        try:
            status = self.checkpoint.restore(prefix)
            status.assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError) as e:
            raise CheckpointError(
                f"cannot restore {prefix}: {_first_line(e)} (was it written for another"
                " model or config? use a new log_dir)"
            ) from None
        return int(self.step.numpy())


def initialise_from(path: str, run: RunCheckpoint, generator, discriminator) -> str:
    """Start a new run from ``model_restore``: our checkpoint (everything, step included) or
    an original TF1 checkpoint (generator strictly, discriminator if present).

    Returns:
        one line saying what was restored.
    """
    prefix = resolve_run_checkpoint(path)
    if prefix is not None:
        step = run.restore(prefix)
        return f"initialised from {prefix} (step {step})"
    variables = read_tf1_checkpoint(path)
    assign_strict(
        tf1_variable_table(generator), variables, scopes=("inpaint_net",), what="generator"
    )
    loaded = "generator"
    if any(k.startswith("discriminator/") for k in variables):
        assign_strict(
            tf1_variable_table(discriminator),
            variables,
            scopes=("discriminator",),
            what="discriminator",
        )
        loaded += " and discriminator"
    return (
        f"initialised the {loaded} from the original checkpoint {resolve_checkpoint_prefix(path)}"
    )


def resolve_run_checkpoint(path: str) -> str | None:
    """The prefix of our training checkpoint at ``path`` (run directory or prefix), or None
    when ``path`` is something else (e.g. an original TF1 checkpoint).

    Raises:
        CheckpointError: a run directory (it has ``config.yml``) without any checkpoint.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            if os.path.isfile(os.path.join(path, CONFIG_NAME)):
                raise CheckpointError(f"run directory {path} has no checkpoint yet")
            return None
        prefix = latest
    else:
        prefix = path[: -len(".index")] if path.endswith(".index") else path
        if not os.path.isfile(prefix + ".index"):
            return None
    return prefix if _is_run_checkpoint(prefix) else None


def _is_run_checkpoint(prefix: str) -> bool:
    try:
        graph = _object_graph(tf.train.load_checkpoint(prefix))
    except (tf.errors.OpError, ValueError):
        return False
    return graph is not None and "generator" in {c.local_name for c in graph.nodes[0].children}


def _object_graph(reader) -> trackable_object_graph_pb2.TrackableObjectGraph | None:
    if not reader.has_tensor(_OBJECT_GRAPH_KEY):
        return None
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    return graph


def read_run_checkpoint(
    prefix: str, parts: tuple[str, ...] = ("generator", "discriminator")
) -> dict[str, np.ndarray]:
    """Variables of one of our checkpoints under their TF1 names, as NumPy arrays.

    Args:
        prefix: checkpoint prefix (``log_dir/ckpt-N``).
        parts: which models: ``"generator"`` (``inpaint_net/...``), ``"discriminator"``
            (``discriminator/...``, SN ``u`` included).

    Returns:
        ``{tf1_name: array}``, plus ``"global_step"`` (int64 scalar).

    Raises:
        CheckpointError: unreadable, or not one of our training checkpoints.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        graph = _object_graph(reader)
        if graph is None:
            raise CheckpointError(f"{prefix} is not a deepfill-tf training checkpoint")
        out = {}
        for child in graph.nodes[0].children:
            if child.local_name == "step":
                out["global_step"] = reader.get_tensor(_value_key(graph, child.node_id))
            if child.local_name not in parts:
                continue
            for ref in graph.nodes[child.node_id].children:
                out[ref.local_name] = reader.get_tensor(_value_key(graph, ref.node_id))
        return out
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {_first_line(e)}") from None


def _value_key(graph, node_id: int) -> str:
    for attribute in graph.nodes[node_id].attributes:
        if attribute.name == "VARIABLE_VALUE":
            return attribute.checkpoint_key
    raise ValueError(f"object {node_id} of the checkpoint is not a variable")


def run_config_path(prefix: str) -> str:
    """``config.yml`` of the run a checkpoint prefix belongs to (its folder)."""
    return os.path.join(os.path.dirname(os.path.abspath(prefix)), CONFIG_NAME)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
