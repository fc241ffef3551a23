"""A resumed run reads the images an uninterrupted one reads, in the same order with the same
crops: N steps straight and N/2 steps + a new process-like Trainer resuming for N/2 more give
identical weights on the tiny DeepFill v2 config (real data pipeline, real losses)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.config import load_config
from deepfill_tf.training.loop import Trainer
from deepfill_tf.training.task import Phase, batches_before


def test_batches_before_follows_the_phase_recipes():
    phases = [
        Phase("g", (("generator", 1),), end=3),
        Phase("d", (("discriminator", 2),), end=5),
        Phase("joint", (("discriminator", 1), ("generator", 1))),
    ]
    assert [batches_before(phases, s) for s in range(8)] == [0, 1, 2, 3, 5, 7, 9, 11]
    assert batches_before([Phase("only", (("generator", 1),), end=2)], 4) == 4


def _images(folder, count=5, size=80):
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(count):
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size + 8 * i), Image.BILINEAR)
        image.save(folder / f"img_{i}.png")
    return str(folder)


def _weights(trainer) -> dict[str, np.ndarray]:
    return {
        f"{key}/{v.path}": v.numpy()
        for key, model in trainer.task.networks.items()
        for v in model.weights
    }


def _trainer(log_dir, data, initial=None, log=None):
    config = load_config(
        "deepfill_v2_tiny",
        [f"log_dir={log_dir}", f"train_data={data}", "train_spe=2", "val_psteps=1000", "seed=5"],
    )
    trainer = Trainer(config, log=log or (lambda m: None))
    if initial is not None:  # a fresh process draws other initial weights: start alike
        for key, model in trainer.task.networks.items():
            for v in model.weights:
                v.assign(initial[f"{key}/{v.path}"])
    return trainer


@pytest.mark.slow
def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    data = _images(tmp_path / "images")  # 5 images, batch 2: epochs straddle batches
    straight = _trainer(tmp_path / "a", data)
    initial = _weights(straight)
    straight.fit(4, interactive=False)
    want = _weights(straight)

    first = _trainer(tmp_path / "b", data, initial)
    first.fit(2, interactive=False)
    messages = []
    resumed = _trainer(tmp_path / "b", data, log=messages.append)
    resumed.fit(4, interactive=False)
    assert any(m.startswith("resumed from step 2") for m in messages), messages
    got = _weights(resumed)
    worst = max(float(np.abs(got[k] - want[k]).max()) for k in want)
    print(f"max abs weight difference, resumed vs straight: {worst:.3g}")
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
