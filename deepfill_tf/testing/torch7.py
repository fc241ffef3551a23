"""A small binary Torch7 (``torch.save``) writer for tests, and exporters of our models.

Written so that tests can make their own ``.t7`` files (good and deliberately broken) without
Lua: :func:`write_t7` serialises None / bool / numbers / str / dict (a Lua table) / list (a
Lua array) / NumPy arrays (``torch.FloatTensor`` / ``DoubleTensor`` / ``LongTensor`` with their
own storage) / :class:`Module` (an ``nn`` object: class name, version, field table), in the
layout :func:`deepfill_tf.convert.torch7.read_t7` reads (little-endian, 8-byte longs).
:func:`glcic_to_t7` / :func:`context_encoder_to_t7` turn our Keras models into files laid out
as the released ones.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct

import numpy as np

_TENSOR_NAMES = {
    np.dtype(np.float32): "Float",
    np.dtype(np.float64): "Double",
    np.dtype(np.int64): "Long",
    np.dtype(np.uint8): "Byte",
}


@dataclasses.dataclass(eq=False)
class Module:
    """An ``nn`` object to write: ``Module("nn.ReLU", {"threshold": 0, ...}, version=1)``."""

    class_name: str
    fields: dict
    version: int = 1


class _Writer:
    def __init__(self, f):
        self.f = f
        self.ids: dict[int, int] = {}
        self.keep: list = []  # keeps written objects alive so their ids stay unique

    def int32(self, v):
        self.f.write(struct.pack("<i", v))

    def int64(self, v):
        self.f.write(struct.pack("<q", v))

    def string(self, s: str):
        b = s.encode("utf-8")
        self.int32(len(b))
        self.f.write(b)

    def ref(self, obj, tag) -> bool:
        """Write tag + index; True when the object was written before (a reference)."""
        self.int32(tag)
        key = id(obj)
        if key in self.ids:
            self.int32(self.ids[key])
            return True
        self.ids[key] = len(self.ids) + 1
        self.keep.append(obj)
        self.int32(self.ids[key])
        return False

    def header(self, class_name, version):
        if version:
            self.string(f"V {version}")
        self.string(class_name)

    def obj(self, v):
        if v is None:
            self.int32(0)
        elif isinstance(v, bool):
            self.int32(5)
            self.int32(1 if v else 0)
        elif isinstance(v, (int, float)):
            self.int32(1)
            self.f.write(struct.pack("<d", float(v)))
        elif isinstance(v, str):
            self.int32(2)
            self.string(v)
        elif isinstance(v, (dict, list)):
            if self.ref(v, 3):
                return
            items = v.items() if isinstance(v, dict) else enumerate(v, start=1)
            items = list(items)
            self.int32(len(items))
            for k, x in items:
                self.obj(k)
                self.obj(x)
        elif isinstance(v, Module):
            if self.ref(v, 4):
                return
            self.header(v.class_name, v.version)
            self.obj(v.fields)
        elif isinstance(v, np.ndarray):
            self.tensor(v)
        else:
            raise TypeError(f"cannot write {type(v).__name__} to a .t7 file")

    def tensor(self, a: np.ndarray):
        if self.ref(a, 4):
            return
        kind = _TENSOR_NAMES[a.dtype]
        self.header(f"torch.{kind}Tensor", 1)
        data = np.ascontiguousarray(a)
        self.int32(data.ndim)
        for n in data.shape:
            self.int64(n)
        stride = 1
        strides = []
        for n in reversed(data.shape):
            strides.append(stride)
            stride *= n
        for s in reversed(strides):
            self.int64(s)
        self.int64(1)  # 1-based storage offset
        if data.size == 0:
            self.int32(0)  # nil storage
            return
        storage = data.reshape(-1)
        self.int32(4)
        self.ids[id(storage)] = len(self.ids) + 1
        self.keep.append(storage)
        self.int32(self.ids[id(storage)])
        self.header(f"torch.{kind}Storage", 1)
        self.int64(storage.size)
        self.f.write(storage.astype(storage.dtype.newbyteorder("<")).tobytes())


def t7_bytes(obj) -> bytes:
    """The bytes ``torch.save`` (binary) would write for ``obj``."""
    buf = io.BytesIO()
    _Writer(buf).obj(obj)
    return buf.getvalue()


def write_t7(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as a binary Torch7 file."""
    with open(path, "wb") as f:
        f.write(t7_bytes(obj))


# --------------------------------------------------------------------------------------------
# nn modules as the released files hold them.


def sequential(modules: list) -> Module:
    return Module(
        "nn.Sequential", {"modules": list(modules), "train": False, "_type": "torch.FloatTensor"}
    )


def conv_module(kernel_hwio, bias, stride=1, pad=0, dilation=None) -> Module:
    """``nn.SpatialConvolution`` (or Dilated with ``dilation``) from a Keras HWIO kernel."""
    w = np.asarray(kernel_hwio, np.float32).transpose(3, 2, 0, 1)  # -> (out, in, kh, kw)
    n_out, n_in, kh, kw = w.shape
    fields = {
        "nInputPlane": n_in, "nOutputPlane": n_out, "kW": kw, "kH": kh, "dW": stride, "dH": stride,
        "padW": pad, "padH": pad, "weight": np.ascontiguousarray(w),
        "bias": np.asarray(bias, np.float32), "output": np.zeros((0,), np.float32),
        "gradInput": np.zeros((0,), np.float32), "train": False,
    }  # fmt: skip
    if dilation is not None:
        fields.update(dilationW=dilation, dilationH=dilation)
        return Module("nn.SpatialDilatedConvolution", fields)
    return Module("nn.SpatialConvolution", fields)


