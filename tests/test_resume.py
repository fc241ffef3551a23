"""Checkpoints and resume: a resumed run continues at the saved step with identical weights;
a process killed with SIGKILL (also while saving) never leaves a corrupt latest checkpoint.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.convert.run_checkpoint import read_run_checkpoint
from deepfill_tf.training.loop import Trainer
from tests.test_training_loop import FakeTask, constant_images, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def _weights(task) -> dict[str, np.ndarray]:
    return {v.path: v.numpy() for v in task.generator.weights + task.discriminator.weights}


def test_resume_continues_at_saved_step_with_identical_weights(tmp_path):
    dataset, _ = constant_images()
    # Straight through: 4 steps.
    straight = Trainer(
        tiny_config(tmp_path / "a", "train_spe=2"), task=FakeTask(d_steps=2), log=print
    )
    initial = _weights(straight.task)
    straight.fit(4, dataset=dataset, interactive=False)

    # Interrupted: 2 steps from the same initial weights, then a new trainer (fresh random
    # weights, as in a new process) resumes.
    config = tiny_config(tmp_path / "b", "train_spe=2")
    first = Trainer(config, task=FakeTask(d_steps=2), log=print)
    for v in first.task.generator.weights + first.task.discriminator.weights:
        v.assign(initial[v.path])
    first.fit(2, dataset=dataset, interactive=False)
    saved = _weights(first.task)
    saved_slots = [v.numpy() for v in first.optimizer.variables]

    messages = []
    second = Trainer(config, task=FakeTask(d_steps=2), log=messages.append)
    assert second.restore() == 2
    for path, value in _weights(second.task).items():
        np.testing.assert_array_equal(value, saved[path], err_msg=path)
    for got, want in zip(second.optimizer.variables, saved_slots, strict=True):
        np.testing.assert_array_equal(got.numpy(), want, err_msg=got.path)
    assert int(second.optimizer.iterations.numpy()) == 6  # 2 x (2 D + 1 G)

    result = second.fit(4, dataset=dataset, interactive=False)
    assert f"resumed from step 2 ({tmp_path / 'b' / 'run' / 'ckpt-2'})" in messages
    assert (result.start_step, result.step) == (2, 4)
    for path, value in _weights(straight.task).items():
        np.testing.assert_allclose(
            _weights(second.task)[path], value, rtol=0, atol=1e-7, err_msg=path
        )


def test_checkpoint_holds_generator_discriminator_by_tf1_names(tmp_path):
    dataset, _ = constant_images()
    trainer = Trainer(tiny_config(tmp_path), task=FakeTask(), log=lambda m: None)
    trainer.fit(1, dataset=dataset, interactive=False)
    stored = read_run_checkpoint(str(tmp_path / "run" / "ckpt-1"))
    assert sorted(stored) == [
        "discriminator/fc/bias",
        "discriminator/fc/kernel",
        "global_step",
        "inpaint_net/fc/bias",
        "inpaint_net/fc/kernel",
    ]
    assert int(stored["global_step"]) == 1
    np.testing.assert_array_equal(
        stored["inpaint_net/fc/kernel"], trainer.task.generator.fc.kernel.numpy()
    )


def test_half_written_checkpoint_is_ignored(tmp_path):
    """What a kill during a save can leave (a temp folder, a data file without index) is not
    picked up: the state file still names the previous checkpoint, and saving goes on."""
    dataset, _ = constant_images()
    config = tiny_config(tmp_path, "train_spe=1")
    Trainer(config, task=FakeTask(), log=lambda m: None).fit(2, dataset=dataset, interactive=False)
    run = tmp_path / "run"
    (run / "ckpt-3_temp").mkdir()
    (run / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 10)
    (run / "ckpt-3.data-00000-of-00001").write_bytes(b"\0" * 10)
    messages = []
    trainer = Trainer(config, task=FakeTask(), log=messages.append)
    result = trainer.fit(3, dataset=dataset, interactive=False)
    assert f"resumed from step 2 ({run / 'ckpt-2'})" in messages
    assert result.checkpoint == str(run / "ckpt-3")
    assert int(read_run_checkpoint(result.checkpoint)["global_step"]) == 3


_KILLED_RUN = """
import sys
sys.path.insert(0, {repo!r})
from deepfill_tf.config import load_config
from deepfill_tf.training.loop import Trainer
from tests.test_training_loop import FakeTask, constant_images
config = load_config("deepfill_v2_tiny", ["log_dir={log_dir}", "train_spe=1", "val_psteps=1000"])
Trainer(config, task=FakeTask()).fit(10**6, dataset=constant_images()[0], interactive=False, log_every=1)
"""


def _latest_step(run: pathlib.Path) -> int | None:
    latest = tf.train.latest_checkpoint(str(run))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


@pytest.mark.parametrize(
    "kills", [1, pytest.param(5, marks=pytest.mark.slow, id="5-kills")], ids=lambda k: f"{k}-kill"
)
def test_sigkill_loses_at_most_the_unsaved_steps(tmp_path, kills):
    """Kill a training process (checkpoint every step, so kills often land inside a save);
    every time the latest checkpoint loads and the next run resumes from it."""
    run = tmp_path / "run"
    script = _KILLED_RUN.format(repo=str(REPO), log_dir=str(run))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rng = np.random.default_rng(0)
    for _ in range(kills):
        before = _latest_step(run)
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=REPO,
        )
        try:
            lines = []
            deadline = time.monotonic() + 60
            while len([x for x in lines if x.startswith("step ")]) < 5:
                line = proc.stdout.readline()
                assert line, f"training process ended early: {lines}"
                lines.append(line.strip())
                assert time.monotonic() < deadline, lines
            time.sleep(float(rng.uniform(0.0, 0.05)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        steps = [int(m.group(1)) for x in lines if (m := re.match(r"step (\d+)/", x))]
        if before is not None:
            assert f"resumed from step {before} ({run / f'ckpt-{before}'})" in lines
        latest = _latest_step(run)
        # Printed steps finished; at most the one being saved when killed is lost.
        assert latest is not None and latest >= steps[-1] - 1, (latest, steps)
        # The latest and every checkpoint with files on disk is complete. (The state file's
        # list of older checkpoints may still name the oldest one just deleted by rotation:
        # CheckpointManager deletes it before rewriting the state file.)
        prefixes = [str(p)[: -len(".index")] for p in run.glob("ckpt-*.index")]
        assert tf.train.latest_checkpoint(str(run)) in prefixes
        for prefix in prefixes:
            stored = read_run_checkpoint(prefix)
            assert int(stored["global_step"]) == int(prefix.rsplit("-", 1)[1])


def test_resume_takes_the_learning_rate_of_the_config(tmp_path):
    dataset, _ = constant_images()
    Trainer(tiny_config(tmp_path, "lr=0.01"), task=FakeTask(), log=lambda m: None).fit(
        1, dataset=dataset, interactive=False
    )
    again = Trainer(tiny_config(tmp_path, "lr=0.002"), task=FakeTask(), log=lambda m: None)
    assert again.restore() == 1
    assert float(again.optimizer.learning_rate.numpy()) == pytest.approx(0.002)
