"""Reading the checkpoints of a ``deepfill-tf train`` run (inference, export and convert use
this; the training package writes them, ``deepfill_tf.training.checkpointing``).

A run directory (``log_dir``) holds ``config.yml`` (the resolved config), object-based TF2
checkpoints ``ckpt-<step>`` and the ``checkpoint`` state file naming the latest. Each network
is stored as a dict keyed by its TF1 variable names (``inpaint_net/conv1/kernel``), so the
variables read back by name whatever the Keras classes look like.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from deepfill_tf.errors import CheckpointError

CONFIG_NAME = "config.yml"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def resolve_run_checkpoint(path: str) -> str | None:
    """The prefix of our training checkpoint at ``path`` (run directory or prefix), or None
    when ``path`` is something else (e.g. an original TF1 checkpoint).

    A run directory resolves to its newest READABLE checkpoint: a truncated newer one (a kill
    or a full disk while saving) is skipped with a warning on stderr
    (``newest_readable_checkpoint``).

    Raises:
        CheckpointError: a run directory (it has ``config.yml``) without any checkpoint, or
            with none readable; a run checkpoint prefix that is unreadable.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        candidates = run_checkpoints(path)
        is_run = os.path.isfile(os.path.join(path, CONFIG_NAME))
        if not (is_run or (candidates and _is_run_checkpoint(candidates[0]))):
            return None  # e.g. an original TF1 checkpoint folder: not read twice
        latest = newest_readable_checkpoint(path)
        if latest is None:
            if os.path.isfile(os.path.join(path, CONFIG_NAME)):
                raise CheckpointError(f"run directory {path} has no checkpoint yet")
            return None
        prefix = latest
    else:
        prefix = path[: -len(".index")] if path.endswith(".index") else path
        if not os.path.isfile(prefix + ".index"):
            return None
        if _is_object_based(prefix):
            problem = checkpoint_problem(prefix)
            if problem:
                raise CheckpointError(
                    f"checkpoint {prefix} is unreadable ({problem}); give its run directory to "
                    "use the newest readable checkpoint"
                )
    return prefix if _is_run_checkpoint(prefix) else None


def checkpoint_problem(prefix: str) -> str | None:
    """Why the checkpoint at ``prefix`` cannot be read (truncated or missing data file, corrupt
    index), or None when every tensor reads back. Reads the whole checkpoint."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # OpError, ValueError, IndexError ("Read less bytes"): unreadable
        return _first_line(e)
    return None


def run_checkpoints(folder: str) -> list[str]:
    """Checkpoint prefixes of a run directory, newest first: the ``checkpoint`` state file's
    list and every ``*-N.index`` on disk (a damaged state file does not hide them)."""
    if not os.path.isdir(folder):
        return []
    found = {}
    try:
        state = tf.train.get_checkpoint_state(folder)
    except (tf.errors.OpError, ValueError, UnicodeDecodeError):
        state = None
    names = list(state.all_model_checkpoint_paths) if state else []
    names += [n[: -len(".index")] for n in os.listdir(folder) if n.endswith(".index")]
    for name in names:
        prefix = name if os.path.isabs(name) else os.path.join(folder, name)
        match = re.search(r"-(\d+)$", prefix)
        if os.path.isfile(prefix + ".index") and match:
            found[os.path.normpath(prefix)] = int(match.group(1))
    return sorted(found, key=lambda p: found[p], reverse=True)


def _warn(message: str) -> None:
    print(f"deepfill-tf: warning: {message}", file=sys.stderr)


def newest_readable_checkpoint(
    folder: str, warn: Callable[[str], object] | None = None
) -> str | None:
    """The newest checkpoint of ``folder`` that reads back completely, or None if there is none.

    A truncated or unreadable newer checkpoint (a kill or a full disk while saving) is skipped
    with a warning through ``warn`` (default: one line on stderr) naming it and the one used.

    Raises:
        CheckpointError: the folder has checkpoints but none of them is readable.
    """
    skipped = []
    for prefix in run_checkpoints(folder):
        problem = checkpoint_problem(prefix)
        if problem is None:
            if skipped:
                names = ", ".join(os.path.basename(p) for p, _ in skipped)
                (warn or _warn)(
                    f"{names} in {folder} unreadable ({skipped[0][1]}); using "
                    f"{os.path.basename(prefix)}, the newest readable checkpoint"
                )
            return prefix
        skipped.append((prefix, problem))
    if skipped:
        raise CheckpointError(
            f"no readable checkpoint in {folder}: {os.path.basename(skipped[0][0])}: "
            f"{skipped[0][1]}"
        )
    return None


def _is_object_based(prefix: str) -> bool:
    """A TF2 object-based checkpoint (ours), judged from its index alone."""
    try:
        return tf.train.load_checkpoint(prefix).has_tensor(_OBJECT_GRAPH_KEY)
    except (tf.errors.OpError, ValueError, IndexError):
        return False


def _is_run_checkpoint(prefix: str) -> bool:
    try:
        graph = _object_graph(tf.train.load_checkpoint(prefix))
    except (tf.errors.OpError, ValueError, IndexError):
        return False
    return graph is not None and "generator" in {c.local_name for c in graph.nodes[0].children}


def _object_graph(reader) -> trackable_object_graph_pb2.TrackableObjectGraph | None:
    if not reader.has_tensor(_OBJECT_GRAPH_KEY):
        return None
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    return graph


def read_run_checkpoint(prefix: str, parts: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Variables of one of our checkpoints under their TF1 names, as NumPy arrays.

    Args:
        prefix: checkpoint prefix (``log_dir/ckpt-N``).
        parts: which networks, by their checkpoint keys (``Task.networks``), e.g.
            ``"generator"`` (``inpaint_net/...``), ``"discriminator"`` (SN ``u`` included).

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
            if child.local_name in ("step", "optimizer", "data"):
                continue
            if parts is not None and child.local_name not in parts:
                continue
            for ref in graph.nodes[child.node_id].children:
                out[ref.local_name] = reader.get_tensor(_value_key(graph, ref.node_id))
        return out
    except (tf.errors.OpError, ValueError, IndexError) as e:
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
