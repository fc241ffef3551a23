"""Training DeepFill v1 / v2 as the original: one generic loop (``Trainer``) running a task.

The tasks (``task.py``) hold the original losses; the loop (``loop.py``) runs their D and G
steps under a ``tf.distribute`` strategy (``strategy.py``) with one shared Adam, checkpoints
(``checkpointing.py``) and TensorBoard summaries (``summaries.py``).
"""

from deepfill_tf.training.checkpointing import (
    CONFIG_NAME,
    RunCheckpoint,
    read_run_checkpoint,
    resolve_run_checkpoint,
)
from deepfill_tf.training.loop import (
    Trainer,
    TrainingError,
    TrainResult,
    make_optimizer,
    prepare_run_dir,
    train,
)
from deepfill_tf.training.strategy import (
    STRATEGIES,
    configure_logical_cpus,
    describe_strategy,
    make_strategy,
)
from deepfill_tf.training.task import DeepFillV1Task, DeepFillV2Task, make_task

__all__ = [
    "CONFIG_NAME",
    "STRATEGIES",
    "DeepFillV1Task",
    "DeepFillV2Task",
    "RunCheckpoint",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "configure_logical_cpus",
    "describe_strategy",
    "make_optimizer",
    "make_strategy",
    "make_task",
    "prepare_run_dir",
    "read_run_checkpoint",
    "resolve_run_checkpoint",
    "train",
]
