"""Training any registered family: one generic loop (``Trainer``) running the family's task.

The family's task (``Family.make_task``, contract in ``task.py``) holds the losses and the
schedule; the loop (``loop.py``) runs its steps under a ``tf.distribute`` strategy
(``strategy.py``) with checkpoints (``checkpointing.py``) and TensorBoard summaries
(``summaries.py``).
"""

from deepfill_tf.training.checkpointing import RunCheckpoint
from deepfill_tf.training.loop import Trainer, TrainingError, TrainResult, prepare_run_dir
from deepfill_tf.training.strategy import (
    STRATEGIES,
    configure_logical_cpus,
    describe_strategy,
    make_strategy,
)
from deepfill_tf.training.task import AdversarialTask, Objective, Phase, Task

__all__ = [
    "STRATEGIES",
    "AdversarialTask",
    "Objective",
    "Phase",
    "RunCheckpoint",
    "Task",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "configure_logical_cpus",
    "describe_strategy",
    "make_strategy",
    "prepare_run_dir",
]
