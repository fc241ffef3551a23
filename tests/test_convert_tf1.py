"""Interoperability of our training checkpoints: ``load_generator`` (inpaint, export) reads a
run directory or a ``ckpt-N`` prefix, and ``deepfill-tf convert --to tf1`` writes the
generator in the original TF1 layout, which loads back and gives the same outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.config import load_config
from deepfill_tf.convert.tf1_checkpoint import read_tf1_checkpoint, tf1_variable_table
from deepfill_tf.errors import CheckpointError
from deepfill_tf.inference.loading import load_generator
from deepfill_tf.registry import ModelSpec
from deepfill_tf.training.loop import Trainer, prepare_run_dir


@pytest.fixture(scope="module", params=["deepfill_v2", "deepfill_v1"])
def run(request, tmp_path_factory):
    """A run directory with one checkpoint (step 0) of a tiny model, and its trainer."""
    model = request.param
    log_dir = tmp_path_factory.mktemp(model) / "run"
    config = load_config(f"{model}_tiny", [f"log_dir={log_dir}"])
    trainer = Trainer(config, log=lambda m: None)
    prepare_run_dir(config, str(log_dir))
    trainer.checkpoints.save()
    return log_dir, trainer


def _inputs(seed=0):
    image = tf.random.stateless_uniform((1, 64, 64, 3), [seed, 0], -1.0, 1.0)
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[:, 20:44, 12:40] = 1.0
    return image, tf.constant(mask)


def _assert_same_outputs(a, b, what):
    image, mask = _inputs()
    for name, x, y in zip(("x1", "x2", "flow"), a(image, mask), b(image, mask), strict=True):
        err = np.abs(np.asarray(x) - np.asarray(y))
        assert err.max() == 0.0, f"{what} {name}: max err {err.max():.3g}, mean {err.mean():.3g}"


def test_load_generator_reads_run_dir_and_prefix(run):
    log_dir, trainer = run
    config = trainer.config
    for path in (str(log_dir), str(log_dir / "ckpt-0")):
        generator, spec = load_generator(path)
        assert spec == ModelSpec(config.model, {"cnum": config.cnum, "guided": False})
        _assert_same_outputs(generator, trainer.task.generator, path)
    other = "deepfill_v1" if config.model == "deepfill_v2" else "deepfill_v2"
    with pytest.raises(CheckpointError, match=f"not {other}"):
        load_generator(str(log_dir), other)


def test_convert_to_tf1_loads_back_with_the_same_outputs(run, tmp_path, capsys):
    log_dir, trainer = run
    out = tmp_path / "tf1"
    assert main(["convert", "--to", "tf1", "--checkpoint", str(log_dir), "--output", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out / 'snap-0'} (")
    variables = read_tf1_checkpoint(str(out))
    table = tf1_variable_table(trainer.task.generator)
    assert sorted(variables) == sorted(table)
    assert len(variables) == 84 and all(k.startswith("inpaint_net/") for k in variables)
    for name, variable in table.items():
        np.testing.assert_array_equal(variables[name], variable.numpy(), err_msg=name)
    # Loaded through the TF1 path (no object graph, original names) it is the same network.
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in dict(tf.train.list_variables(str(out / "snap-0")))
    generator, spec = load_generator(str(out))
    assert spec.name == trainer.config.model
    _assert_same_outputs(generator, trainer.task.generator, "converted")


def test_convert_with_discriminator(run, tmp_path, capsys):
    log_dir, trainer = run
    out = tmp_path / "tf1"
    argv = ["convert", "--to", "tf1", "--checkpoint", str(log_dir / "ckpt-0"), "--output", str(out)]
    assert main([*argv, "--with-discriminator"]) == 0
    capsys.readouterr()
    variables = read_tf1_checkpoint(str(out))
    disc = tf1_variable_table(trainer.task.discriminator)
    assert set(disc) < set(variables)
    assert len(variables) == 84 + len(disc)
    for name, variable in disc.items():
        np.testing.assert_array_equal(variables[name], variable.numpy(), err_msg=name)


def test_convert_refuses_what_is_not_a_run(run, tmp_path, capsys):
    log_dir, _ = run
    out = tmp_path / "tf1"
    main(["convert", "--to", "tf1", "--checkpoint", str(log_dir), "--output", str(out)])
    capsys.readouterr()
    code = main(
        ["convert", "--to", "tf1", "--checkpoint", str(out), "--output", str(tmp_path / "x")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0] == (
        f"deepfill-tf convert: error: {out} is not a deepfill-tf training run or checkpoint"
        " (an original TF1 checkpoint is already in the TF1 layout)"
    )


def test_run_config_must_match_the_checkpoint(run, tmp_path):
    log_dir, trainer = run
    copy = tmp_path / "run"
    copy.mkdir()
    for f in log_dir.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    text = (copy / "config.yml").read_text()
    (copy / "config.yml").write_text(text.replace(f"cnum: {trainer.config.cnum}\n", "cnum: 16\n"))
    with pytest.raises(CheckpointError, match="describes a .* with cnum 16"):
        load_generator(str(copy))


def test_inpaint_cli_uses_a_run_dir(run, tmp_path, capsys):
    log_dir, _ = run
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 20:44] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    argv = ["inpaint", "--checkpoint", str(log_dir), "--image", str(tmp_path / "in.png")]
    argv += ["--mask", str(tmp_path / "mask.png"), "--output", str(tmp_path / "out.png")]
    assert main(argv) == 0, capsys.readouterr().err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(
        out[mask == 0], np.asarray(Image.open(tmp_path / "in.png"))[mask == 0]
    )


def test_model_restore_from_an_original_layout_checkpoint(run, tmp_path, capsys):
    """A new run with ``model_restore`` = a TF1 checkpoint (here our converted run with its
    discriminator) starts from those weights, as the original's ModelRestorer."""
    log_dir, trainer = run
    tf1 = tmp_path / "tf1"
    argv = ["convert", "--to", "tf1", "--checkpoint", str(log_dir), "--output", str(tf1)]
    assert main([*argv, "--with-discriminator"]) == 0
    capsys.readouterr()
    config = load_config(
        f"{trainer.config.model}_tiny", [f"log_dir={tmp_path / 'new'}", f"model_restore={tf1}"]
    )
    messages = []
    fresh = Trainer(config, log=messages.append)
    assert fresh.restore() == 0
    assert messages == [
        f"initialised the generator and discriminator from the original checkpoint {tf1 / 'snap-0'}"
        "; the optimizer starts fresh (the checkpoint holds no optimizer state)"
    ]
    # The original saves Adam slots and counters: the message says they are not restored.
    from deepfill_tf.convert import read_tf1_checkpoint, write_tf1_checkpoint

    variables = read_tf1_checkpoint(str(tf1))
    kernel = next(k for k in variables if k.endswith("/kernel"))
    slots = {f"{kernel}/Adam": variables[kernel], f"{kernel}/Adam_1": variables[kernel]}
    slots["beta1_power"] = np.float32(0.5)
    write_tf1_checkpoint({**variables, **slots}, str(tmp_path / "with_adam"), name="snap-7")
    config = load_config(
        f"{trainer.config.model}_tiny",
        [f"log_dir={tmp_path / 'new2'}", f"model_restore={tmp_path / 'with_adam'}"],
    )
    messages = []
    assert Trainer(config, log=messages.append).restore() == 0
    assert messages[0].endswith(
        "; the optimizer starts fresh (the checkpoint's 3 Adam slot and counter variables are"
        " not restored; Adam re-estimates its moments in the first steps)"
    ), messages
    for old, new in (
        (trainer.task.generator, fresh.task.generator),
        (trainer.task.discriminator, fresh.task.discriminator),
    ):
        for a, b in zip(old.weights, new.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
