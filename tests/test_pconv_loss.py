"""PartialConvLoss against ../shared/oracles/pconv_unet (loss_terms.json, loss_intermediates),
the VGG weights-file errors, and the torchvision -> Keras VGG-16 converter.

Tolerances are the MANIFEST's: loss terms relative 1e-4 (from the stored output and end to end
from our own forward); VGG probe features and Gram matrices 1e-4 * max|ref|.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
import pytest

from deepfill_tf.convert import torchvision_vgg
from deepfill_tf.errors import CheckpointError, ConfigError, InputError
from deepfill_tf.losses import PartialConvLoss
from deepfill_tf.losses.perceptual import TERMS, gram_matrix, load_vgg16_features, tv_region
from deepfill_tf.testing.parity import assert_parity

VGG_FILE = "vgg16_notop_random.weights.h5"


@pytest.fixture(scope="module")
def oracle():
    from conftest import oracle_path

    return oracle_path("pconv_unet")


@pytest.fixture(scope="module")
def data(oracle):
    fe = np.load(oracle / "forward_eval.npz")
    ft = np.load(oracle / "forward_train.npz")
    with open(oracle / "loss_terms.json") as f:
        terms = json.load(f)
    hole = 1.0 - fe["mask_nhwc"][..., :1]  # oracle 1 = valid -> ours 1 = hole
    return fe, ft, terms, hole


@pytest.fixture(scope="module")
def loss(oracle):
    return PartialConvLoss(str(oracle / VGG_FILE))


def _check_terms(got, expected, what, rtol=1e-4):
    for key in [
        *TERMS,
        "l_perceptual_per_layer",
        "l_style_out_per_layer",
        "l_style_comp_per_layer",
    ]:
        if key not in got:
            continue
        ref = np.asarray(expected[key], np.float64)
        val = np.asarray(got[key], np.float64)
        assert_parity(val, ref, rtol * float(np.abs(ref).max()), f"{what} {key}")


@pytest.mark.parametrize("block", ["eval", "train"])
def test_each_term_from_the_stored_output(data, loss, block):
    fe, ft, terms, hole = data
    output = fe["output_nhwc"] if block == "eval" else ft["output_nhwc"]
    got = loss(fe["image_gt_nhwc"], output, hole, per_layer=True)
    assert set(TERMS) <= set(got)
    _check_terms(got, terms[block], block)
    w = terms["weights"]
    print("weights", w)


def test_rgb01_image_space_matches_eval_01(oracle, data):
    fe, _, terms, hole = data
    loss01 = PartialConvLoss(str(oracle / VGG_FILE), image_space="rgb01")
    out01 = fe["output_nhwc"] * fe["imagenet_std"] + fe["imagenet_mean"]
    got = loss01(fe["image_gt_01_nhwc"], out01, hole, per_layer=True)
    _check_terms(got, terms["eval_01"], "eval_01")


def test_vgg_probe_gram_matrices_and_tv_region(oracle, data, loss):
    fe, _, _, hole = data
    inter = np.load(oracle / "loss_intermediates.npz")
    feats = loss.vgg(inter["vgg_probe_input_nhwc"])
    for p, f in enumerate(feats, start=1):
        ref = inter[f"vgg_probe_pool{p}_nhwc"]
        assert_parity(np.asarray(f), ref, 1e-4 * np.abs(ref).max(), f"VGG probe pool{p}")
    out, gt = fe["output_nhwc"], fe["image_gt_nhwc"]
    comp = fe["composite_nhwc"]
    for name, image in (("out", out), ("comp", comp), ("gt", gt)):
        for p, f in enumerate(loss.vgg(image), start=1):
            ref = inter[f"gram_{name}_p{p}"]
            assert_parity(
                np.asarray(gram_matrix(f)), ref, 1e-4 * np.abs(ref).max(), f"gram {name} p{p}"
            )
    np.testing.assert_array_equal(np.asarray(tv_region(hole)), inter["tv_region_nhwc"])


def test_end_to_end_from_our_forward(oracle, data, loss):
    from deepfill_tf.models import PartialConvUNet
    from deepfill_tf.models.partial_conv_unet import load_npz_weights

    fe, _, terms, hole = data
    model = PartialConvUNet()
    model.build(fe["image_in_nhwc"].shape, hole.shape)
    load_npz_weights(model, str(oracle / "weights.npz"))
    output = model(fe["image_in_nhwc"], hole, training=False)
    got = loss(fe["image_gt_nhwc"], output, hole)
    _check_terms(got, terms["eval"], "end-to-end eval")


def test_gradients_reach_the_output(data, loss):
    import tensorflow as tf

    fe, _, _, hole = data
    gt = fe["image_gt_nhwc"][:, :64, :96]
    out = tf.Variable(fe["output_nhwc"][:, :64, :96])
    with tf.GradientTape() as tape:
        total = loss(gt, out, hole[:, :64, :96])["total"]
    grad = np.asarray(tape.gradient(total, out))
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    assert not loss.vgg.trainable_weights


def test_caffe_normalisation(oracle, data):
    fe, _, _, hole = data
    gt, out = fe["image_gt_nhwc"][:, :64, :96], fe["output_nhwc"][:, :64, :96]
    hole = hole[:, :64, :96]
    caffe = PartialConvLoss(str(oracle / VGG_FILE), vgg_normalization="caffe")
    got = caffe(gt, out, hole)
    # Reference: the images back to RGB [0, 1], then Keras' own preprocess_input on 0-255.
    rgb01 = lambda x: x * fe["imagenet_std"] + fe["imagenet_mean"]  # noqa: E731
    pre = lambda x: keras.applications.vgg16.preprocess_input(rgb01(x) * 255.0)  # noqa: E731
    comp = (1 - hole) * gt + hole * out
    f_out, f_comp, f_gt = (caffe.vgg(pre(x)) for x in (out, comp, gt))
    expected = sum(
        np.abs(np.asarray(a) - np.asarray(c)).mean() + np.abs(np.asarray(b) - np.asarray(c)).mean()
        for a, b, c in zip(f_out, f_comp, f_gt, strict=True)
    )
    np.testing.assert_allclose(float(got["l_perceptual"]), expected, rtol=1e-4)
    torch_like = PartialConvLoss(str(oracle / VGG_FILE))(gt, out, hole)
    assert abs(float(got["l_perceptual"]) - float(torch_like["l_perceptual"])) > 1e-3
    np.testing.assert_allclose(float(got["l_hole"]), float(torch_like["l_hole"]), rtol=1e-6)


def test_without_vgg_when_perceptual_and_style_are_off(data):
    fe, _, terms, hole = data
    loss = PartialConvLoss(None, perceptual_weight=0, style_weight=0)
    got = loss(fe["image_gt_nhwc"], fe["output_nhwc"], hole)
    assert float(got["l_perceptual"]) == 0.0 and float(got["l_style_out"]) == 0.0
    ref = terms["eval"]
    expected = ref["l_valid"] + 6 * ref["l_hole"] + 0.1 * ref["l_tv"]
    np.testing.assert_allclose(float(got["total"]), expected, rtol=1e-5)


def test_no_vgg_file_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as e:
        PartialConvLoss(None)
    msg = str(e.value)
    assert "\n" not in msg and "torchvision_vgg" in msg and "perceptual_weight" in msg
    with pytest.raises(ConfigError, match="vgg_normalization"):
        PartialConvLoss(None, vgg_normalization="bgr", perceptual_weight=0, style_weight=0)


def test_bad_vgg_files(tmp_path, oracle):
    def one_line_error(path, match):
        with pytest.raises(InputError, match=match) as e:
            load_vgg16_features(str(path))
        assert "\n" not in str(e.value)

    one_line_error(tmp_path / "absent.weights.h5", "not found: make one from torchvision")
    pth = tmp_path / "vgg16-397923af.pth"
    pth.write_bytes(b"\x80\x02")
    one_line_error(pth, "is a PyTorch file: convert it once")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    one_line_error(other, "ending in .weights.h5")
    truncated = tmp_path / "truncated.weights.h5"
    data = (oracle / VGG_FILE).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    one_line_error(truncated, "not a readable HDF5 file")
    vgg19 = tmp_path / "vgg19.weights.h5"
    keras.applications.VGG19(include_top=False, weights=None).save_weights(str(vgg19))
    one_line_error(vgg19, r"does not hold keras.applications.VGG16\(include_top=False\)")
    small = tmp_path / "small.weights.h5"
    net = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
    net.save_weights(str(small))
    one_line_error(small, "does not hold")
    zeros = tmp_path / "zeros.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None)  # warm the builder
    vgg = keras.applications.VGG16(include_top=False, weights=None)
    vgg.set_weights([np.zeros_like(w) for w in vgg.get_weights()])
    vgg.save_weights(str(zeros))
    one_line_error(zeros, "is all zeros")
    # And through the loss, the same message.
    with pytest.raises(InputError, match="not found"):
        PartialConvLoss(str(tmp_path / "absent.weights.h5"))


def _fake_torchvision_state_dict(oracle) -> dict:
    """The oracle's VGG (HWIO) back in torchvision's layout (OIHW), blocks 4-5 zeros."""
    state = {}
    with np.load(oracle / "vgg16_weights.npz") as f:
        arrays = {k: f[k] for k in f.files}
    for index, name, (cout, cin) in zip(
        torchvision_vgg.TORCH_CONV_INDICES,
        torchvision_vgg.KERAS_CONV_NAMES,
        torchvision_vgg._CHANNELS,
        strict=True,
    ):
        if f"{name}/kernel" in arrays:
            kernel = arrays[f"{name}/kernel"].transpose(3, 2, 0, 1)
            bias = arrays[f"{name}/bias"]
        else:
            kernel, bias = np.zeros((cout, cin, 3, 3), np.float32), np.zeros(cout, np.float32)
        state[f"features.{index}.weight"] = kernel
        state[f"features.{index}.bias"] = bias
    state["classifier.0.weight"] = np.zeros((4, 4), np.float32)  # ignored
    return state


def test_converter_layout_reproduces_pytorch_features(tmp_path, oracle):
    state = _fake_torchvision_state_dict(oracle)
    out = tmp_path / "vgg16_torchvision.weights.h5"
    torchvision_vgg.write_keras_vgg16(torchvision_vgg.keras_vgg16_arrays(state), str(out))
    vgg = load_vgg16_features(str(out))
    inter = np.load(oracle / "loss_intermediates.npz")
    for p, f in enumerate(vgg(inter["vgg_probe_input_nhwc"]), start=1):
        ref = inter[f"vgg_probe_pool{p}_nhwc"]
        assert_parity(np.asarray(f), ref, 1e-4 * np.abs(ref).max(), f"converted VGG pool{p}")
    full = keras.applications.VGG16(include_top=False, weights=None)
    full.load_weights(str(out))  # the documented way to load it


def test_converter_errors(tmp_path, monkeypatch, oracle):
    state = _fake_torchvision_state_dict(oracle)
    del state["features.28.bias"]
    with pytest.raises(
        CheckpointError, match=r"not torchvision's VGG-16: missing features.28.bias"
    ):
        torchvision_vgg.keras_vgg16_arrays(state)
    with pytest.raises(CheckpointError, match="batch norm"):
        torchvision_vgg.keras_vgg16_arrays({"features.1.running_mean": np.zeros(64)})
    pth = tmp_path / "vgg16-397923af.pth"
    pth.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(InputError, match=r"needs PyTorch: `pip install torch`"):
        torchvision_vgg.convert(str(pth), str(tmp_path / "out.weights.h5"))
    assert torchvision_vgg.main([str(pth), str(tmp_path / "out.weights.h5")]) == 1
    assert not (tmp_path / "out.weights.h5").exists()
    with pytest.raises(InputError, match=r"must end in .weights.h5"):
        torchvision_vgg.write_keras_vgg16({}, str(tmp_path / "out.h5"))


def test_keras2_layout_files_load_by_name(tmp_path, oracle):
    """The legacy .h5 layout keras.applications downloads (notop or with the top) loads."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    reference = keras.applications.VGG16(include_top=True, weights=None)
    with np.load(oracle / "vgg16_weights.npz") as f:
        for name in {k.split("/")[0] for k in f.files}:
            reference.get_layer(name).set_weights([f[f"{name}/kernel"], f[f"{name}/bias"]])
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    vgg = load_vgg16_features(str(path))
    for v in vgg.weights:
        expected = reference.get_layer(v.path.split("/")[0]).get_weights()
        assert any(np.array_equal(np.asarray(v), w) for w in expected), v.path
    other = tmp_path / "other.h5"
    net = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, name="c")])
    with h5py.File(other, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, net)
    with pytest.raises(InputError, match="no layer block1_conv1"):
        load_vgg16_features(str(other))