def full_conv_module(kernel_keras, bias, stride=1, pad=0, adj=0) -> Module:
    """``nn.SpatialFullConvolution`` from a Keras Conv2DTranspose kernel (kh, kw, out, in)."""
    w = np.asarray(kernel_keras, np.float32).transpose(3, 2, 0, 1)  # -> (in, out, kh, kw)
    n_in, n_out, kh, kw = w.shape
    return Module(
        "nn.SpatialFullConvolution",
        {
            "nInputPlane": n_in, "nOutputPlane": n_out, "kW": kw, "kH": kh, "dW": stride,
            "dH": stride, "padW": pad, "padH": pad, "adjW": adj, "adjH": adj,
            "weight": np.ascontiguousarray(w), "bias": np.asarray(bias, np.float32),
        },
    )  # fmt: skip


def bn_module(gamma, beta, mean, var, eps=1e-5, legacy=False) -> Module:
    """``nn.SpatialBatchNormalization`` ("V 2"; ``legacy`` writes "V 1" with running_std)."""
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    fields = {"eps": eps, "momentum": 0.1, "affine": True, "weight": f32(gamma), "bias": f32(beta),
              "running_mean": f32(mean), "train": False}  # fmt: skip
    if legacy:
        fields["running_std"] = f32(1.0 / np.sqrt(np.asarray(var, np.float64) + eps))
        return Module("nn.SpatialBatchNormalization", fields, version=1)
    fields["running_var"] = f32(var)
    return Module("nn.SpatialBatchNormalization", fields, version=2)


def activation_module(kind: str, negative_slope: float = 0.2) -> Module:
    if kind == "relu":
        return Module("nn.ReLU", {"threshold": 0, "val": 0, "inplace": True})
    if kind == "leaky_relu":
        return Module("nn.LeakyReLU", {"negval": negative_slope, "inplace": True})
    return Module({"sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh"}[kind], {})


def modules_from_slots(
    slots, legacy_bn: bool = False, dilated_from: int | None = None
) -> list[Module]:
    """The module list for a model's ``torch7_slots()`` with the model's current weights.

    ``dilated_from``: convolutions with index >= this (counting convs from 0) are written as
    ``nn.SpatialDilatedConvolution`` even at dilation 1 (the GLCIC file's middle layers).
    """
    modules, n_conv = [], 0
    for slot in slots:
        if slot.kind == "conv":
            layer = slot.layer
            dilated = slot.dilation[0] > 1 or (dilated_from is not None and n_conv >= dilated_from)
            modules.append(
                conv_module(np.asarray(layer.kernel), np.asarray(layer.bias), slot.strides[0],
                            slot.pad[0], slot.dilation[0] if dilated else None)
            )  # fmt: skip
            n_conv += 1
        elif slot.kind == "full_conv":
            layer = slot.layer
            modules.append(
                full_conv_module(np.asarray(layer.kernel), np.asarray(layer.bias), slot.strides[0],
                                 slot.pad[0], slot.adj[0])
            )  # fmt: skip
            n_conv += 1
        elif slot.kind == "bn":
            layer = slot.layer
            modules.append(
                bn_module(np.asarray(layer.gamma), np.asarray(layer.beta),
                          np.asarray(layer.moving_mean), np.asarray(layer.moving_variance),
                          float(layer.epsilon), legacy_bn)
            )  # fmt: skip
        else:
            modules.append(activation_module(slot.kind, slot.negative_slope))
    return modules


def glcic_to_t7(model, mean=None, mean_as_table: bool = False) -> dict:
    """A built GLCIC completion net as the root table ``{model = nn.Sequential, mean}`` of
    ``completionnet_places2.t7`` (middle eight layers as SpatialDilatedConvolution)."""
    mean = np.asarray(model.dataset_mean if mean is None else mean, np.float32)
    seq = sequential(modules_from_slots(model.torch7_slots(), dilated_from=4))
    return {"model": seq, "mean": [float(v) for v in mean] if mean_as_table else mean}


def randomize_weights(model, seed: int = 0) -> None:
    """Give every weight of a built model random values with unit-scale activations (BN
    variances positive), so parity tests are not comparing zeros."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = w.path.split("/")[-1]
        shape = tuple(w.shape)
        if name == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif name == "gamma":
            value = rng.uniform(0.6, 1.5, shape)
        elif name == "kernel":
            fan_in = np.prod(shape[:-1]) if len(shape) > 1 else 1
            value = rng.normal(0, 1.0 / np.sqrt(fan_in), shape)
        elif name == "dataset_mean":
            value = rng.uniform(0.3, 0.6, shape)
        else:
            value = rng.normal(0, 0.2, shape)
        w.assign(value.astype(np.float32))


def context_encoder_to_t7(model, legacy_bn: bool = False) -> Module:
    """A built Context Encoder generator as the released ``netG``: an nn.Sequential whose
    module 1 is the encoder ``netE`` (an nn.Sequential of 15 modules)."""
    modules = modules_from_slots(model.torch7_slots(), legacy_bn=legacy_bn)
    return sequential([sequential(modules[:15]), *modules[15:]])
