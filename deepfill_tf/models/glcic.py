"""GLCIC: the dilated completion network and the global + local discriminators.

Paper reference: Iizuka, Simo-Serra & Ishikawa, "Globally and Locally Consistent Image
Completion" (SIGGRAPH 2017); the released models are the Torch7 files of
satoshiiizuka/siggraph2017_inpainting (inference only, ``inpaint.lua``), which
``load_glcic_t7`` reads. Layers follow the paper's table; padding copies Torch's symmetric
zero padding (explicit pad + VALID), which differs from TF's 'same' on the two stride-2
3x3 convolutions.

Conventions of this family (they follow the original, not DeepFill's):
  images RGB in [0, 1]; mask (B, H, W, 1), 1 = hole; the network input is
  ``concat[(image - dataset_mean) * (1 - mask), mask]`` (B, H, W, 4) and its output is RGB in
  (0, 1) (sigmoid), composited with the un-normalised image.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from deepfill_tf.convert.torch7 import (
    TorchLayerSlot,
    assign_torch7,
    module_specs,
    read_dataset_mean,
    read_t7,
    walk_modules,
)
from deepfill_tf.errors import CheckpointError

# The network halves the resolution twice and restores it with two x2 full convolutions.
SIZE_MULTIPLE = 4
# The dataset mean of the oracle file, a placeholder until a real mean is loaded or computed.
DEFAULT_MEAN = (0.456, 0.4472, 0.4155)

# (kind, width multiple of cnum, kernel, stride, dilation); kind "conv", "dilated" (the same
# maths, nn.SpatialDilatedConvolution in the file), "deconv" (full convolution) or "output".
# Rows 1-17 of the paper's table; rows 5-12 are nn.SpatialDilatedConvolution in the released
# file (dilations 1, 1, 2, 4, 8, 16, 1, 1).
COMPLETION_LAYERS = (
    ("conv", 1, 5, 1, 1),
    ("conv", 2, 3, 2, 1),
    ("conv", 2, 3, 1, 1),
    ("conv", 4, 3, 2, 1),
    ("dilated", 4, 3, 1, 1),
    ("dilated", 4, 3, 1, 1),
    ("dilated", 4, 3, 1, 2),
    ("dilated", 4, 3, 1, 4),
    ("dilated", 4, 3, 1, 8),
    ("dilated", 4, 3, 1, 16),
    ("dilated", 4, 3, 1, 1),
    ("dilated", 4, 3, 1, 1),
    ("deconv", 2, 4, 2, 1),
    ("conv", 2, 3, 1, 1),
    ("deconv", 1, 4, 2, 1),
    ("conv", 0.5, 3, 1, 1),
    ("output", None, 3, 1, 1),
)


def torch_padding(kind: str, kernel: int, dilation: int) -> int:
    """Torch's symmetric padding of a GLCIC layer: (k - 1) / 2 * dilation; 1 for 4x4 deconvs."""
    if kind == "deconv":
        return 1
    return (kernel - 1) // 2 * dilation


