"""DeepFill discriminators: oracle parity (v2 SN-PatchGAN with its u updates, v1 critics),
strict checkpoint loading, shapes, the standard model checks and MirroredStrategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.convert.tf1_checkpoint import load_tf1_checkpoint, read_tf1_checkpoint
from deepfill_tf.errors import CheckpointError, InputError
from deepfill_tf.models.discriminators import SNPatchGANDiscriminator, WGANLocalGlobalCritics
from deepfill_tf.testing.harness import run_model_test
from deepfill_tf.testing.parity import assert_parity

ATOL = 1e-5  # MANIFEST: discriminator outputs and SN u


def _random(shape, seed):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _converge_u(model):
    """Set every SN u to its kernel's top right-singular vector (a fixed point of the power
    iteration), so the harness' separate calls all see the same sigma."""
    for conv in model.sn_patch_gan.convs:
        kernel = np.asarray(conv.kernel, np.float64).reshape(-1, conv.filters)
        conv.u.assign(np.linalg.svd(kernel, full_matrices=False)[2][:1].astype(np.float32))


# ---------------------------------------------------------------- v2 SN-PatchGAN


def test_sn_patch_gan_parity_two_runs(oracles):
    root = oracles("deepfill_v2")
    x = np.load(root / "disc" / "d_input.npy")  # (2, 128, 96, 4) BGR [-1,1] + mask
    model = SNPatchGANDiscriminator()
    model.build(x.shape)
    load_tf1_checkpoint(model, str(root / "disc_ckpt"))
    table = model.tf1_variable_table()

    u_ckpt = np.load(root / "disc" / "u_ckpt.npz")
    assert sorted(u_ckpt.files) == sorted(k for k in table if k.endswith("kernel_sn/u"))
    for name in u_ckpt.files:
        np.testing.assert_array_equal(np.asarray(table[name]), u_ckpt[name], err_msg=name)

    errors = {}
    for run in (1, 2):
        out = model(x)
        expected = np.load(root / "disc" / f"d_out_run{run}.npy")
        errors[f"d_out_run{run}"] = assert_parity(out, expected, ATOL, f"D output, run {run}")
        u_after = np.load(root / "disc" / f"u_after_run{run}.npz")
        errors[f"u_after_run{run}"] = max(
            assert_parity(table[name], u_after[name], ATOL, f"{name} after run {run}")
            for name in u_after.files
        )
    print("SN-PatchGAN parity (max abs err):", errors)


def test_sn_patch_gan_shapes_and_variable_names():
    model = SNPatchGANDiscriminator.tiny()  # cnum 4 -> last conv 16 channels
    assert model(_random((2, 64, 48, 4), 0)).shape == (2, 1 * 1 * 16)
    guided = SNPatchGANDiscriminator(cnum=4)
    out = guided(_random((3, 130, 70, 5), 1))  # odd sizes: ceil(130/64)=3, ceil(70/64)=2
    assert out.shape == (3, 3 * 2 * 16)
    assert guided.compute_output_shape((3, 130, 70, 5)) == (3, 96)
    table = guided.tf1_variable_table()
    assert len(table) == 18
    assert table["discriminator/sn_patch_gan/conv1/kernel"].shape == (5, 5, 5, 4)
    assert table["discriminator/sn_patch_gan/conv6/kernel_sn/u"].shape == (1, 16)
    widths = [table[f"discriminator/sn_patch_gan/conv{i}/bias"].shape[0] for i in range(1, 7)]
    assert widths == [4, 8, 16, 16, 16, 16]
    assert not table["discriminator/sn_patch_gan/conv3/kernel_sn/u"].trainable
    assert len(guided.trainable_weights) == 12 and len(guided.non_trainable_weights) == 6


def test_sn_patch_gan_published_shapes_match_the_original(oracles):
    variables = json.loads((oracles("deepfill_v2") / "variables.json").read_text())
    entries = variables if isinstance(variables, list) else variables.get("variables", variables)
    expected = {
        v["name"]: tuple(v["shape"]) for v in entries if v["name"].startswith("discriminator/")
    }
    model = SNPatchGANDiscriminator()
    model.build((None, 256, 256, 4))
    got = {name: tuple(var.shape) for name, var in model.tf1_variable_table().items()}
    assert got == expected
    assert sum(int(np.prod(s)) for s in got.values()) == 5_948_032


def test_sn_patch_gan_u_advances_every_call_and_in_tf_function():
    model = SNPatchGANDiscriminator.tiny()
    x = tf.constant(_random((2, 64, 64, 4), 2))
    first = np.asarray(model(x))
    u1 = [np.asarray(c.u) for c in model.sn_patch_gan.convs]
    second = np.asarray(tf.function(model.__call__)(x))
    u2 = [np.asarray(c.u) for c in model.sn_patch_gan.convs]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(u1, u2, strict=True))
    assert np.abs(first - second).max() > 0


