"""One strict reader for checkpoints in the original TF1 layout.

A TF1 checkpoint is a prefix ``<dir>/<name>`` with ``<prefix>.index`` and
``<prefix>.data-XXXXX-of-YYYYY`` files (data files may be xz-compressed, ``.xz``). Keras layers
in this package are named after the original variable scopes, so a model's variable paths
(``inpaint_net/conv1/kernel``) are the checkpoint keys and loading is an identity map checked
key by key: every model variable must be found with the same shape, and every checkpoint
variable under the model's scope must be used, except optimiser state.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import CheckpointError
from deepfill_tf.fileio import write_atomic

# Variables a training checkpoint holds besides the weights: Adam slots and counters, the
# learning-rate variable and the step (neuralgym saves all global variables).
_OPTIMISER_KEY = re.compile(r"(/Adam(_\d+)?$|^beta[12]_power(_\d+)?$|^lr$|^global_step$)")


def is_optimiser_key(key: str) -> bool:
    """True for optimiser slots and counters of an original training checkpoint."""
    return bool(_OPTIMISER_KEY.search(key))


def resolve_checkpoint_prefix(path: str) -> str:
    """Return the checkpoint prefix for a directory or a prefix.

    Accepts a directory holding a ``checkpoint`` state file (or ``checkpoint.txt``, as the
    Google-Drive downloads of the released models are named), or a prefix such as
    ``.../snap-0`` with ``.../snap-0.index`` beside it.

    Raises:
      CheckpointError: nothing loadable is there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        for state_name in ("checkpoint", "checkpoint.txt"):
            state = os.path.join(path, state_name)
            if os.path.isfile(state):
                prefix = _prefix_from_state_file(state, path)
                if prefix:
                    return prefix
        indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
        if len(indexes) == 1:
            return os.path.join(path, indexes[0][: -len(".index")])
        if not indexes:
            raise CheckpointError(
                f"no checkpoint in {path}: no 'checkpoint' file and no *.index file"
            )
        raise CheckpointError(
            f"several checkpoints in {path} and no 'checkpoint' file to choose: {', '.join(indexes)}"
        )
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if os.path.isfile(path + ".index"):
        return path
    if not os.path.exists(os.path.dirname(path) or "."):
        raise CheckpointError(f"checkpoint not found: {path}")
    raise CheckpointError(f"checkpoint not found: {path} (no {os.path.basename(path)}.index)")