@keras.saving.register_keras_serializable(package="deepfill_tf")
class TorchConv2D(keras.layers.Layer):
    """A Torch7 spatial (dilated / full) convolution with Torch's symmetric zero padding.

    ``nn.SpatialConvolution(pad)`` is zero padding by ``pad`` on every side + a VALID conv;
    ``nn.SpatialFullConvolution(pad, adj)`` is a VALID transposed conv (output
    ``(H - 1) * s + k``) cropped by ``pad`` at the start and ``pad - adj`` at the end, giving
    Torch's ``(H - 1) * s - 2 * pad + k + adj``. The weights live in the sub-layer ``conv``
    (a Keras ``Conv2D`` / ``Conv2DTranspose``, kernel HWIO / (kh, kw, out, in)).

    Args:
      filters, kernel_size, strides, pad, dilation: as Torch's nOutputPlane, kW/kH, dW/dH,
        padW/padH, dilationW/dilationH (square).
      transposed: a full convolution.
      adj: Torch's adjW/adjH of a full convolution (0 <= adj <= pad).

    Input shape: (B, H, W, C) NHWC. Output shape: (B, H', W', filters).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        pad: int = 0,
        dilation: int = 1,
        transposed: bool = False,
        adj: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = int(filters), int(kernel_size), int(strides)
        self.pad, self.dilation, self.transposed, self.adj = (
            int(pad),
            int(dilation),
            bool(transposed),
            int(adj),
        )
        if self.transposed and not 0 <= self.adj <= self.pad:
            raise ValueError(f"adj {adj} must be in [0, pad {pad}]")
        if self.transposed:
            self.conv = keras.layers.Conv2DTranspose(
                self.filters,
                self.kernel_size,
                strides=self.strides,
                padding="valid",
                name="conv",
                dtype=self.dtype_policy,
            )
        else:
            self.conv = keras.layers.Conv2D(
                self.filters,
                self.kernel_size,
                strides=self.strides,
                padding="valid",
                dilation_rate=self.dilation,
                name="conv",
                dtype=self.dtype_policy,
            )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if not self.transposed and self.pad:
            shape = (
                shape[0],
                *(None if n is None else n + 2 * self.pad for n in shape[1:3]),
                shape[3],
            )
        self.conv.build(shape)

    def call(self, x):
        p = self.pad
        if self.transposed:
            y = self.conv(x)
            end = p - self.adj
            if p or end:
                h, w = ops.shape(y)[1], ops.shape(y)[2]
                y = y[:, p : h - end, p : w - end, :]
            return y
        if p:
            x = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        return self.conv(x)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape

        def size(n):
            if n is None:
                return None
            k = self.dilation * (self.kernel_size - 1) + 1
            if self.transposed:
                return (n - 1) * self.strides - 2 * self.pad + self.kernel_size + self.adj
            return (n + 2 * self.pad - k) // self.strides + 1

        return (b, size(h), size(w), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "pad": self.pad,
            "dilation": self.dilation,
            "transposed": self.transposed,
            "adj": self.adj,
        }

    def torch_slot(self) -> TorchLayerSlot:
        """What the Torch7 reader must find for this layer."""
        return TorchLayerSlot(
            "full_conv" if self.transposed else "conv",
            self.conv,
            strides=(self.strides, self.strides),
            pad=(self.pad, self.pad),
            dilation=(self.dilation, self.dilation),
            adj=(self.adj, self.adj),
        )


def torch_batch_norm(name: str, dtype) -> keras.layers.BatchNormalization:
    """``nn.SpatialBatchNormalization`` defaults: eps 1e-5, momentum 0.1 (Keras 0.9)."""
    return keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class GLCICCompletionNet(keras.Model):
    """The GLCIC completion network: 17 layers, BN + ReLU after all but the sigmoid output.

    Widths are multiples of ``cnum`` (64 in the paper: 64, 128, 128, 256 x 9, 128, 128, 64,
    32, 3). Resolution: 1/2 after layer 2, 1/4 after layer 4, restored by the two 4x4 stride-2
    full convolutions (13, 15).

    Args:
      cnum: base width (64 as published, 6.1M parameters; ``tiny()`` gives 8).
      mean: the dataset mean (R, G, B in [0, 1]) kept in the non-trainable weight
        ``dataset_mean``; a released ``.t7`` or a trained run overwrites it.

    Input: (B, H, W, 4) float32, H and W multiples of 4: RGB minus ``dataset_mean`` with the
      hole set to 0, then the mask (1 = hole); ``prepare_input`` builds it.
    Output: (B, H, W, 3) RGB in (0, 1), before compositing.
    """

    # The registered family (deepfill_tf.registry.family_of) of this generator.
    family = "glcic"

    def __init__(
        self,
        cnum: int = 64,
        mean: Sequence[float] = DEFAULT_MEAN,
        name: str = "glcic_completion",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.cnum = int(cnum)
        self.mean_init = tuple(float(v) for v in mean)
        if len(self.mean_init) != 3:
            raise ValueError(f"mean must have 3 values (R, G, B), got {mean!r}")
        dtype = self.dtype_policy
        self.convs, self.norms = [], []
        for i, (kind, mult, k, stride, dilation) in enumerate(COMPLETION_LAYERS, start=1):
            filters = 3 if kind == "output" else max(1, int(mult * self.cnum))
            self.convs.append(
                TorchConv2D(
                    filters,
                    k,
                    strides=stride,
                    pad=torch_padding(kind, k, dilation),
                    dilation=dilation,
                    transposed=kind == "deconv",
                    name=f"conv{i}",
                    dtype=dtype,
                )
            )
            if kind != "output":
                self.norms.append(torch_batch_norm(f"bn{i}", dtype))
        self.dataset_mean = self.add_weight(
            shape=(3,),
            initializer=keras.initializers.Constant(self.mean_init),
            trainable=False,
            name="dataset_mean",
        )

    @classmethod
    def tiny(cls, **kwargs) -> GLCICCompletionNet:
        """The tests' configuration: cnum 8; run it at 64-128 px."""
        return cls(cnum=8, **kwargs)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4 or shape[-1] != 4:
            raise ValueError(f"GLCIC expects (B, H, W, 4) inputs, got {shape}")
        for i, conv in enumerate(self.convs):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if i < len(self.norms):
                self.norms[i].build(shape)

    def call(self, inputs, training=None):
        for n in inputs.shape[1:3]:
            if n is not None and n % SIZE_MULTIPLE:
                raise ValueError(
                    f"GLCIC needs H and W divisible by {SIZE_MULTIPLE}, got {tuple(inputs.shape)}"
                )
        x = inputs
        for conv, norm in zip(self.convs, self.norms, strict=False):
            x = ops.relu(norm(conv(x), training=training))
        return ops.sigmoid(self.convs[-1](x))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:3], 3)

    def prepare_input(self, image, mask):
        """(B, H, W, 3) RGB [0, 1] + (B, H, W, 1) mask 1 = hole -> (B, H, W, 4) network input
        (``inpaint.lua`` L77-83: subtract the mean, zero the hole, append the mask)."""
        mean = ops.cast(ops.reshape(self.dataset_mean, (1, 1, 1, 3)), image.dtype)
        return ops.concatenate([(image - mean) * (1.0 - mask), mask], axis=-1)

    def complete(self, image, mask, training=None):
        """Network + composite: returns ``(composite, raw_output)``, both RGB [0, 1]
        (``inpaint.lua`` L86: ``out = image * (1 - M) + output * M``)."""
        raw = self(self.prepare_input(image, mask), training=training)
        return image * (1.0 - mask) + raw * mask, raw

    def torch7_slots(self) -> list[TorchLayerSlot]:
        """The module sequence of ``completionnet_*.t7``: conv, BN, ReLU x 16, conv, Sigmoid."""
        slots = []
        for i, conv in enumerate(self.convs):
            slots.append(conv.torch_slot())
            if i < len(self.norms):
                slots += [TorchLayerSlot("bn", self.norms[i]), TorchLayerSlot("relu")]
        return [*slots, TorchLayerSlot("sigmoid")]

    def get_config(self):
        return {**super().get_config(), "cnum": self.cnum, "mean": list(self.mean_init)}