def test_sn_patch_gan_standard_checks():
    def factory():
        model = SNPatchGANDiscriminator.tiny()
        model.build((None, 64, 64, 4))
        _converge_u(model)
        return model

    run_model_test(factory, _random((2, 64, 64, 4), 3), (2, 16))


def test_sn_patch_gan_keras_weights_round_trip_keeps_u(tmp_path):
    model = SNPatchGANDiscriminator.tiny()
    x = _random((1, 64, 64, 4), 12)
    model(x)  # u advanced once
    model.save_weights(tmp_path / "d.weights.h5")
    restored = SNPatchGANDiscriminator.tiny()
    restored.build((None, 64, 64, 4))
    restored.load_weights(tmp_path / "d.weights.h5")
    for a, b in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)


def test_sn_patch_gan_defaults():
    model = SNPatchGANDiscriminator()
    assert model.cnum == 64 and model.name == "discriminator"
    assert SNPatchGANDiscriminator.from_config(model.get_config()).cnum == 64
    tiny = SNPatchGANDiscriminator.tiny()
    tiny.build((None, 64, 64, 4))
    for conv in tiny.sn_patch_gan.convs:
        assert np.all(np.asarray(conv.bias) == 0)
        assert np.abs(np.asarray(conv.u)).max() > 0


def test_sn_patch_gan_missing_u_is_named(oracles):
    root = oracles("deepfill_v2")
    source = read_tf1_checkpoint(str(root / "disc_ckpt"))
    del source["discriminator/sn_patch_gan/conv4/kernel_sn/u"]
    model = SNPatchGANDiscriminator()
    model.build((None, 128, 96, 4))
    with pytest.raises(
        CheckpointError, match="missing discriminator/sn_patch_gan/conv4/kernel_sn/u"
    ):
        load_tf1_checkpoint(model, str(root / "disc_ckpt"), source=source)


def test_sn_patch_gan_strict_loader_on_a_synthetic_checkpoint():
    model = SNPatchGANDiscriminator(cnum=4)
    model.build((None, 64, 64, 4))
    source = {k: np.asarray(v) + 1 for k, v in model.tf1_variable_table().items()}
    source["discriminator/sn_patch_gan/conv7/kernel"] = np.zeros((5, 5, 16, 16), np.float32)
    source["discriminator/sn_patch_gan/conv1/kernel/Adam"] = np.zeros((5, 5, 4, 4), np.float32)
    with pytest.raises(CheckpointError, match="unexpected discriminator/sn_patch_gan/conv7/kernel"):
        load_tf1_checkpoint(model, "unused", source=source)
    del source["discriminator/sn_patch_gan/conv7/kernel"]
    load_tf1_checkpoint(model, "unused", source=source)  # optimiser slots are ignored
    u = model.tf1_variable_table()["discriminator/sn_patch_gan/conv2/kernel_sn/u"]
    np.testing.assert_array_equal(
        np.asarray(u), source["discriminator/sn_patch_gan/conv2/kernel_sn/u"]
    )


# ---------------------------------------------------------------- v1 WGAN critics


def test_wgan_critics_parity(oracles):
    root = oracles("deepfill_v1")
    x_global = np.load(root / "disc" / "d_input_global.npy")  # (2, 128, 96, 3)
    x_local = np.load(root / "disc" / "d_input_local.npy")  # (2, 64, 48, 3), already cropped
    top, left = json.loads((root / "disc" / "info.json").read_text())["local_crop_top_left"]
    h, w = x_local.shape[1:3]
    np.testing.assert_array_equal(x_local, x_global[:, top : top + h, left : left + w])

    model = WGANLocalGlobalCritics(image_size=x_global.shape[1:3], local_size=(h, w))
    model.build()
    load_tf1_checkpoint(model, str(root / "disc_ckpt"))
    errors = {}
    for run in (1, 2):  # no state: both runs give the same scores
        d_local, d_global = model(x_local, x_global)
        for what, out in (("local", d_local), ("global", d_global)):
            key = f"d_out_{what}_run{run}"
            expected = np.load(root / "disc" / f"{key}.npy")
            errors[key] = assert_parity(out, expected, ATOL, key)
    print("WGAN critics parity (max abs err):", errors)


def test_wgan_critics_shapes_and_variable_names():
    model = WGANLocalGlobalCritics.tiny()  # cnum 4, 64x64 image, 32x32 patch
    d_local, d_global = model(_random((3, 32, 32, 3), 4), _random((3, 64, 64, 3), 5))
    assert d_local.shape == (3, 1) and d_global.shape == (3, 1)
    table = model.tf1_variable_table()
    assert len(table) == 20
    assert table["discriminator/dout_local_fc/kernel"].shape == (2 * 2 * 32, 1)
    assert table["discriminator/dout_global_fc/kernel"].shape == (4 * 4 * 16, 1)
    assert table["discriminator/discriminator_local/conv4/kernel"].shape == (5, 5, 16, 32)
    assert table["discriminator/discriminator_global/conv4/kernel"].shape == (5, 5, 16, 16)
    assert not model.non_trainable_weights


