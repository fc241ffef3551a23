"""Reading and writing checkpoints in the original TF1 layout."""

from deepfill_tf.convert.tf1_checkpoint import (
    assign_strict,
    load_tf1_checkpoint,
    read_tf1_checkpoint,
    resolve_checkpoint_prefix,
    tf1_variable_table,
    write_tf1_checkpoint,
)

__all__ = [
    "assign_strict",
    "load_tf1_checkpoint",
    "read_tf1_checkpoint",
    "resolve_checkpoint_prefix",
    "tf1_variable_table",
    "write_tf1_checkpoint",
]
from deepfill_tf.convert.torch7 import assign_torch7, module_specs, read_t7, walk_modules  # noqa: F401, E402
