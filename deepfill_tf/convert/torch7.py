"""A strict reader for Torch7 ``.t7`` files and a strict map of ``nn`` modules onto Keras.

The original GLCIC (satoshiiizuka/siggraph2017_inpainting) and Context Encoder
(pathak22/context-encoder) models were released as Lua Torch7 files written by
``torch.save`` in the default binary format. This module reads that format directly (no Lua,
no Torch) and refuses anything it cannot read exactly: a truncated file, bytes after the root
object, a tensor that points outside its storage, a Lua function, an ASCII-format file.

Binary format (little-endian, ``long`` = 8 bytes as on every 64-bit Linux/macOS build): every
object starts with an int32 type tag (0 nil, 1 number = float64, 2 string = int32 length +
bytes, 3 table, 4 torch object, 5 boolean = int32, 6-8 functions). Tables and torch objects
carry an int32 reference index; a repeated index refers to the object read before. A torch
object has a class name (preceded by a ``"V <n>"`` version string in files since 2014); tensors
store ndim, sizes, strides, a 1-based storage offset and their storage object; storages store
their element count and the raw elements; every other class (``nn.*`` modules) stores one
table of fields.

``torchfile`` (PyPI) reads the same format but does not detect a storage cut short at the end
of a file (``numpy.fromfile`` returns fewer elements and the tensor view then reaches past
them) and does not check that the whole file was read, so this reader is written out here.

On top of the reader: :func:`walk_modules` flattens a module tree (``nn.Sequential`` and any
container keeping its children in ``modules``) into leaves with Lua 1-based paths ("1.3"),
:func:`module_spec` turns each leaf into a checked, framework-neutral record
(:class:`ConvSpec`, :class:`BatchNormSpec`, :class:`ActivationSpec`), and
:func:`assign_torch7` assigns the records to the ordered Keras layers of a model, checking
every kind, hyper-parameter and shape and using every parameter exactly once. Every mismatch
is a one-line :class:`~deepfill_tf.errors.CheckpointError` naming the file, the module path
and its class.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
from collections.abc import Iterator, Sequence

import numpy as np

from deepfill_tf.errors import CheckpointError

_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN = 0, 1, 2, 3, 4, 5
_FUNCTIONS = (6, 7, 8)

_STORAGE_DTYPES = {
    "torch.ByteStorage": np.uint8,
    "torch.CharStorage": np.int8,
    "torch.ShortStorage": np.int16,
    "torch.IntStorage": np.int32,
    "torch.LongStorage": np.int64,
    "torch.FloatStorage": np.float32,
    "torch.DoubleStorage": np.float64,
    "torch.CudaStorage": np.float32,
    "torch.CudaDoubleStorage": np.float64,
}
_TENSOR_CLASSES = {
    name.replace("Storage", "Tensor"): dtype for name, dtype in _STORAGE_DTYPES.items()
}
# A tensor of more dimensions than this is not something a model file holds; a larger value
# means the bytes are not what we think they are.
_MAX_NDIM = 8


@dataclasses.dataclass(eq=False)
class T7Object:
    """A Torch object of a class without a dedicated reader (every ``nn`` module).

    Attributes:
      class_name: e.g. ``"nn.SpatialConvolution"``.
      version: the class version of the ``"V <n>"`` header (0 when absent, as in old files).
      fields: the object's table, field name (str) -> value.
    """

    class_name: str
    version: int
    fields: dict

    def __repr__(self) -> str:
        return (
            f"T7Object({self.class_name}, V {self.version}, fields={sorted(map(str, self.fields))})"
        )


class _Reader:
    """Reads one object graph from the bytes of a binary ``.t7`` file."""

    def __init__(self, data: bytes, path: str):
        self.data = memoryview(data)
        self.pos = 0
        self.path = path
        self.memo: dict[int, object] = {}

    def fail(self, message: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {message}")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(
                f"truncated Torch7 file: {what} needs {n} bytes at offset {self.pos} but the file"
                f" has {len(self.data)} bytes (re-download it)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int32(self, what: str) -> int:
        return struct.unpack("<i", self.take(4, what))[0]

    def int64(self, what: str) -> int:
        return struct.unpack("<q", self.take(8, what))[0]

    def string(self, what: str) -> str:
        size = self.int32(f"the length of {what}")
        if size < 0:
            raise self.fail(
                f"not a Torch7 file: negative length of {what} at offset {self.pos - 4}"
            )
        return bytes(self.take(size, what)).decode("utf-8", errors="replace")

    def obj(self):
        tag_pos = self.pos
        tag = self.int32("an object type")
        if tag == _NIL:
            return None
        if tag == _NUMBER:
            return struct.unpack("<d", self.take(8, "a number"))[0]
        if tag == _STRING:
            return self.string("a string")
        if tag == _BOOLEAN:
            value = self.int32("a boolean")
            if value not in (0, 1):
                raise self.fail(f"not a Torch7 file: boolean {value} at offset {tag_pos}")
            return value == 1
        if tag in _FUNCTIONS:
            raise self.fail(
                f"holds a serialised Lua function (offset {tag_pos}); only tables, numbers,"
                " strings, tensors and nn modules can be read"
            )
        if tag not in (_TABLE, _TORCH):
            raise self.fail(
                f"not a Torch7 binary file (unknown object type {tag} at offset {tag_pos})"
            )
        index = self.int32("a reference index")
        if index in self.memo:
            return self.memo[index]
        if tag == _TABLE:
            return self.table(index)
        return self.torch_object(index)

    def table(self, index: int) -> dict:
        size = self.int32("a table size")
        # Each entry takes at least two 4-byte tags.
        if size < 0 or size * 8 > len(self.data) - self.pos:
            raise self.fail(
                f"truncated or corrupt Torch7 file: table of {size} entries at offset {self.pos - 4}"
            )
        table: dict = {}
        self.memo[index] = table
        for _ in range(size):
            key = self.obj()
            if isinstance(key, (dict, T7Object, np.ndarray)) or key is None:
                raise self.fail(f"table key of type {type(key).__name__} is not supported")
            if isinstance(key, float) and key.is_integer():
                key = int(key)
            table[key] = self.obj()
        return table

    def torch_object(self, index: int):
        header = self.string("a class name")
        version = 0
        if header.startswith("V "):
            try:
                version = int(header[2:])
            except ValueError:
                raise self.fail(f"not a Torch7 file: bad class version {header!r}") from None
            class_name = self.string("a class name")
        else:
            class_name = header
        if not class_name or not class_name.replace(".", "").replace("_", "").isalnum():
            raise self.fail(f"not a Torch7 file: bad class name {class_name[:40]!r}")
        if class_name in _STORAGE_DTYPES:
            dtype = np.dtype(_STORAGE_DTYPES[class_name])
            count = self.int64(f"the size of a {class_name}")
            if count < 0:
                raise self.fail(f"not a Torch7 file: {class_name} of {count} elements")
            raw = self.take(count * dtype.itemsize, f"a {class_name} of {count} elements")
            storage = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
            self.memo[index] = storage
            return storage
        if class_name in _TENSOR_CLASSES:
            tensor = self.tensor(class_name)
            self.memo[index] = tensor
            return tensor
        if class_name.startswith("torch.") and ("Tensor" in class_name or "Storage" in class_name):
            raise self.fail(
                f"{class_name} is not supported (float, double and integer tensors are)"
            )
        obj = T7Object(class_name, version, {})
        self.memo[index] = obj
        fields = self.obj()
        if not isinstance(fields, dict):
            raise self.fail(f"{class_name} object does not hold a table of fields")
        obj.fields = {(k if isinstance(k, str) else k): v for k, v in fields.items()}
        return obj

    def tensor(self, class_name: str) -> np.ndarray:
        ndim = self.int32(f"the rank of a {class_name}")
        if not 0 <= ndim <= _MAX_NDIM:
            raise self.fail(f"not a Torch7 file: {class_name} of rank {ndim}")
        sizes = [self.int64("a tensor size") for _ in range(ndim)]
        strides = [self.int64("a tensor stride") for _ in range(ndim)]
        offset = self.int64("a tensor offset") - 1
        storage = self.obj()
        dtype = _TENSOR_CLASSES[class_name]
        if ndim == 0 or any(s == 0 for s in sizes):
            return np.zeros(sizes if ndim else (0,), dtype=dtype)
        if storage is None or not isinstance(storage, np.ndarray) or storage.ndim != 1:
            raise self.fail(f"{class_name} of shape {tuple(sizes)} has no storage")
        if any(s < 0 for s in sizes) or any(s < 0 for s in strides) or offset < 0:
            raise self.fail(
                f"corrupt {class_name}: sizes {sizes}, strides {strides}, offset {offset + 1}"
            )
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True))
        if last >= storage.size:
            raise self.fail(
                f"corrupt {class_name} of shape {tuple(sizes)}: it reaches element {last} of a"
                f" storage of {storage.size}"
            )
        view = np.lib.stride_tricks.as_strided(
            storage[offset:],
            shape=sizes,
            strides=[s * storage.itemsize for s in strides],
            writeable=False,
        )
        return np.array(view, dtype=dtype)


def read_t7(path: str | os.PathLike):
    """Read a binary Torch7 file written by ``torch.save``; returns its root object.

    Lua values become: nil -> None, number -> float, string -> str, boolean -> bool, table ->
    dict (keys str / int / float), ``torch.*Tensor`` -> a C-contiguous NumPy array (a copy),
    ``torch.*Storage`` -> a 1-D array, other classes -> :class:`T7Object`. Shared references
    stay shared (the same Python object).

    Raises:
      CheckpointError: the file is missing, truncated, not a binary Torch7 file, holds a Lua
        function, or has bytes after its root object.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"Torch7 file not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, expected a Torch7 .t7 file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    if not data:
        raise CheckpointError(f"{path}: empty file, not a Torch7 file")
    if data[:1].isdigit() and b"\n" in data[:12]:
        raise CheckpointError(
            f"{path}: an ASCII-format Torch7 file; only the binary format of torch.save is read"
            " (re-save it with torch.save(path, obj) in Lua)"
        )
    reader = _Reader(data, path)
    root = reader.obj()
    if reader.pos != len(data):
        raise CheckpointError(
            f"{path}: {len(data) - reader.pos} unexpected bytes after the Torch7 object"
            " (not a single torch.save file)"
        )
    return root


