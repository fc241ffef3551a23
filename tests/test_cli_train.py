"""``deepfill-tf train``: one-line config errors, SIGTERM checkpoints, and (slow) an original
v2 inpaint.yml trained end to end through the CLI, stopped by SIGTERM and resumed.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.training.loop import Trainer
from tests.test_neuralgym_compat import V2_YML
from tests.test_training_loop import FakeTask, _events, constant_images, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def write_images(folder: pathlib.Path, n: int = 4, size: int = 64) -> list[pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _error_line(capsys, argv) -> str:
    code = main(["train", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert len(err) == 1, err
    assert err[0].startswith("deepfill-tf train: error: ")
    return err[0][len("deepfill-tf train: error: ") :]


def test_unknown_key_is_a_one_line_error(capsys, tmp_path):
    message = _error_line(capsys, ["--config", "deepfill_v2_tiny", "--set", "batch_szie=4"])
    assert message.startswith("--set 'batch_szie=4': unknown key 'batch_szie'")
    assert "did you mean 'batch_size'?" in message

    bad = tmp_path / "bad.yml"
    bad.write_text("model: deepfill_v2\nlearning_rate: 0.1\n")
    message = _error_line(capsys, ["--config", str(bad)])
    assert message.startswith(f"{bad}: unknown key 'learning_rate'")


def test_missing_data_is_a_one_line_error(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    message = _error_line(
        capsys, ["--config", "deepfill_v2_tiny", "--set", f"train_data={missing}"]
    )
    assert message == f"key 'train_data': {missing}: no such file list, folder or glob match"
    message = _error_line(capsys, ["--config", "deepfill_v2_tiny", "--set", "train_data="])
    assert message.startswith("key 'train_data' is empty")


def test_empty_flist_is_a_one_line_error(capsys, tmp_path):
    empty = tmp_path / "train.flist"
    empty.write_text("\n\n")
    message = _error_line(capsys, ["--config", "deepfill_v2_tiny", "--set", f"train_data={empty}"])
    assert message == f"key 'train_data': file list {empty} lists no image paths"


def test_logical_cpus_after_tensorflow_started_is_a_one_line_error(capsys, tmp_path):
    write_images(tmp_path / "images")
    message = _error_line(
        capsys,
        [
            "--config",
            "deepfill_v2_tiny",
            "--set",
            f"train_data={tmp_path / 'images'}",
            "--logical-cpus",
            "3",
        ],
    )
    assert message.startswith("cannot split the CPU into 3 logical devices: TensorFlow has already")


def test_sigterm_stops_after_the_step_and_writes_a_checkpoint(tmp_path):
    config = tiny_config(tmp_path, "train_spe=1000")
    messages = []

    def terminate(step, metrics):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = Trainer(config, task=FakeTask(), log=messages.append)
    result = trainer.fit(100, dataset=constant_images()[0], interactive=False, on_step=terminate)
    run = tmp_path / "run"
    assert (result.stopped_by, result.step, result.checkpoint) == (
        "SIGTERM",
        3,
        str(run / "ckpt-3"),
    )
    assert messages[-1] == f"stopped by SIGTERM at step 3; checkpoint {run / 'ckpt-3'}"
    assert (run / "ckpt-3.index").is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler removed again


def _train_cmd(yml, *extra):
    return [
        sys.executable,
        "-m",
        "deepfill_tf.cli.main",
        "train",
        "--config",
        str(yml),
        # the original file's own sizes, shrunk for a test (ours after translation)
        "--set",
        "img_shapes=[64, 64, 3]",
        "--set",
        "height=32",
        "--set",
        "width=32",
        "--set",
        "max_delta_height=8",
        "--set",
        "max_delta_width=8",
        "--set",
        "batch_size=2",
        "--set",
        "cnum=8",
        "--set",
        "disc_cnum=8",
        "--set",
        "static_view_size=2",
        "--set",
        "val=True",
        "--set",
        "val_psteps=2",
        "--log-every",
        "1",
        *extra,
    ]


@pytest.mark.slow
def test_original_v2_inpaint_yml_trains_stops_on_sigterm_and_resumes(tmp_path):
    """The unchanged v2 inpaint.yml (its celebahq flists relative to the working directory),
    two logical CPUs; SIGTERM after a few steps writes a checkpoint; the same command resumes."""
    data = tmp_path / "data" / "celeba_hq"
    images = write_images(tmp_path / "images")
    data.mkdir(parents=True)
    (data / "train_shuffled.flist").write_text("".join(f"{p}\n" for p in images))
    (data / "validation_static_view.flist").write_text("".join(f"{p}\n" for p in images[:2]))
    yml = tmp_path / "inpaint.yml"
    yml.write_text(V2_YML)
    rel = "logs/full_model_celeba_hq_256"  # log_dir as the file writes it: relative
    run = tmp_path / rel
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}

    proc = subprocess.Popen(
        _train_cmd(yml, "--logical-cpus", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    lines = []
    deadline = time.monotonic() + 600
    while not any(x.startswith("step 3/") for x in lines):
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, (lines, proc.stderr.read()[-3000:])
        lines.append(line.strip())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    lines += out.splitlines()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert lines[0] == "strategy: MirroredStrategy, 2 replicas"
    stop = [x for x in lines if x.startswith("stopped by SIGTERM at step ")]
    assert len(stop) == 1, lines
    step = int(stop[0].split()[5].rstrip(";"))
    assert step >= 3 and stop[0].endswith(f"checkpoint {rel}/ckpt-{step}")
    assert (run / "config.yml").is_file()
    events = _events(run)
    assert "raw_incomplete_predicted_complete" in events and "losses/ae_loss" in events
    static_steps = [s for s, _ in events["static_view/1_raw_incomplete_complete"]]
    assert static_steps == list(range(2, step + 1, 2))  # every val_psteps

    resumed = subprocess.run(
        _train_cmd(yml, "--max-iters", str(step + 1)),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout.splitlines()
    assert out[0] == "strategy: MirroredStrategy, 1 replica"
    assert out[1] == f"resumed from step {step} ({rel}/ckpt-{step})"
    assert out[-1] == f"finished at step {step + 1}; checkpoint {rel}/ckpt-{step + 1}"
