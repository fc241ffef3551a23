"""Writing the checkpoints of a training run: every network, the optimiser and the step.

A run directory (``log_dir``) holds ``config.yml`` (the resolved config, written when the run
starts), object-based TF2 checkpoints ``ckpt-<step>`` with the ``checkpoint`` state file naming
the latest (``tf.train.CheckpointManager``), and TensorBoard event files. Reading them back
(inference, export, convert) is ``deepfill_tf.convert.run_checkpoint``.

Each network of the task (``Task.networks``: ``generator``, ``discriminator``, ...) is stored
as a dict keyed by its TF1 variable names (``inpaint_net/conv1/kernel``,
``discriminator/sn_patch_gan/conv1/kernel_sn/u``), not by Python attribute paths, so a
checkpoint does not depend on how the Keras classes are written and converts to the original
layout by name. The optimiser is built on the variables sorted by those names, so its slot
order is stable too.

Crash safety comes from TensorFlow's writer: the data is written under a temporary name and
renamed, then the ``checkpoint`` state file is replaced atomically; a process killed while
saving leaves the previous checkpoint as the latest one (see tests/test_resume.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

import keras
import tensorflow as tf

from deepfill_tf.convert.run_checkpoint import newest_readable_checkpoint, resolve_run_checkpoint
from deepfill_tf.convert.tf1_checkpoint import (
    assign_strict,
    is_optimiser_key,
    read_tf1_checkpoint,
    resolve_checkpoint_prefix,
    tf1_variable_table,
)
from deepfill_tf.errors import CheckpointError

CHECKPOINT_NAME = "ckpt"


def sorted_variables(variables: list, *models: keras.Model) -> list:
    """``variables`` sorted by their TF1 names in ``models`` (the optimiser's build order, so
    its slots do not depend on the order in which the Keras classes create variables)."""
    names = {id(v): k for model in models for k, v in tf1_variable_table(model).items()}
    return sorted(variables, key=lambda v: names.get(id(v), v.path))


class RunCheckpoint:
    """Save and restore the networks, optimiser and step in ``log_dir``.

    Args:
        log_dir: run directory.
        networks: ``{checkpoint key: built Keras model}`` (``Task.networks``).
        optimizer: the Keras optimiser, already built (its slots exist).
        step: int64 ``tf.Variable``, the global step.
        max_to_keep: checkpoints kept (oldest deleted).
        chief: False in the non-chief workers of a multi-worker run: they take part in the
            collective save but write into a private folder that is deleted right after.
        worker: worker index (names that private folder).
    """

    def __init__(
        self,
        log_dir: str,
        networks: Mapping[str, keras.Model],
        optimizer: keras.optimizers.Optimizer,
        step: tf.Variable,
        *,
        max_to_keep: int = 5,
        chief: bool = True,
        worker: int = 0,
    ):
        self.log_dir = os.fspath(log_dir)
        self.step = step
        self.chief = chief
        tables = {key: tf1_variable_table(model) for key, model in networks.items()}
        self.checkpoint = tf.train.Checkpoint(**tables, optimizer=optimizer, step=step)
        directory = self.log_dir if chief else os.path.join(self.log_dir, f".worker-{worker}")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name=CHECKPOINT_NAME
        )

    @property
    def latest(self) -> str | None:
        """Prefix of the latest checkpoint in ``log_dir`` (None if there is none)."""
        return tf.train.latest_checkpoint(self.log_dir)

    def latest_readable(self, warn=None) -> str | None:
        """Prefix of the newest checkpoint in ``log_dir`` that reads back completely: a
        truncated latest one (killed or out of disk while saving) is skipped with a warning
        through ``warn(message)`` (default: stderr). None if there is none.

        Raises:
            CheckpointError: checkpoints exist but none is readable.
        """
        return newest_readable_checkpoint(self.log_dir, warn)

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


def initialise_from(path: str, run: RunCheckpoint, networks: Mapping[str, keras.Model]) -> str:
    """Start a new run from ``model_restore``: our checkpoint (everything, step included) or
    an original TF1 checkpoint (the generator strictly; every other network whose scope the
    checkpoint has, e.g. the original's discriminator).

    Returns:
        one line saying what was restored.
    """
    prefix = resolve_run_checkpoint(path)
    if prefix is not None:
        step = run.restore(prefix)
        return f"initialised from {prefix} (step {step})"
    variables = read_tf1_checkpoint(path)
    loaded = []
    for key, model in networks.items():
        table = tf1_variable_table(model)
        scopes = tuple(sorted({name.split("/")[0] for name in table}))
        if key != "generator" and not any(k.split("/")[0] in scopes for k in variables):
            continue
        assign_strict(table, variables, scopes=scopes, what=key)
        loaded.append(key)
    prefix = resolve_checkpoint_prefix(path)
    # The original saves its Adam slots (``.../Adam``, ``.../Adam_1``, ``beta1_power``) with two
    # optimisers' counters; our one Keras Adam does not map onto them, so say it starts fresh.
    slots = sum(1 for name, _ in tf.train.list_variables(prefix) if is_optimiser_key(name))
    fresh = (
        f"the optimizer starts fresh (the checkpoint's {slots} Adam slot and counter variables"
        " are not restored; Adam re-estimates its moments in the first steps)"
        if slots
        else "the optimizer starts fresh (the checkpoint holds no optimizer state)"
    )
    return f"initialised the {' and '.join(loaded)} from the original checkpoint {prefix}; {fresh}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