def lua_list(table, what: str, path: str = "") -> list:
    """A Lua array table ``{[1]=a, [2]=b, ...}`` as a Python list (a list is returned as is)."""
    if isinstance(table, list):
        return table
    if not isinstance(table, dict) or set(table) != set(range(1, len(table) + 1)):
        raise CheckpointError(f"{path}: {what} is not a Lua list")
    return [table[i] for i in range(1, len(table) + 1)]


# --------------------------------------------------------------------------------------------
# Module tree.

# Containers whose children do not run one after the other; flattening them would be wrong.
_BRANCHING = {
    "nn.Concat",
    "nn.ConcatTable",
    "nn.DepthConcat",
    "nn.Parallel",
    "nn.ParallelTable",
    "nn.MapTable",
    "nn.gModule",
}


def walk_modules(root, path: str = "") -> list[tuple[str, T7Object]]:
    """Flatten a module tree into its leaves, in order, as ``(lua_path, module)`` pairs.

    ``lua_path`` is 1-based and dotted: ``"1.3"`` is ``root.modules[1].modules[3]``. Any
    module whose fields hold a ``modules`` list is a container and is walked (``nn.Sequential``
    and look-alikes); containers whose children run in parallel (``nn.Concat``, ``nn.gModule``,
    ...) are refused because their flattening would not compute the same function.

    Raises:
      CheckpointError: the root is not a module, or a container is branching / malformed.
    """
    if not isinstance(root, T7Object):
        raise CheckpointError(f"{path or 'root'}: expected an nn module, found {_describe(root)}")
    leaves: list[tuple[str, T7Object]] = []
    _walk(root, "", leaves, path)
    return leaves


