"""The strict TF1 checkpoint reader: layouts it accepts and the errors it gives."""

from __future__ import annotations

import lzma
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.convert import (
    assign_strict,
    read_tf1_checkpoint,
    resolve_checkpoint_prefix,
    write_tf1_checkpoint,
)
from deepfill_tf.convert.tf1_checkpoint import is_optimiser_key
from deepfill_tf.errors import CheckpointError

VARIABLES = {
    "inpaint_net/conv1/kernel": np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3),
    "inpaint_net/conv1/bias": np.ones(3, np.float32),
    "inpaint_net/conv1/kernel/Adam": np.zeros((2, 2, 2, 3), np.float32),
    "beta1_power": np.float32(0.5),
    "discriminator/conv1/kernel": np.ones((1, 1), np.float32),
}


@pytest.fixture
def ckpt_dir(tmp_path):
    write_tf1_checkpoint(VARIABLES, str(tmp_path / "run"), "snap-100")
    return tmp_path / "run"


def test_round_trip_and_layouts(ckpt_dir, tmp_path):
    read = read_tf1_checkpoint(str(ckpt_dir))
    assert set(read) == set(VARIABLES)
    np.testing.assert_array_equal(
        read["inpaint_net/conv1/kernel"], VARIABLES["inpaint_net/conv1/kernel"]
    )
    prefix = str(ckpt_dir / "snap-100")
    assert resolve_checkpoint_prefix(str(ckpt_dir)) == prefix
    assert resolve_checkpoint_prefix(prefix) == prefix
    assert resolve_checkpoint_prefix(prefix + ".index") == prefix
    # Google Drive renames the state file checkpoint.txt.
    os.rename(ckpt_dir / "checkpoint", ckpt_dir / "checkpoint.txt")
    assert resolve_checkpoint_prefix(str(ckpt_dir)) == prefix
    # No state file and a single index: that one.
    os.remove(ckpt_dir / "checkpoint.txt")
    assert resolve_checkpoint_prefix(str(ckpt_dir)) == prefix


def test_state_file_with_absolute_path_of_another_machine(ckpt_dir):
    (ckpt_dir / "checkpoint").write_text('model_checkpoint_path: "/home/someone/logs/snap-100"\n')
    assert resolve_checkpoint_prefix(str(ckpt_dir)) == str(ckpt_dir / "snap-100")


def test_xz_compressed_shard(ckpt_dir):
    (data,) = [f for f in os.listdir(ckpt_dir) if ".data-" in f]
    with open(ckpt_dir / data, "rb") as src, lzma.open(ckpt_dir / (data + ".xz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(ckpt_dir / data)
    read = read_tf1_checkpoint(str(ckpt_dir))
    np.testing.assert_array_equal(
        read["inpaint_net/conv1/bias"], VARIABLES["inpaint_net/conv1/bias"]
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "nowhere", "not found"),
        (lambda d: d, "no checkpoint in"),
    ],
)
def test_missing_checkpoint_errors(tmp_path, make, message):
    with pytest.raises(CheckpointError, match=message):
        read_tf1_checkpoint(str(make(tmp_path)))


def test_truncated_checkpoint_is_a_checkpoint_error(ckpt_dir):
    (data,) = [f for f in os.listdir(ckpt_dir) if ".data-" in f]
    with open(ckpt_dir / data, "r+b") as f:
        f.truncate(10)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        read_tf1_checkpoint(str(ckpt_dir))


def test_garbage_index_is_a_checkpoint_error(tmp_path):
    (tmp_path / "model.ckpt.index").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        read_tf1_checkpoint(str(tmp_path))


def test_state_file_naming_a_missing_checkpoint(tmp_path):
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "snap-7"\n')
    with pytest.raises(CheckpointError, match="snap-7.index is not in"):
        resolve_checkpoint_prefix(str(tmp_path))


def test_optimiser_keys():
    assert is_optimiser_key("inpaint_net/conv1/kernel/Adam_1")
    assert is_optimiser_key("beta2_power")
    assert is_optimiser_key("lr") and is_optimiser_key("global_step")
    assert not is_optimiser_key("inpaint_net/conv1/kernel")


def _targets():
    return {
        "inpaint_net/conv1/kernel": tf.Variable(tf.zeros((2, 2, 2, 3))),
        "inpaint_net/conv1/bias": tf.Variable(tf.zeros(3)),
    }


def test_assign_strict_assigns_and_ignores_other_scopes_and_slots():
    targets = _targets()
    assign_strict(targets, VARIABLES, scopes=["inpaint_net"])
    np.testing.assert_array_equal(
        targets["inpaint_net/conv1/kernel"].numpy(), VARIABLES["inpaint_net/conv1/kernel"]
    )


def test_assign_strict_names_missing_unexpected_and_misshaped():
    source = dict(VARIABLES)
    del source["inpaint_net/conv1/bias"]
    source["inpaint_net/conv9/kernel"] = np.zeros(1, np.float32)
    source["inpaint_net/conv1/kernel"] = np.zeros((3, 3, 2, 3), np.float32)
    targets = _targets()
    with pytest.raises(CheckpointError) as info:
        assign_strict(targets, source, scopes=["inpaint_net"], what="generator")
    message = str(info.value)
    assert "missing inpaint_net/conv1/bias" in message
    assert "unexpected inpaint_net/conv9/kernel" in message
    assert "mis-shaped inpaint_net/conv1/kernel [3, 3, 2, 3] vs [2, 2, 2, 3]" in message
    assert "\n" not in message
    # all or nothing: nothing was assigned
    assert float(tf.reduce_sum(tf.abs(targets["inpaint_net/conv1/kernel"]))) == 0.0


def test_assign_strict_wrong_model_names_the_scopes():
    with pytest.raises(CheckpointError, match="no variables under inpaint_net.*discriminator"):
        assign_strict(_targets(), {"discriminator/x": np.zeros(1)}, scopes=["inpaint_net"])