def _prefix_from_state_file(state: str, directory: str) -> str | None:
    """Parse ``model_checkpoint_path: "..."`` from a CheckpointState text file."""
    try:
        with open(state, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read {state}: {e.strerror}") from None
    match = re.search(r'^model_checkpoint_path:\s*"([^"]*)"', text, re.MULTILINE)
    if not match:
        return None
    name = match.group(1)
    candidates = [name] if os.path.isabs(name) else []
    # Relative to the directory; absolute paths of another machine fall back to the basename.
    candidates += [os.path.join(directory, name), os.path.join(directory, os.path.basename(name))]
    for prefix in candidates:
        if os.path.isfile(prefix + ".index"):
            return prefix
    raise CheckpointError(
        f"{state} names checkpoint '{name}' but {os.path.basename(name)}.index is not in {directory}"
    )


def read_tf1_checkpoint(path: str) -> dict[str, np.ndarray]:
    """Read every variable of a checkpoint into NumPy arrays, keyed by name.

    xz-compressed data shards (``*.data-*.xz``) are decompressed into a temporary folder first.

    Raises:
      CheckpointError: the checkpoint is missing, truncated or not a TF checkpoint.
    """
    prefix = resolve_checkpoint_prefix(path)
    directory, base = os.path.split(prefix)
    compressed = [
        f
        for f in os.listdir(directory or ".")
        if f.startswith(base + ".data-") and f.endswith(".xz")
    ]
    if not compressed:
        return _read_prefix(prefix)
    with tempfile.TemporaryDirectory(prefix="deepfill_ckpt_") as tmp:
        shutil.copy(prefix + ".index", os.path.join(tmp, base + ".index"))
        for name in compressed:
            try:
                with (
                    lzma.open(os.path.join(directory, name)) as src,
                    open(os.path.join(tmp, name[: -len(".xz")]), "wb") as dst,
                ):
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (lzma.LZMAError, EOFError) as e:
                raise CheckpointError(f"corrupt compressed checkpoint shard {name}: {e}") from None
        return _read_prefix(os.path.join(tmp, base))


def _read_prefix(prefix: str) -> dict[str, np.ndarray]:
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        return {
            name: np.asarray(reader.get_tensor(name))
            for name in shapes
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
        }
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {prefix}: {first_line}") from None


def tf1_variable_table(model: tf.Module | object, scope: str | None = None) -> dict:
    """Map original TF1 variable names to a Keras model's variables.

    A model may define ``tf1_variable_table()`` itself; otherwise each variable's Keras path is
    taken relative to the model (everything up to and including the model's own name is
    dropped) and prefixed with ``scope`` (default: the model's name). Non-trainable variables
    are included (e.g. spectral-norm ``u``).
    """
    custom = getattr(model, "tf1_variable_table", None)
    if callable(custom):
        return custom()
    scope = scope or model.name
    table = {}
    for variable in model.weights:
        parts = variable.path.split("/")
        rel = parts[parts.index(model.name) + 1 :] if model.name in parts else parts
        table[f"{scope}/{'/'.join(rel)}"] = variable
    return table


def assign_strict(
    targets: Mapping[str, object],
    source: Mapping[str, np.ndarray],
    *,
    scopes: Iterable[str],
    ignore: Callable[[str], bool] = is_optimiser_key,
    what: str = "model",
) -> None:
    """Assign ``source`` arrays to ``targets`` variables, all or nothing.

    Every target needs a source array of the same shape; every source key that lies under one
    of ``scopes`` and is not ``ignore``d must be used.

    Raises:
      CheckpointError: naming the missing, unexpected and mis-shaped variables.
    """
    scopes = tuple(s.rstrip("/") + "/" for s in scopes)
    relevant = {k for k in source if k.startswith(scopes) and not ignore(k)}
    missing = sorted(k for k in targets if k not in source)
    unexpected = sorted(relevant - set(targets))
    misshaped = sorted(
        f"{k} {list(source[k].shape)} vs {list(targets[k].shape)}"
        for k in targets
        if k in source and tuple(source[k].shape) != tuple(targets[k].shape)
    )
    if not relevant and missing:
        found = sorted({k.split("/")[0] for k in source if not ignore(k)})
        raise CheckpointError(
            f"checkpoint has no variables under {', '.join(s[:-1] for s in scopes)} for the {what}"
            f" (its top-level scopes: {', '.join(found) or 'none'})"
        )
    problems = []
    if missing:
        problems.append(f"missing {_shortlist(missing)}")
    if unexpected:
        problems.append(f"unexpected {_shortlist(unexpected)}")
    if misshaped:
        problems.append(f"mis-shaped {_shortlist(misshaped)}")
    if problems:
        raise CheckpointError(f"checkpoint does not match the {what}: " + "; ".join(problems))
    for key, variable in targets.items():
        variable.assign(np.asarray(source[key], dtype=np.dtype(_numpy_dtype(variable))))


def _shortlist(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    more = len(items) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown


def load_tf1_checkpoint(
    model, path: str, *, source: Mapping[str, np.ndarray] | None = None
) -> None:
    """Load an original-layout (TF1) checkpoint into a built Keras ``model``, strictly.

    Args:
      model: a built model of this package (its variables named after the original scopes).
      path: checkpoint directory (with ``checkpoint`` / ``checkpoint.txt``) or prefix.
      source: already-read variables (from ``read_tf1_checkpoint``), to avoid reading twice.

    Raises:
      CheckpointError: unreadable checkpoint, or variables missing / unexpected / mis-shaped.
    """
    if not model.built:
        raise ValueError("build the model (call it once) before loading weights into it")
    source = read_tf1_checkpoint(path) if source is None else source
    targets = tf1_variable_table(model)
    scopes = getattr(model, "tf1_scopes", None) or sorted({k.split("/")[0] for k in targets})
    assign_strict(targets, source, scopes=scopes, what=type(model).__name__)


def write_tf1_checkpoint(
    variables: Mapping[str, np.ndarray], directory: str, name: str = "model.ckpt"
) -> str:
    """Write ``variables`` as a name-based (TF1 layout) checkpoint ``directory/name``.

    The result loads with the original code's ``tf.train.Saver`` as well as with
    ``read_tf1_checkpoint``. A ``checkpoint`` state file with a relative path is written beside
    it. Files are written in a temporary folder first and moved into place, so an interrupted
    write never leaves a half checkpoint under the final name.

    Returns:
      the checkpoint prefix.
    """
    os.makedirs(directory, exist_ok=True)
    names = sorted(variables)
    with tempfile.TemporaryDirectory(prefix=".tmp-ckpt-", dir=directory) as tmp:
        tmp_prefix = os.path.join(tmp, name)
        tf.raw_ops.SaveV2(
            prefix=tmp_prefix,
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=[tf.convert_to_tensor(variables[k]) for k in names],
        )
        for filename in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, filename), os.path.join(directory, filename))
    state = f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n'
    write_atomic(os.path.join(directory, "checkpoint"), state)
    return os.path.join(directory, name)


def _numpy_dtype(variable) -> str:
    """NumPy dtype name of a tf.Variable or keras.Variable."""
    dtype = variable.dtype
    return getattr(dtype, "name", None) or str(dtype)