def _walk(module: T7Object, prefix: str, leaves: list, file: str) -> None:
    where = prefix or "root"
    if "modules" not in module.fields:
        leaves.append((prefix, module))
        return
    if module.class_name in _BRANCHING:
        raise CheckpointError(
            f"{file}: module {where} ({module.class_name}) runs its children in parallel;"
            " only sequential containers (nn.Sequential) are supported"
        )
    children = lua_list(
        module.fields["modules"], f"module {where} ({module.class_name}).modules", file
    )
    for i, child in enumerate(children, start=1):
        child_path = f"{prefix}.{i}" if prefix else str(i)
        if not isinstance(child, T7Object):
            raise CheckpointError(
                f"{file}: module {child_path} inside {module.class_name} is {_describe(child)}, not an nn module"
            )
        _walk(child, child_path, leaves, file)


def _describe(value) -> str:
    if isinstance(value, T7Object):
        return value.class_name
    if isinstance(value, np.ndarray):
        return f"a tensor of shape {value.shape}"
    if isinstance(value, dict):
        return f"a Lua table with keys {sorted(map(str, value))[:6]}"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Module records.


@dataclasses.dataclass
class ConvSpec:
    """A (dilated / full) spatial convolution, in Keras layout.

    ``kernel`` is HWIO ``(kh, kw, in, out)`` for a convolution and ``(kh, kw, out, in)`` for a
    full (transposed) convolution, as Keras' ``Conv2D`` / ``Conv2DTranspose`` store them.
    ``pad`` / ``adj`` are Torch's (symmetric zero padding; extra rows/cols at the end of a full
    convolution's output).
    """

    path: str
    class_name: str
    transposed: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    adj: tuple[int, int]
    kernel: np.ndarray
    bias: np.ndarray | None


