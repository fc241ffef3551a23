"""The Torch7 reader: the oracle files, our own round trips, and every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest

from deepfill_tf.convert.torch7 import (
    ActivationSpec,
    BatchNormSpec,
    ConvSpec,
    T7Object,
    module_specs,
    read_dataset_mean,
    read_t7,
    walk_modules,
)
from deepfill_tf.errors import CheckpointError
from deepfill_tf.models.context_encoder import ContextEncoderGenerator, load_context_encoder_t7
from deepfill_tf.models.glcic import GLCICCompletionNet, load_glcic_t7
from deepfill_tf.testing import torch7 as w
from tests.conftest import oracle_path

# --------------------------------------------------------------------------------------------
# The oracle files.


def test_every_oracle_t7_loads():
    root = oracle_path("glcic")
    files = sorted(root.rglob("*.t7"))
    assert len(files) == 3, files
    for path in files:
        obj = read_t7(path)
        model = obj["model"] if isinstance(obj, dict) else obj
        specs = module_specs(model, str(path))
        assert len(specs) in (50, 31), (path, len(specs))


def test_completionnet_module_sequence():
    path = oracle_path("glcic") / "completionnet" / "completionnet.t7"
    root = read_t7(path)
    assert set(root) == {"model", "mean"}
    np.testing.assert_array_equal(
        read_dataset_mean(root["mean"]), np.float32([0.456, 0.4472, 0.4155])
    )
    leaves = walk_modules(root["model"])
    assert [p for p, _ in leaves] == [str(i) for i in range(1, 51)]
    specs = module_specs(root["model"], str(path))
    convs = [s for s in specs if isinstance(s, ConvSpec)]
    assert [c.dilation[0] for c in convs] == [1] * 4 + [1, 1, 2, 4, 8, 16, 1, 1] + [1] * 5
    assert [c.pad[0] for c in convs] == [2, 1, 1, 1, 1, 1, 2, 4, 8, 16, 1, 1, 1, 1, 1, 1, 1]
    assert [c.transposed for c in convs].count(True) == 2
    assert convs[0].kernel.shape == (5, 5, 4, 64)  # HWIO
    assert convs[12].kernel.shape == (4, 4, 128, 256)  # full conv: (kh, kw, out, in)
    assert sum(isinstance(s, BatchNormSpec) for s in specs) == 16
    assert [s.kind for s in specs if isinstance(s, ActivationSpec)] == ["relu"] * 16 + ["sigmoid"]
    # The weights keep Torch's values exactly (OIHW -> HWIO transposition only).
    raw = leaves[0][1].fields["weight"]
    np.testing.assert_array_equal(convs[0].kernel, raw.transpose(2, 3, 1, 0))


def test_context_encoder_files_nested_and_legacy():
    folder = oracle_path("glcic") / "context_encoder"
    new, old = read_t7(folder / "netG.t7"), read_t7(folder / "netG_legacyBN.t7")
    paths = [p for p, _ in walk_modules(new)]
    assert paths[:15] == [f"1.{i}" for i in range(1, 16)] and paths[15:] == [
        str(i) for i in range(2, 18)
    ]
    bn_new = [s for s in module_specs(new) if isinstance(s, BatchNormSpec)]
    bn_old = [s for s in module_specs(old) if isinstance(s, BatchNormSpec)]
    for a, b in zip(bn_new, bn_old, strict=True):
        # running_std = 1/sqrt(var + eps) in float32 -> var back within float32 rounding.
        np.testing.assert_allclose(a.var, b.var, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a.gamma, b.gamma)
    assert walk_modules(old)[3][1].version == 1 and walk_modules(new)[3][1].version == 2


def test_oracle_matches_torchfile_if_installed():
    torchfile = pytest.importorskip("torchfile", reason="torchfile not installed (optional)")
    path = oracle_path("glcic") / "context_encoder" / "netG.t7"
    ours = [m for _, m in walk_modules(read_t7(path))]
    ref = torchfile.load(str(path))
    theirs = [m for m in ref.modules[0].modules] + list(ref.modules[1:])
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.class_name == b.torch_typename().decode()
        for key in ("weight", "bias", "running_mean", "running_var"):
            if key in a.fields:
                np.testing.assert_array_equal(a.fields[key], b[key.encode()])


# --------------------------------------------------------------------------------------------
# Files we write.


def _values_roundtrip(tmp_path, obj):
    path = tmp_path / "x.t7"
    w.write_t7(path, obj)
    return read_t7(path)


def test_plain_values_roundtrip(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = np.ones(3, np.float64)
    got = _values_roundtrip(
        tmp_path,
        {
            "a": 1.5,
            "b": "text",
            "c": True,
            "d": None,
            "t": arr,
            2: [1, 2],
            "s1": shared,
            "s2": shared,
        },
    )
    assert got["a"] == 1.5 and got["b"] == "text" and got["c"] is True
    assert "d" not in got or got["d"] is None
    np.testing.assert_array_equal(got["t"], arr)
    assert got[2] == {1: 1.0, 2: 2.0}
    assert got["s1"] is got["s2"]  # a shared reference stays shared


def test_tensor_view_into_shared_storage(tmp_path):
    # A hand-made tensor: 2x2 view with offset 3 into a storage of 8 floats, non-contiguous.
    import struct

    def i32(v):
        return struct.pack("<i", v)

    def i64(v):
        return struct.pack("<q", v)

    data = (
        i32(4) + i32(1) + i32(3) + b"V 1" + i32(17) + b"torch.FloatTensor"
        + i32(2) + i64(2) + i64(2) + i64(4) + i64(1) + i64(3)
        + i32(4) + i32(2) + i32(3) + b"V 1" + i32(18) + b"torch.FloatStorage"
        + i64(8) + np.arange(8, dtype="<f4").tobytes()
    )  # fmt: skip
    path = tmp_path / "view.t7"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_t7(path), np.float32([[2, 3], [6, 7]]))


@pytest.mark.parametrize("mean_as_table", [False, True])
def test_glcic_roundtrip_through_t7(tmp_path, mean_as_table):
    model = GLCICCompletionNet.tiny()
    model.build((None, None, None, 4))
    w.randomize_weights(model, seed=3)
    path = tmp_path / "tiny.t7"
    w.write_t7(path, w.glcic_to_t7(model, mean_as_table=mean_as_table))
    loaded = load_glcic_t7(path)
    assert loaded.cnum == 8
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    x = np.random.default_rng(0).normal(size=(1, 32, 48, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x), loaded(x), atol=1e-6)


def test_context_encoder_roundtrip_through_t7(tmp_path):
    model = ContextEncoderGenerator(nef=4, ngf=6, bottleneck=10)
    model.build((None, 128, 128, 3))
    w.randomize_weights(model, seed=4)
    for legacy in (False, True):
        path = tmp_path / f"ce{legacy}.t7"
        w.write_t7(path, w.context_encoder_to_t7(model, legacy_bn=legacy))
        loaded = load_context_encoder_t7(path)
        assert (loaded.nef, loaded.ngf, loaded.bottleneck) == (4, 6, 10)
        x = np.random.default_rng(1).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
        np.testing.assert_allclose(model(x), loaded(x), atol=1e-5)


# --------------------------------------------------------------------------------------------
# Bad files: one-line CheckpointError naming the problem (and the module where there is one).


@pytest.fixture
def tiny_glcic_tree():
    model = GLCICCompletionNet.tiny()
    model.build((None, None, None, 4))
    w.randomize_weights(model, seed=5)
    return w.glcic_to_t7(model)


def _load_error(tmp_path, obj_or_bytes, loader=load_glcic_t7) -> str:
    path = tmp_path / "bad.t7"
    if isinstance(obj_or_bytes, bytes):
        path.write_bytes(obj_or_bytes)
    else:
        w.write_t7(path, obj_or_bytes)
    with pytest.raises(CheckpointError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.mark.parametrize("fraction", [0.0001, 0.3, 0.9999])
def test_truncated_file(tmp_path, tiny_glcic_tree, fraction):
    data = w.t7_bytes(tiny_glcic_tree)
    message = _load_error(tmp_path, data[: max(1, int(len(data) * fraction))])
    assert "truncated" in message


def test_truncated_inside_last_storage(tmp_path):
    # The case torchfile reads silently: the file ends inside the last tensor's data.
    data = w.t7_bytes({"a": np.ones(100, np.float32)})
    path = tmp_path / "t.t7"
    path.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="truncated Torch7 file: a torch.FloatStorage"):
        read_t7(path)


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a Torch7 binary file"),
        (b"hello world, this is text\n", "not a Torch7 binary file"),
        (b"4\n1\n3\nV 1\n", "ASCII-format Torch7 file"),
        (b"", "empty file"),
    ],
)
def test_not_a_t7(tmp_path, payload, expected):
    assert expected in _load_error(tmp_path, payload)


def test_trailing_bytes(tmp_path, tiny_glcic_tree):
    assert "unexpected bytes after" in _load_error(tmp_path, w.t7_bytes(tiny_glcic_tree) + b"\0\0")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_glcic_t7(tmp_path / "nope.t7")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_glcic_t7(tmp_path)


def test_unknown_module_class(tmp_path, tiny_glcic_tree):
    tiny_glcic_tree["model"].fields["modules"][2] = w.Module("nn.ELU", {"alpha": 1.0})
    message = _load_error(tmp_path, tiny_glcic_tree)
    assert "module 3 (nn.ELU) is not a module class we map" in message


def test_missing_field(tmp_path, tiny_glcic_tree):
    del tiny_glcic_tree["model"].fields["modules"][3].fields["weight"]
    message = _load_error(tmp_path, tiny_glcic_tree)
    assert "module 4 (nn.SpatialConvolution): missing field 'weight'" in message


def test_wrong_weight_shape(tmp_path, tiny_glcic_tree):
    conv = tiny_glcic_tree["model"].fields["modules"][6]
    conv.fields["weight"] = conv.fields["weight"][:, :, :2, :]
    message = _load_error(tmp_path, tiny_glcic_tree)
    assert "module 7 (nn.SpatialConvolution): field 'weight' has shape" in message


def test_wrong_padding(tmp_path, tiny_glcic_tree):
    tiny_glcic_tree["model"].fields["modules"][3].fields.update(padW=0, padH=0)
    message = _load_error(tmp_path, tiny_glcic_tree)
    assert "module 4 (nn.SpatialConvolution): padding (0, 0), the network uses (1, 1)" in message


def test_extra_and_missing_modules(tmp_path, tiny_glcic_tree):
    modules = tiny_glcic_tree["model"].fields["modules"]
    modules.append(w.activation_module("relu"))
    assert "51 modules, more than the 50" in _load_error(tmp_path, tiny_glcic_tree)
    del modules[-3:]
    message = _load_error(tmp_path, tiny_glcic_tree)
    assert "48 modules, fewer than the 50" in message


def test_nonfinite_weight(tmp_path, tiny_glcic_tree):
    conv = tiny_glcic_tree["model"].fields["modules"][0]
    conv.fields["bias"] = conv.fields["bias"].copy()
    conv.fields["bias"][0] = np.nan
    assert "module 1 (nn.SpatialConvolution): field 'bias' holds NaN" in _load_error(
        tmp_path, tiny_glcic_tree
    )


@pytest.mark.parametrize("mean", [np.float32([0.5, 0.5]), [0.1, 0.2, 0.3, 0.4], "grey"])
def test_bad_mean(tmp_path, tiny_glcic_tree, mean):
    tiny_glcic_tree["mean"] = mean
    assert "'mean'" in _load_error(tmp_path, tiny_glcic_tree)


def test_other_networks(tmp_path, tiny_glcic_tree):
    ce = ContextEncoderGenerator.tiny()
    ce.build((None, 128, 128, 3))
    ce_tree = w.context_encoder_to_t7(ce)
    assert "not a GLCIC model file" in _load_error(tmp_path, ce_tree)
    assert "not a Context Encoder netG" in _load_error(
        tmp_path, tiny_glcic_tree, loader=load_context_encoder_t7
    )
    # A {model, mean} table whose model is some other network.
    other = {"model": ce_tree, "mean": np.float32([0.5, 0.5, 0.5])}
    assert "not a GLCIC completion network" in _load_error(tmp_path, other)


def test_branching_container_and_functions(tmp_path, tiny_glcic_tree):
    modules = tiny_glcic_tree["model"].fields["modules"]
    modules[1] = w.Module("nn.ConcatTable", {"modules": [modules[1]]})
    assert "module 2 (nn.ConcatTable) runs its children in parallel" in _load_error(
        tmp_path, tiny_glcic_tree
    )
    data = w.t7_bytes({"f": 1.0})
    # Type 6 = a serialised Lua function where the number was.
    broken = data.replace(b"\x01\x00\x00\x00" + np.float64(1.0).tobytes(), b"\x06\x00\x00\x00")
    assert "Lua function" in _load_error(tmp_path, broken)


def test_t7object_repr():
    assert "nn.ReLU" in repr(T7Object("nn.ReLU", 1, {"inplace": True}))
