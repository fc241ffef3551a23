"""A truncated or unreadable latest training checkpoint (a kill or a full disk while saving):
resume, and every reader of a run directory (inpaint, export, convert), fall back to the newest
readable checkpoint with a warning; a checkpoint given by prefix is refused in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest

from deepfill_tf.convert.run_checkpoint import (
    checkpoint_problem,
    newest_readable_checkpoint,
    resolve_run_checkpoint,
    run_checkpoints,
)
from deepfill_tf.errors import CheckpointError
from deepfill_tf.training.loop import Trainer
from tests.test_training_loop import FakeTask, constant_images, tiny_config


def _truncate(prefix: str) -> None:
    data = prefix + ".data-00000-of-00001"
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[: len(content) // 2])


@pytest.fixture
def run_dir(tmp_path):
    """A run with checkpoints at steps 2 and 4; returns (run folder, weights at step 2)."""
    dataset, _ = constant_images()
    trainer = Trainer(tiny_config(tmp_path, "train_spe=2"), task=FakeTask(), log=print)
    trainer.fit(2, dataset=dataset, interactive=False)
    at_2 = {v.path: v.numpy() for v in trainer.task.generator.weights}
    trainer.fit(4, dataset=dataset, interactive=False)
    run = str(tmp_path / "run")
    assert [os.path.basename(p) for p in run_checkpoints(run)] == ["ckpt-4", "ckpt-2"]
    return run, at_2


def test_resume_skips_a_truncated_latest_checkpoint_with_a_warning(run_dir, tmp_path):
    run, at_2 = run_dir
    _truncate(os.path.join(run, "ckpt-4"))
    messages = []
    resumed = Trainer(tiny_config(tmp_path, "train_spe=2"), task=FakeTask(), log=messages.append)
    assert resumed.restore() == 2
    warning = next(m for m in messages if m.startswith("warning:"))
    assert "ckpt-4" in warning and "using ckpt-2, the newest readable checkpoint" in warning
    assert f"resumed from step 2 ({os.path.join(run, 'ckpt-2')})" in messages
    for v in resumed.task.generator.weights:
        np.testing.assert_array_equal(v.numpy(), at_2[v.path], err_msg=v.path)


def test_readers_of_a_run_fall_back_and_a_bad_prefix_is_one_line(run_dir, capsys):
    run, _ = run_dir
    latest = os.path.join(run, "ckpt-4")
    assert resolve_run_checkpoint(run) == latest and capsys.readouterr().err == ""
    _truncate(latest)
    assert checkpoint_problem(latest) is not None
    assert resolve_run_checkpoint(run) == os.path.join(run, "ckpt-2")
    err = capsys.readouterr().err
    assert err.startswith("deepfill-tf: warning: ckpt-4 in ") and err.count("\n") == 1, err
    with pytest.raises(CheckpointError, match="ckpt-4 is unreadable") as info:
        resolve_run_checkpoint(latest)
    assert "\n" not in str(info.value)
    _truncate(os.path.join(run, "ckpt-2"))
    with pytest.raises(CheckpointError, match="no readable checkpoint in"):
        newest_readable_checkpoint(run)


def test_a_damaged_state_file_does_not_hide_the_checkpoints(run_dir):
    run, _ = run_dir
    with open(os.path.join(run, "checkpoint"), "wb") as f:
        f.write(b"\xff\xfe garbage")
    assert newest_readable_checkpoint(run) == os.path.join(run, "ckpt-4")