def test_wgan_critics_published_shapes_match_the_original():
    model = WGANLocalGlobalCritics()  # 256x256 images, 128x128 patches
    model.build()
    table = model.tf1_variable_table()
    assert table["discriminator/dout_local_fc/kernel"].shape == (32768, 1)
    assert table["discriminator/dout_global_fc/kernel"].shape == (65536, 1)
    assert table["discriminator/discriminator_local/conv1/kernel"].shape == (5, 5, 3, 64)
    assert table["discriminator/discriminator_local/conv4/kernel"].shape == (5, 5, 256, 512)
    assert table["discriminator/discriminator_global/conv4/kernel"].shape == (5, 5, 256, 256)


def test_wgan_critics_standard_checks():
    inputs = [_random((2, 32, 24, 3), 6), _random((2, 64, 48, 3), 7)]
    run_model_test(
        lambda: WGANLocalGlobalCritics(cnum=4, image_size=(64, 48), local_size=(32, 24)),
        inputs,
        [(2, 1), (2, 1)],
    )


def test_wgan_critics_wrong_size_is_an_input_error():
    model = WGANLocalGlobalCritics.tiny()
    with pytest.raises(InputError, match="global_image is 96x64x3 but these critics were built"):
        model(_random((1, 32, 32, 3), 8), _random((1, 96, 64, 3), 9))


def test_wgan_critics_checkpoint_for_another_size_is_mis_shaped(oracles):
    root = oracles("deepfill_v1")
    model = WGANLocalGlobalCritics()  # 256x256, but the oracle critics are for 128x96
    model.build()
    with pytest.raises(CheckpointError, match=r"mis-shaped discriminator/dout_global_fc/kernel"):
        load_tf1_checkpoint(model, str(root / "disc_ckpt"))


def test_wgan_critics_missing_dense_is_named(oracles):
    root = oracles("deepfill_v1")
    source = read_tf1_checkpoint(str(root / "disc_ckpt"))
    del source["discriminator/dout_local_fc/bias"]
    model = WGANLocalGlobalCritics(image_size=(128, 96), local_size=(64, 48))
    model.build()
    with pytest.raises(CheckpointError, match="missing discriminator/dout_local_fc/bias"):
        load_tf1_checkpoint(model, str(root / "disc_ckpt"), source=source)


# ---------------------------------------------------------------- distribution

_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf

    # Two logical CPUs must be configured before TF runs any op in this process.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import numpy as np
    from deepfill_tf.layers.spectral_norm import spectral_normalize
    from deepfill_tf.models.discriminators import SNPatchGANDiscriminator

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = SNPatchGANDiscriminator.tiny()
        model.build((None, 64, 64, 4))
    convs = model.sn_patch_gan.convs
    u0 = [np.asarray(c.u) for c in convs]
    expected = [
        np.asarray(spectral_normalize(tf.constant(np.asarray(c.kernel)), tf.constant(u))[1])
        for c, u in zip(convs, u0)
    ]
    x = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 4)).astype(np.float32)
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(4)
    )

    @tf.function
    def forward(batch):
        return strategy.run(model, args=(batch,))

    out = strategy.experimental_local_results(forward(next(iter(dataset))))
    assert [tuple(o.shape) for o in out] == [(2, 16), (2, 16)], [o.shape for o in out]
    single = SNPatchGANDiscriminator.tiny()
    single.build((None, 64, 64, 4))
    single.set_weights([np.asarray(w) for w in model.weights])
    for c, u in zip(single.sn_patch_gan.convs, u0):
        c.u.assign(u)
    reference = np.asarray(single(x))
    got = np.concatenate([np.asarray(o) for o in out])
    assert np.abs(got - reference).max() < 1e-5, np.abs(got - reference).max()
    for c, u, e in zip(convs, u0, expected):
        copies = [np.asarray(v) for v in c.u.value.values]  # MirroredVariable
        assert np.abs(copies[0] - u).max() > 1e-4, "u not updated"
        assert np.abs(copies[0] - e).max() < 1e-6, "u is not one power iteration ahead"
        assert np.array_equal(copies[0], copies[1]), "replica copies of u differ"
    print("OK")
    """
)


@pytest.mark.slow  # a fresh TF process (~3 s): logical devices must precede any TF op
def test_sn_patch_gan_under_mirrored_strategy():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), (
        result.stdout[-2000:] + result.stderr[-3000:]
    )