def read_glcic_t7(path) -> tuple[object, np.ndarray]:
    """Read a GLCIC ``.t7``: returns ``(model module, dataset mean float32 (3,))``.

    The file's root is ``{model = nn.Sequential, mean = FloatTensor(3) or {r, g, b}}``
    (``inpaint.lua`` L38-40).

    Raises:
      CheckpointError: not such a file (naming what was found instead).
    """
    path = str(path)
    root = read_t7(path)
    if not isinstance(root, dict) or "model" not in root:
        what = getattr(root, "class_name", type(root).__name__)
        raise CheckpointError(
            f"{path}: not a GLCIC model file (expected a table {{model, mean}} as"
            f" completionnet_places2.t7, found {what})"
        )
    return root["model"], read_dataset_mean(root.get("mean"), path)


def load_glcic_t7(path, cnum: int | None = None) -> GLCICCompletionNet:
    """Build a :class:`GLCICCompletionNet` from a released ``completionnet_*.t7`` file.

    The width is taken from the first convolution (64 in the released files) unless ``cnum``
    insists. Every module is checked (class, kernel, stride, padding, dilation, shapes) and
    every parameter is used once; the mean goes to ``dataset_mean``.

    Raises:
      CheckpointError: one line naming the file, module path and class that does not fit.
    """
    path = str(path)
    module, mean = read_glcic_t7(path)
    specs = module_specs(module, path)
    first = specs[0] if specs else None
    if first is None or not hasattr(first, "kernel") or first.in_channels != 4:
        what = f"module {first.path} ({first.class_name})" if first else "no modules"
        raise CheckpointError(
            f"{path}: not a GLCIC completion network (its first module must be a 4-channel"
            f" convolution; found {what})"
        )
    width = first.out_channels if cnum is None else int(cnum)
    model = GLCICCompletionNet(cnum=width, mean=tuple(float(v) for v in mean))
    model.build((None, None, None, 4))
    assign_torch7(specs, model.torch7_slots(), path)
    model.dataset_mean.assign(mean)
    return model