@dataclasses.dataclass
class BatchNormSpec:
    """Eval-mode batch normalisation: ``(x - mean) / sqrt(var + eps) * gamma + beta``."""

    path: str
    class_name: str
    channels: int
    eps: float
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray


@dataclasses.dataclass
class ActivationSpec:
    """``relu`` / ``leaky_relu`` (with ``negative_slope``) / ``sigmoid`` / ``tanh``."""

    path: str
    class_name: str
    kind: str
    negative_slope: float = 0.0


ModuleSpec = ConvSpec | BatchNormSpec | ActivationSpec


class _Fields:
    """Field access for one module that names the module in every error."""

    def __init__(self, module: T7Object, lua_path: str, file: str):
        self.m, self.lua_path, self.file = module, lua_path, file

    def fail(self, message: str) -> CheckpointError:
        return CheckpointError(
            f"{self.file}: module {self.lua_path} ({self.m.class_name}): {message}"
        )

    def has(self, name: str) -> bool:
        return self.m.fields.get(name) is not None

    def number(self, name: str, default=None) -> float:
        value = self.m.fields.get(name, default)
        if value is None:
            raise self.fail(f"missing field '{name}'")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"field '{name}' is {_describe(value)}, expected a number")
        return float(value)

    def integer(self, name: str, default=None) -> int:
        value = self.number(name, default)
        if not value.is_integer():
            raise self.fail(f"field '{name}' = {value} is not an integer")
        return int(value)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        value = self.m.fields.get(name)
        if value is None:
            raise self.fail(f"missing field '{name}'")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise self.fail(f"field '{name}' is {_describe(value)}, expected a float tensor")
        if value.size == int(np.prod(shape)) and value.shape != shape and value.ndim != len(shape):
            # Old nn saved convolution weights as 2-D (nOut, nIn*kH*kW); same element order.
            value = value.reshape(shape)
        if value.shape != shape:
            raise self.fail(f"field '{name}' has shape {value.shape}, expected {shape}")
        if not np.all(np.isfinite(value)):
            raise self.fail(f"field '{name}' holds NaN or Inf")
        return value.astype(np.float32)


