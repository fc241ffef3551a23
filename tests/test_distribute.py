"""Distribution: two logical CPU devices under MirroredStrategy give the losses and gradients
of one device for the same global batch; a two-process MultiWorkerMirroredStrategy run on
localhost trains a few steps.

Logical devices must be configured before TensorFlow initialises, so each check runs in a
fresh subprocess. Gradients are read through the loop itself: with ``SGD(1.0)`` as the
optimiser, a step changes every weight by minus its (all-reduced) gradient.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]

_COMPARE = r"""
import json, sys
sys.path.insert(0, ".")
from deepfill_tf.training.strategy import make_strategy
mirrored = make_strategy("mirrored", logical_cpus=2)
import keras, numpy as np, tensorflow as tf
from deepfill_tf.config import load_config
from deepfill_tf.training.loop import Trainer

model, log_dir = sys.argv[1], sys.argv[2]
one = tf.distribute.OneDeviceStrategy("/cpu:0")
fake = model == "fake"
config = load_config(
    "deepfill_v2_tiny" if fake else f"{model}_tiny",
    [f"log_dir={log_dir}", "batch_size=4", "d_steps=1"],
)
images = tf.random.stateless_uniform((4, 64, 64, 3), [7, 7], -1.0, 1.0)
dataset = tf.data.Dataset.from_tensors(images).repeat()

def trainer(strategy, sub):
    with strategy.scope():
        sgd = keras.optimizers.SGD(1.0)
        task = None
        if fake:
            from tests.test_training_loop import FakeTask

            task = FakeTask()
    return Trainer(
        config, strategy, task=task, optimizer=sgd, log_dir=f"{log_dir}/{sub}", log=lambda m: None
    )

a, b = trainer(mirrored, "a"), trainer(one, "b")
def weights(t):
    return [v for v in t.task.generator.weights + t.task.discriminator.weights]
for src, dst in zip(weights(a), weights(b)):
    dst.assign(src.numpy())
start = [v.numpy() for v in weights(a)]
out = {"replicas": [a.replicas, b.replicas], "steps": {}}
for name in ("d_step", "g_step"):
    res = {}
    for key, t in (("two", a), ("one", b)):
        for v, w in zip(weights(t), start):
            v.assign(w)
        batch = next(iter(t.strategy.experimental_distribute_dataset(dataset)))
        metrics = getattr(t, name)(batch, t.seed(3))
        res[key] = {
            "metrics": {k: float(v) for k, v in metrics.items()},
            "delta": [(v.path, (v.numpy() - w).tolist()) for v, w in zip(weights(t), start)],
        }
    out["steps"][name] = res
print("RESULT " + json.dumps(out))
"""


def _run_compare(model, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _COMPARE, model, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=600,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[0][len("RESULT ") :])


def _check_same(result):
    assert result["replicas"] == [2, 1]
    for step, res in result["steps"].items():
        for key, want in res["one"]["metrics"].items():
            got = res["two"]["metrics"][key]
            assert got == pytest.approx(want, rel=1e-5, abs=1e-6), f"{step} {key}: {got} vs {want}"
        changed, worst = 0, 0.0
        for (path, two), (_, one) in zip(res["two"]["delta"], res["one"]["delta"], strict=True):
            two, one = np.asarray(two), np.asarray(one)
            scale = max(np.abs(one).max(), 1e-12)
            err = np.abs(two - one)
            assert err.max() <= 2e-4 * scale + 1e-7, (
                f"{step} {path}: max err {err.max():.3g} (rel {err.max() / scale:.3g}) at"
                f" {np.unravel_index(err.argmax(), err.shape)}"
            )
            changed += bool(np.abs(one).max() > 0)
            worst = max(worst, err.max() / scale)
        assert changed > 0, f"{step} changed no weight"
        print(f"{step}: worst relative gradient difference {worst:.2e}")


def test_two_replicas_equal_one_device_loop(tmp_path):
    """The loop's own part (per-replica batches, loss / replicas, gradient all-reduce, metric
    means) with the linear FakeTask: quick."""
    _check_same(_run_compare("fake", tmp_path))


@pytest.mark.slow
def test_two_replicas_equal_one_device_v2(tmp_path):
    """v2 (measured about 20 s on an idle machine): SN-PatchGAN's ``u`` updated per replica."""
    _check_same(_run_compare("deepfill_v2", tmp_path))


@pytest.mark.slow
def test_two_replicas_equal_one_device_v1(tmp_path):
    """v1: includes the gradient penalty's per-sample alphas, drawn for the global batch."""
    _check_same(_run_compare("deepfill_v1", tmp_path))


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_on_localhost(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / f"{i}.png")
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            ),
        }
        cmd = [
            sys.executable,
            "-m",
            "deepfill_tf.cli.main",
            "train",
            "--config",
            "deepfill_v2_tiny",
            "--set",
            f"train_data={images}",
            "--set",
            f"log_dir={tmp_path / 'run'}",
            "--max-iters",
            "3",
        ]
        procs.append(
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
            )
        )
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err[-3000:]}"
    chief_out = outputs[0][0]
    assert (
        "strategy: MultiWorkerMirroredStrategy, 2 replicas on 2 workers (this is worker 0)"
        in chief_out
    )
    assert f"finished at step 3; checkpoint {tmp_path / 'run' / 'ckpt-3'}" in chief_out
    assert outputs[1][0] == ""  # only the chief prints
    assert (tmp_path / "run" / "ckpt-3.index").is_file()
    assert not list((tmp_path / "run").glob(".worker-*"))