# --------------------------------------------------------------------------------------------
# Discriminators.

GLOBAL_D_LAYERS = (1, 2, 4, 8, 8, 8)  # width multiples of cnum; 5x5 stride 2 each
LOCAL_D_LAYERS = (1, 2, 4, 8, 8)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class GLCICDiscriminator(keras.Model):
    """Global + local context discriminators joined by a shared FC -> 1.

    Global: 6 convs 5x5 stride 2 (64, 128, 256, 512, 512, 512 at cnum 64) + FC ``fc_units``
    on the whole image (256x256 in the paper); local: 5 such convs + FC on the 128x128 patch
    around the completed region. Each conv is followed by BN + ReLU (Torch-style symmetric
    padding 2). The two FC outputs are concatenated and a last FC gives one logit; the paper's
    probability is ``sigmoid(logit)`` — training applies the sigmoid inside the binary
    cross-entropy (the same function, numerically stable).

    Args:
      cnum: base width (64). fc_units: width of each branch's FC (1024).

    Input: ``[global_image (B, Hg, Wg, 3), local_patch (B, Hl, Wl, 3)]``, RGB [0, 1]; the FC
      layers fix the sizes at the first call (256 / 128 published, e.g. 64 / 32 tiny).
    Output: (B, 1) logits.
    """

    def __init__(
        self, cnum: int = 64, fc_units: int = 1024, name: str = "glcic_discriminator", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.cnum, self.fc_units = int(cnum), int(fc_units)
        dtype = self.dtype_policy

        def branch(prefix, mults):
            convs = [
                TorchConv2D(
                    m * self.cnum, 5, strides=2, pad=2, name=f"{prefix}_conv{i}", dtype=dtype
                )
                for i, m in enumerate(mults, start=1)
            ]
            norms = [torch_batch_norm(f"{prefix}_bn{i}", dtype) for i in range(1, len(mults) + 1)]
            return convs, norms

        self.global_convs, self.global_norms = branch("global", GLOBAL_D_LAYERS)
        self.local_convs, self.local_norms = branch("local", LOCAL_D_LAYERS)
        self.global_fc = keras.layers.Dense(self.fc_units, name="global_fc", dtype=dtype)
        self.local_fc = keras.layers.Dense(self.fc_units, name="local_fc", dtype=dtype)
        self.concat_fc = keras.layers.Dense(1, name="concat_fc", dtype=dtype)

    @classmethod
    def tiny(cls, **kwargs) -> GLCICDiscriminator:
        """cnum 8, FC 64; run it on 64x64 images with 32x32 local patches."""
        return cls(cnum=8, fc_units=64, **kwargs)

    @staticmethod
    def _branch(x, convs, norms, fc, training):
        for conv, norm in zip(convs, norms, strict=True):
            x = ops.relu(norm(conv(x), training=training))
        return fc(ops.reshape(x, (ops.shape(x)[0], -1)))

    def call(self, inputs, training=None):
        global_image, local_patch = inputs
        g = self._branch(
            global_image, self.global_convs, self.global_norms, self.global_fc, training
        )
        lo = self._branch(local_patch, self.local_convs, self.local_norms, self.local_fc, training)
        return self.concat_fc(ops.concatenate([g, lo], axis=-1))

    def get_config(self):
        return {**super().get_config(), "cnum": self.cnum, "fc_units": self.fc_units}


__all__ = [
    "COMPLETION_LAYERS",
    "GLCICCompletionNet",
    "GLCICDiscriminator",
    "TorchConv2D",
    "load_glcic_t7",
    "read_glcic_t7",
    "walk_modules",
]