_CONV_CLASSES = (
    "nn.SpatialConvolution",
    "nn.SpatialDilatedConvolution",
    "nn.SpatialFullConvolution",
    "cudnn.SpatialConvolution",
    "cudnn.SpatialFullConvolution",
    "nn.SpatialConvolutionMM",
)
_BN_CLASSES = ("nn.SpatialBatchNormalization", "cudnn.SpatialBatchNormalization")
_ACTIVATIONS = {
    "nn.ReLU": "relu",
    "cudnn.ReLU": "relu",
    "nn.LeakyReLU": "leaky_relu",
    "nn.Sigmoid": "sigmoid",
    "cudnn.Sigmoid": "sigmoid",
    "nn.Tanh": "tanh",
    "cudnn.Tanh": "tanh",
}
SUPPORTED_CLASSES = (
    _CONV_CLASSES[:3] + _BN_CLASSES[:1] + ("nn.ReLU", "nn.LeakyReLU", "nn.Sigmoid", "nn.Tanh")
)


def module_spec(module: T7Object, lua_path: str, file: str = "") -> ModuleSpec:
    """Check one leaf module and convert it to a record in Keras layout.

    Raises:
      CheckpointError: unknown class, missing field, wrong shape, non-finite value.
    """
    f = _Fields(module, lua_path, file)
    name = module.class_name
    if name in _CONV_CLASSES:
        return _conv_spec(f)
    if name in _BN_CLASSES:
        return _bn_spec(f)
    if name in _ACTIVATIONS:
        kind = _ACTIVATIONS[name]
        if kind == "relu" and (f.number("threshold", 0) != 0 or f.number("val", 0) != 0):
            raise f.fail("only a ReLU with threshold 0 and value 0 is supported")
        slope = f.number("negval", 0.01) if kind == "leaky_relu" else 0.0
        return ActivationSpec(lua_path, name, kind, slope)
    raise CheckpointError(
        f"{file}: module {lua_path} ({name}) is not a module class we map (supported: "
        f"{', '.join(SUPPORTED_CLASSES)})"
    )


def _conv_spec(f: _Fields) -> ConvSpec:
    transposed = "Full" in f.m.class_name
    n_in, n_out = f.integer("nInputPlane"), f.integer("nOutputPlane")
    kh, kw = f.integer("kH"), f.integer("kW")
    dh, dw = f.integer("dH", 1), f.integer("dW", 1)
    ph, pw = f.integer("padH", 0), f.integer("padW", 0)
    dilation = (
        (f.integer("dilationH"), f.integer("dilationW")) if "Dilated" in f.m.class_name else (1, 1)
    )
    adj = (f.integer("adjH", 0), f.integer("adjW", 0)) if transposed else (0, 0)
    if min(n_in, n_out, kh, kw, dh, dw, *dilation) < 1 or min(ph, pw, *adj) < 0:
        raise f.fail(f"invalid configuration {n_in}->{n_out} k{kh}x{kw} s{dh}x{dw} p{ph}x{pw}")
    if transposed and (adj[0] >= dh or adj[1] >= dw or adj[0] > ph or adj[1] > pw):
        raise f.fail(f"adj {adj} must be < stride and <= padding")
    if transposed:
        weight = f.tensor("weight", (n_in, n_out, kh, kw))
    else:
        weight = f.tensor("weight", (n_out, n_in, kh, kw))
    # OIHW -> HWIO; IOHW -> (kh, kw, out, in) for Conv2DTranspose: the same transposition.
    kernel = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))
    bias = f.tensor("bias", (n_out,)) if f.has("bias") else None
    return ConvSpec(
        f.lua_path,
        f.m.class_name,
        transposed,
        n_in,
        n_out,
        (kh, kw),
        (dh, dw),
        (ph, pw),
        dilation,
        adj,
        kernel,
        bias,
    )


