"""PartialConvUNet against ../shared/oracles/pconv_unet (NVIDIA's PartialConv2d in PyTorch).

Tolerances are the MANIFEST's: update masks exact; per-layer outputs, I_out and I_comp within
1e-4 * max|ref| (eval mode); the training-mode forward and BN statistics within
1e-3 * max|ref|.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepfill_tf.errors import CheckpointError
from deepfill_tf.models import PartialConvUNet
from deepfill_tf.models.partial_conv_unet import (
    composite,
    imagenet_to_rgb01,
    load_npz_weights,
    rgb01_to_imagenet,
    save_npz_weights,
)
from deepfill_tf.testing.parity import assert_parity


@pytest.fixture(scope="module")
def oracle():
    from conftest import oracle_path

    return oracle_path("pconv_unet")


def _loaded_model(folder):
    fe = np.load(folder / "forward_eval.npz")
    image, mask = fe["image_in_nhwc"], fe["mask_nhwc"]
    hole = 1.0 - mask[..., :1]  # oracle: 1 = valid; our API: 1 = hole
    model = PartialConvUNet()
    model.build(image.shape, hole.shape)
    load_npz_weights(model, str(folder / "weights.npz"))
    return model, image, hole, fe


@pytest.fixture(scope="module")
def eval_run(oracle):
    model, image, hole, fe = _loaded_model(oracle)
    out, layers = model(image, hole, training=False, return_layers=True)
    return model, image, hole, fe, np.asarray(out), {k: np.asarray(v) for k, v in layers.items()}


def _rel(ref):
    return 1e-4 * float(np.abs(ref).max())


def test_weight_names_match_the_oracle(oracle):
    model = PartialConvUNet()
    model.build((1, 256, 256, 3), (1, 256, 256, 1))
    with np.load(oracle / "weights.npz") as f:
        keys = {k for k in f.files if not k.startswith("bn_")}
    assert set(model.weight_table()) == keys
    for v in model.weights:
        assert any(v.path.endswith(k) for k in keys), v.path
    assert model.count_params() == sum(int(np.prod(v.shape)) for v in model.weights)


def test_per_layer_outputs_and_update_masks(oracle, eval_run):
    *_, layers = eval_run
    ref = np.load(oracle / "layers_eval_nhwc.npz")
    for i in range(1, 17):
        expected_mask = ref[f"pconv{i}_mask_nhwc"]
        np.testing.assert_array_equal(
            layers[f"pconv{i}_mask"], expected_mask, err_msg=f"pconv{i} update mask"
        )
        expected = ref[f"pconv{i}_out_nhwc"]
        assert_parity(layers[f"pconv{i}_out"], expected, _rel(expected), f"pconv{i} output")


def test_eval_output_and_composite(eval_run):
    _, image, hole, fe, out, _ = eval_run
    assert_parity(out, fe["output_nhwc"], _rel(fe["output_nhwc"]), "I_out (eval BN)")
    comp = np.asarray(composite(image, out, hole))
    assert_parity(comp, fe["composite_nhwc"], _rel(fe["composite_nhwc"]), "I_comp")
    # The hole values of the input do not matter (every PConv multiplies by its mask).
    model = eval_run[0]
    out_gt = np.asarray(model(fe["image_gt_nhwc"], hole, training=False))
    np.testing.assert_array_equal(out_gt, out)


def test_training_mode_forward_and_bn_statistics(oracle):
    model, image, hole, _ = _loaded_model(oracle)
    ft = np.load(oracle / "forward_train.npz")
    out, layers = model(image, hole, training=True, return_layers=True)
    tol = lambda ref: 1e-3 * float(np.abs(ref).max())  # noqa: E731
    assert_parity(np.asarray(out), ft["output_nhwc"], tol(ft["output_nhwc"]), "I_out (train)")
    for i in (8, 9, 16):
        ref = ft[f"pconv{i}_out_nhwc"]
        assert_parity(np.asarray(layers[f"pconv{i}_out"]), ref, tol(ref), f"pconv{i} (train)")
    # PyTorch's update: 0.9 old + 0.1 batch, the variance UNBIASED.
    for i in range(2, 16):
        bn = model.bns[i]
        for key, var in (
            ("moving_mean_after", bn.moving_mean),
            ("moving_variance_after", bn.moving_variance),
        ):
            ref = ft[f"bn{i}/{key}"]
            assert_parity(np.asarray(var), ref, tol(ref), f"bn{i} {key}")


def test_keras_variance_rule_option(oracle):
    fe = np.load(oracle / "forward_eval.npz")
    ft = np.load(oracle / "forward_train.npz")
    model = PartialConvUNet(unbiased_moving_variance=False)
    hole = 1.0 - fe["mask_nhwc"][..., :1]
    model.build(fe["image_in_nhwc"].shape, hole.shape)
    load_npz_weights(model, str(oracle / "weights.npz"))
    model(fe["image_in_nhwc"], hole, training=True)
    for i in (2, 8, 15):
        ref = ft[f"bn{i}/moving_variance_after_keras_rule"]
        assert_parity(np.asarray(model.bns[i].moving_variance), ref, 1e-3 * ref.max(), f"bn{i}")


def test_frozen_bn_uses_moving_statistics(oracle, eval_run):
    model, image, hole, fe, out_eval, _ = eval_run
    before = [np.asarray(bn.moving_mean) for bn in model.encoder_bns]
    for bn in model.bns.values():
        bn.trainable = False
    try:
        out = np.asarray(model(image, hole, training=True))
    finally:
        for bn in model.bns.values():
            bn.trainable = True
    np.testing.assert_allclose(out, out_eval, atol=1e-5)
    for b, bn in zip(before, model.encoder_bns, strict=True):
        np.testing.assert_array_equal(np.asarray(bn.moving_mean), b)


def test_value_space_helpers(oracle):
    fe = np.load(oracle / "forward_eval.npz")
    np.testing.assert_allclose(
        rgb01_to_imagenet(fe["image_gt_01_nhwc"]), fe["image_gt_nhwc"], atol=1e-5
    )
    np.testing.assert_allclose(
        imagenet_to_rgb01(fe["image_gt_nhwc"]), fe["image_gt_01_nhwc"], atol=1e-6
    )


def test_tiny_shapes_gradients_and_npz_round_trip(tmp_path):
    import tensorflow as tf

    model = PartialConvUNet.tiny()
    assert model.size_multiple == 64
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 64, 128, 3)).astype(np.float32)
    hole = np.zeros((2, 64, 128, 1), np.float32)
    hole[:, 10:40, 20:90] = 1.0
    with tf.GradientTape() as tape:
        out = model(image, hole, training=True)
        loss = tf.reduce_mean(tf.abs(out))
    assert out.shape == (2, 64, 128, 3)
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    graph = tf.function(lambda x, m: model(x, m, training=False))
    np.testing.assert_allclose(
        np.asarray(graph(image, hole)), np.asarray(model(image, hole, training=False)), atol=1e-5
    )
    path = tmp_path / "w.npz"
    save_npz_weights(model, str(path))
    clone = PartialConvUNet.from_config(model.get_config())
    clone.build(image.shape, hole.shape)
    load_npz_weights(clone, str(path))
    np.testing.assert_array_equal(
        np.asarray(clone(image, hole, training=False)),
        np.asarray(model(image, hole, training=False)),
    )
    with pytest.raises(ValueError, match="divisible by 64"):
        model(image[:, :48], hole[:, :48])


def test_npz_loader_errors(tmp_path):
    model = PartialConvUNet.tiny()
    model.build((1, 64, 64, 3), (1, 64, 64, 1))
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_npz_weights(model, str(tmp_path / "absent.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        load_npz_weights(model, str(bad))
    other = PartialConvUNet(cnum=4, depth=6)
    other.build((1, 64, 64, 3), (1, 64, 64, 1))
    path = tmp_path / "other.npz"
    save_npz_weights(other, str(path))
    with pytest.raises(CheckpointError, match=r"does not match .*shape: bn10/beta"):
        load_npz_weights(model, str(path))