def _bn_spec(f: _Fields) -> BatchNormSpec:
    eps = f.number("eps", 1e-5)
    if f.m.fields.get("affine") is False or not f.has("weight"):
        raise f.fail("missing field 'weight' (only affine batch normalisation is supported)")
    gamma = f.m.fields["weight"]
    n = gamma.shape[0] if isinstance(gamma, np.ndarray) and gamma.ndim == 1 else -1
    if n < 1:
        raise f.fail(f"field 'weight' is {_describe(gamma)}, expected a 1-D float tensor")
    gamma = f.tensor("weight", (n,))
    beta = f.tensor("bias", (n,))
    mean = f.tensor("running_mean", (n,))
    if f.has("running_var"):
        var = f.tensor("running_var", (n,))
    elif f.has("running_std"):
        # nn before 2016 stored 1/sqrt(var + eps) (BatchNormalization.lua BN:read converts).
        std = f.tensor("running_std", (n,)).astype(np.float64)
        if np.any(std <= 0):
            raise f.fail("field 'running_std' holds values <= 0")
        var = (std**-2 - eps).astype(np.float32)
    else:
        raise f.fail("missing field 'running_var' (or the legacy 'running_std')")
    if np.any(var < 0) or not math.isfinite(eps) or eps < 0:
        raise f.fail("negative running variance or epsilon")
    # The file's `train` flag (true in files saved during training) is ignored on purpose:
    # the original scripts call :evaluate(), so the running statistics are used.
    return BatchNormSpec(f.lua_path, f.m.class_name, n, eps, gamma, beta, mean, var)


def module_specs(root, file: str = "") -> list[ModuleSpec]:
    """:func:`walk_modules` + :func:`module_spec` for every leaf."""
    return [module_spec(m, p, file) for p, m in walk_modules(root, file)]


def read_dataset_mean(value, file: str = "", channels: int = 3) -> np.ndarray:
    """The dataset ``mean`` of a GLCIC file: a FloatTensor or a Lua table {r, g, b}.

    Returns float32 (channels,). Raises CheckpointError on a wrong length or type.
    """
    if isinstance(value, np.ndarray):
        mean = value.reshape(-1) if value.size == channels else value
    elif isinstance(value, (dict, list)):
        items = lua_list(value, "'mean'", file)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise CheckpointError(f"{file}: 'mean' must hold numbers, found {items!r}")
        mean = np.asarray(items, dtype=np.float64)
    elif value is None:
        raise CheckpointError(f"{file}: missing field 'mean' (the dataset mean of the model)")
    else:
        raise CheckpointError(f"{file}: 'mean' is {_describe(value)}, expected 3 numbers")
    if mean.shape != (channels,):
        raise CheckpointError(
            f"{file}: 'mean' has {mean.size} values (shape {mean.shape}), expected {channels} (R, G, B)"
        )
    if not np.all(np.isfinite(mean)):
        raise CheckpointError(f"{file}: 'mean' holds NaN or Inf")
    return mean.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Assignment to Keras layers.


@dataclasses.dataclass(frozen=True)
class TorchLayerSlot:
    """What a model expects at one position of the module sequence.

    ``kind`` is ``"conv"``, ``"full_conv"``, ``"bn"`` or an activation kind. ``layer`` is the
    Keras layer that receives the weights (None for activations). ``pad`` / ``adj`` are the
    Torch padding the model implements for that conv (checked against the file).
    """

    kind: str
    layer: object = None
    strides: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    adj: tuple[int, int] = (0, 0)
    negative_slope: float = 0.0


def assign_torch7(
    specs: Sequence[ModuleSpec], slots: Sequence[TorchLayerSlot], file: str = ""
) -> None:
    """Assign module records to the model's layers, one to one and in order.

    Every record must match its slot in kind, kernel size, stride, padding, dilation, channel
    counts (the Keras layers must be built) and activation slope, so every parameter of the
    file is used exactly once and every weight of the model is assigned.

    Raises:
      CheckpointError: naming the first module that does not fit, or the count mismatch.
    """
    for spec, slot in zip(specs, slots, strict=False):
        _check_and_assign(spec, slot, file)
    if len(specs) != len(slots):
        more = "more" if len(specs) > len(slots) else "fewer"
        extra = specs[len(slots)] if len(specs) > len(slots) else None
        where = (
            f"; the first extra one is module {extra.path} ({extra.class_name})" if extra else ""
        )
        raise CheckpointError(
            f"{file}: {len(specs)} modules, {more} than the {len(slots)} of the network{where}"
            " (a Torch7 file of another network?)"
        )


def _slot_name(slot: TorchLayerSlot) -> str:
    return {
        "conv": "a convolution",
        "full_conv": "a full convolution",
        "bn": "a batch normalisation",
    }.get(slot.kind, f"a {slot.kind} activation")


def _check_and_assign(spec: ModuleSpec, slot: TorchLayerSlot, file: str) -> None:
    def fail(message: str) -> CheckpointError:
        return CheckpointError(f"{file}: module {spec.path} ({spec.class_name}): {message}")

    if isinstance(spec, ActivationSpec):
        if slot.kind != spec.kind:
            raise fail(
                f"the network expects {_slot_name(slot)} here (a Torch7 file of another network?)"
            )
        if spec.kind == "leaky_relu" and abs(spec.negative_slope - slot.negative_slope) > 1e-9:
            raise fail(
                f"negative slope {spec.negative_slope}, the network uses {slot.negative_slope}"
            )
        return
    if isinstance(spec, BatchNormSpec):
        if slot.kind != "bn":
            raise fail(
                f"the network expects {_slot_name(slot)} here (a Torch7 file of another network?)"
            )
        layer = slot.layer
        if int(layer.gamma.shape[0]) != spec.channels:
            raise fail(
                f"{spec.channels} channels, the network has {int(layer.gamma.shape[0])} here"
            )
        if abs(float(layer.epsilon) - spec.eps) > 1e-12:
            raise fail(f"eps {spec.eps}, the network uses {layer.epsilon}")
        layer.gamma.assign(spec.gamma)
        layer.beta.assign(spec.beta)
        layer.moving_mean.assign(spec.mean)
        layer.moving_variance.assign(spec.var)
        return
    kind = "full_conv" if spec.transposed else "conv"
    if slot.kind != kind:
        raise fail(
            f"the network expects {_slot_name(slot)} here (a Torch7 file of another network?)"
        )
    for what, got, want in (
        ("stride", spec.strides, slot.strides),
        ("padding", spec.pad, slot.pad),
        ("dilation", spec.dilation, slot.dilation),
        ("adj", spec.adj, slot.adj),
    ):
        if tuple(got) != tuple(want):
            raise fail(f"{what} {tuple(got)}, the network uses {tuple(want)} here")
    layer = slot.layer
    expected = tuple(int(d) for d in layer.kernel.shape)
    if spec.kernel.shape != expected:
        raise fail(
            f"weight of shape {spec.kernel.shape} in Keras layout, the network expects {expected}"
        )
    has_bias = getattr(layer, "bias", None) is not None
    if has_bias != (spec.bias is not None):
        raise fail(
            "has no bias but the network has one"
            if has_bias
            else "has a bias the network does not have"
        )
    layer.kernel.assign(spec.kernel)
    if has_bias:
        layer.bias.assign(spec.bias)


def iter_classes(root) -> Iterator[str]:
    """Class names of the leaves of a module tree (for messages and detection)."""
    for _, module in walk_modules(root):
        yield module.class_name
