"""The partial-convolution inpainting UNet (Liu et al., ECCV 2018).

Paper reference: Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes
Using Partial Convolutions" (ECCV 2018, arXiv 1804.07723). NVIDIA released only the layer
(github.com/NVIDIA/partialconv, ``models/partialconv2d.py``), which ``PartialConv2D``
reproduces; the network is built here from the paper's table: eight stride-2 partial
convolutions, eight nearest-neighbour-upsampling decoder partial convolutions with UNet skips,
every layer with a per-channel (``multi_channel``) mask.

Weight names: the layers are ``pconv1`` ... ``pconv16`` and ``bn2`` ... ``bn15``, so every
variable path ends with ``pconv{i}/kernel``, ``pconv{i}/bias``,
``bn{i}/gamma|beta|moving_mean|moving_variance`` (the keys of ``load_npz_weights``).
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import ops

from deepfill_tf.errors import CheckpointError
from deepfill_tf.layers.partial_conv import PartialConv2D

# ImageNet mean / std of torchvision (RGB, [0, 1]): the model's input and output value space.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Encoder kernels of the paper's table (PConv1..PConv8); deeper/shallower models reuse the
# head of this list and continue with 3x3.
_ENCODER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class PConvBatchNorm(keras.layers.BatchNormalization):
    """PyTorch-style ``BatchNorm2d`` (eps 1e-5, momentum 0.1) as a Keras layer.

    Differs from ``keras.layers.BatchNormalization`` only in training mode, where the moving
    variance is updated with the *unbiased* batch variance (``var * n / (n - 1)``, n = B*H*W
    values per channel) as PyTorch does; the batch is still normalised with the biased
    variance. Weight names are Keras' (``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``). ``trainable = False`` freezes it completely (moving statistics used,
    affine parameters fixed), like PyTorch's ``eval()`` plus ``requires_grad = False``.

    Args:
      unbiased_moving_variance: False gives Keras' rule (biased variance in the update).
      epsilon, momentum: Keras' meaning; defaults 1e-5 and 0.9 = PyTorch's eps and momentum 0.1.

    Input / output shape: (B, H, W, C) -> same. Never pass a Keras mask: hole positions
    (exact zeros) enter the batch statistics like any other value, as in the paper.
    """

    def __init__(
        self,
        unbiased_moving_variance: bool = True,
        epsilon: float = 1e-5,
        momentum: float = 0.9,
        **kwargs,
    ):
        super().__init__(epsilon=epsilon, momentum=momentum, **kwargs)
        self.unbiased_moving_variance = bool(unbiased_moving_variance)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable):
            return super().call(inputs, training=False)
        x = ops.cast(inputs, "float32")
        mean, variance = ops.moments(x, axes=[0, 1, 2])
        update_variance = variance
        if self.unbiased_moving_variance:
            shape = ops.shape(x)
            n = ops.cast(shape[0] * shape[1] * shape[2], "float32")
            update_variance = variance * n / ops.maximum(n - 1.0, 1.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + update_variance * (1.0 - m))
        out = ops.batch_normalization(
            x, mean, variance, axis=-1, offset=self.beta, scale=self.gamma, epsilon=self.epsilon
        )
        return ops.cast(out, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "unbiased_moving_variance": self.unbiased_moving_variance}


def _upsample2(x):
    """Nearest-neighbour x2: (B, H, W, C) -> (B, 2H, 2W, C), each value repeated 2x2."""
    return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class PartialConvUNet(keras.Model):
    """The paper's PConv UNet: ``depth`` stride-2 encoder PConvs, ``depth`` decoder PConvs.

    Encoder block i (1..depth): PConv (kernel 7, 5, 5, 3, 3, ..., stride 2, symmetric padding
    k//2) -> BN (not for i = 1) -> ReLU; widths ``min(cnum * 2**(i-1), 8 * cnum)`` (64, 128,
    256, 512, 512, 512, 512, 512 at cnum 64). Decoder block depth + j (j = 1..depth):
    nearest x2 upsampling of the features AND the update mask, concatenation
    ``[upsampled, skip]`` for features and masks alike, 3x3 PConv (stride 1, padding 1) -> BN
    -> LeakyReLU(0.2); the skip is encoder block depth - j (after BN and ReLU, with its update
    mask), and for the last layer the input image with its mask; the last layer has 3 outputs
    and neither BN nor activation (no sigmoid/tanh: the paper's output is the raw PConv). Every
    PConv is NVIDIA's ``PartialConv2d(..., bias=True, multi_channel=True, return_mask=True)``.

    Args:
      cnum: width of PConv1 (64 as published).
      depth: encoder layers (8 as published); H and W must be multiples of 2**depth.
      unbiased_moving_variance: BN moving-variance update as PyTorch (True) or Keras (False).

    Call arguments:
      image: (B, H, W, 3) float32 ImageNet-normalised RGB, ``(rgb01 - IMAGENET_MEAN) /
        IMAGENET_STD`` (hole values are ignored: every PConv multiplies by its mask).
      hole_mask: (B, H, W, 1) or (B, H, W, 3), **1 = hole**, 0 = known (a batch of 1
        broadcasts). Converted once to the layer's 1 = valid convention.
      training: BN uses batch statistics (and updates its moving ones) when True.
      return_layers: also return ``{"pconv{i}_out": PConv output before BN/activation,
        "pconv{i}_mask": its update mask (1 = valid, Cout channels)}``.

    Returns:
      I_out (B, H, W, 3) float32 in the input's value space, the raw network output before
      compositing (``composite`` pastes the known pixels back); with ``return_layers`` a
      pair ``(I_out, dict)``.
    """

    # The registered family that runs this network (``deepfill_tf.registry.family_of``).
    family = "pconv"

    def __init__(
        self,
        cnum: int = 64,
        depth: int = 8,
        unbiased_moving_variance: bool = True,
        name: str = "pconv_unet",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.cnum = int(cnum)
        self.depth = int(depth)
        self.unbiased_moving_variance = bool(unbiased_moving_variance)
        if self.depth < 1 or self.cnum < 1:
            raise ValueError(f"cnum and depth must be positive, got {cnum}, {depth}")
        dtype = self.dtype_policy
        kernels = list(_ENCODER_KERNELS[: self.depth]) + [3] * max(0, self.depth - 8)
        self.encoder_widths = [min(self.cnum * 2**i, 8 * self.cnum) for i in range(self.depth)]
        # Decoder layer depth + j outputs the width of its skip (encoder layer depth - j).
        decoder_widths = [self.encoder_widths[self.depth - j - 1] for j in range(1, self.depth)] + [
            3
        ]
        self.pconvs = []
        self.bns = {}
        for i in range(1, 2 * self.depth + 1):
            if i <= self.depth:
                k, stride, filters = kernels[i - 1], 2, self.encoder_widths[i - 1]
            else:
                k, stride, filters = 3, 1, decoder_widths[i - self.depth - 1]
            self.pconvs.append(
                PartialConv2D(
                    filters,
                    k,
                    strides=stride,
                    padding=k // 2,
                    use_bias=True,
                    multi_channel=True,
                    kernel_initializer="he_uniform",
                    name=f"pconv{i}",
                    dtype=dtype,
                )
            )
            if 1 < i < 2 * self.depth:
                self.bns[i] = PConvBatchNorm(
                    unbiased_moving_variance=self.unbiased_moving_variance,
                    name=f"bn{i}",
                    dtype=dtype,
                )

    @classmethod
    def tiny(cls, **kwargs) -> PartialConvUNet:
        """The tests' configuration: cnum 8, depth 6 (sides multiples of 64; run at 64-128 px)."""
        kwargs.setdefault("cnum", 8)
        kwargs.setdefault("depth", 6)
        return cls(**kwargs)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (2**depth: 256 as published)."""
        return 2**self.depth

    @property
    def encoder_bns(self) -> list:
        """The encoder's BN layers (bn2 .. bn{depth}): frozen in the paper's second stage."""
        return [self.bns[i] for i in range(2, self.depth + 1)]

    def _check_shape(self, shape):
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"PartialConvUNet expects (B, H, W, 3) images, got {tuple(shape)}")
        m = self.size_multiple
        for n in shape[1:3]:
            if n is not None and n % m:
                raise ValueError(
                    f"PartialConvUNet(depth={self.depth}) needs H and W divisible by {m}, got"
                    f" {shape[1]}x{shape[2]} (pad first)"
                )

    def build(self, image_shape, hole_mask_shape=None):
        # Build every layer from propagated shapes so weights exist (and load by name)
        # before the first forward pass.
        self._check_shape(image_shape)
        shape = tuple(image_shape)
        skips = [shape]
        for i, layer in enumerate(self.pconvs[: self.depth], start=1):
            layer.build(shape, shape)
            shape = layer.compute_output_shape(shape, shape)[0]
            if i in self.bns:
                self.bns[i].build(shape)
            skips.append(shape)
        skips.pop()
        for i, layer in enumerate(self.pconvs[self.depth :], start=self.depth + 1):
            skip = skips.pop()
            up = (shape[0], skip[1], skip[2], shape[3] + skip[3])
            layer.build(up, up)
            shape = layer.compute_output_shape(up, up)[0]
            if i in self.bns:
                self.bns[i].build(shape)
        self.built = True

    def call(self, image, hole_mask, training=None, return_layers: bool = False):
        self._check_shape(tuple(image.shape))
        image = ops.cast(image, self.compute_dtype)
        # Package convention (1 = hole) -> NVIDIA's (1 = valid), once, as a 3-channel mask.
        valid = 1.0 - ops.cast(hole_mask, self.compute_dtype)
        if valid.shape[-1] == 1:
            valid = ops.repeat(valid, 3, axis=-1)
        valid = ops.broadcast_to(valid, ops.shape(image))
        layers = {}
        x, m = image, valid
        skips = [(x, m)]
        for i, layer in enumerate(self.pconvs[: self.depth], start=1):
            x, m = layer(x, m)
            layers[f"pconv{i}_out"], layers[f"pconv{i}_mask"] = x, m
            if i in self.bns:
                x = self.bns[i](x, training=training)
            x = ops.relu(x)
            skips.append((x, m))
        skips.pop()  # the bottleneck is not a skip
        for i, layer in enumerate(self.pconvs[self.depth :], start=self.depth + 1):
            skip_x, skip_m = skips.pop()
            # Upsampled first, skip second, for the features and the masks alike.
            x = ops.concatenate([_upsample2(x), skip_x], axis=-1)
            m = ops.concatenate([_upsample2(m), skip_m], axis=-1)
            x, m = layer(x, m)
            layers[f"pconv{i}_out"], layers[f"pconv{i}_mask"] = x, m
            if i in self.bns:
                x = self.bns[i](x, training=training)
                x = ops.leaky_relu(x, negative_slope=0.2)
        return (x, layers) if return_layers else x

    def compute_output_shape(self, image_shape, hole_mask_shape=None):
        return tuple(image_shape)

    def weight_table(self) -> dict:
        """``{"pconv{i}/kernel": variable, ..., "bn{i}/moving_variance": variable}``: the
        names of the oracle's ``weights.npz`` (and of ``save_npz_weights``)."""
        if not self.built:
            raise ValueError("build the model (call it once) before asking for its weights")
        table = {}
        for layer in [*self.pconvs, *self.bns.values()]:
            for v in layer.weights:
                table[f"{layer.name}/{v.name}"] = v
        return table

    def get_config(self):
        return {
            **super().get_config(),
            "cnum": self.cnum,
            "depth": self.depth,
            "unbiased_moving_variance": self.unbiased_moving_variance,
        }


def composite(image, output, hole_mask):
    """I_comp = known pixels of ``image`` + hole pixels of ``output`` (1 = hole, broadcast)."""
    hole = ops.cast(hole_mask, output.dtype)
    return (1.0 - hole) * ops.cast(image, output.dtype) + hole * output


def rgb01_to_imagenet(rgb01):
    """(..., 3) RGB in [0, 1] -> the model's ImageNet-normalised value space."""
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    return (rgb01 - mean) / std


def imagenet_to_rgb01(x):
    """Inverse of ``rgb01_to_imagenet`` (no clipping)."""
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    return x * std + mean


# Scalars stored beside the weights in the oracle's weights.npz (BN settings, not weights).
_NPZ_METADATA = ("bn_epsilon", "bn_momentum", "bn_momentum_keras")


def load_npz_weights(model: PartialConvUNet, path: str) -> None:
    """Load a ``weights.npz`` of ``pconv{i}/kernel`` (HWIO), ``pconv{i}/bias``,
    ``bn{i}/gamma|beta|moving_mean|moving_variance`` arrays into a built model, strictly.

    Raises ``CheckpointError`` (one line) if the file is missing or unreadable, or names the
    missing, unexpected or mis-shaped keys. The scalar keys ``bn_epsilon``, ``bn_momentum``,
    ``bn_momentum_keras`` are accepted and checked against the model's BN settings.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # zip / pickle errors of every kind
        raise CheckpointError(f"{path}: not a readable .npz weights file ({e})") from None
    table = model.weight_table()
    eps = arrays.pop("bn_epsilon", None)
    arrays.pop("bn_momentum", None)
    momentum = arrays.pop("bn_momentum_keras", None)
    for bn in model.bns.values():
        if eps is not None and not np.isclose(float(eps), bn.epsilon):
            raise CheckpointError(f"{path}: bn_epsilon {float(eps)} != the model's {bn.epsilon}")
        if momentum is not None and not np.isclose(float(momentum), bn.momentum):
            raise CheckpointError(
                f"{path}: bn_momentum_keras {float(momentum)} != the model's {bn.momentum}"
            )
    missing = sorted(set(table) - set(arrays))
    unexpected = sorted(set(arrays) - set(table))
    shapes = [
        f"{k} {arrays[k].shape} vs {tuple(table[k].shape)}"
        for k in sorted(set(table) & set(arrays))
        if tuple(arrays[k].shape) != tuple(table[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                parts.append(f"{label}: {', '.join(items[:3])}{more}")
        raise CheckpointError(
            f"{path} does not match PartialConvUNet(cnum={model.cnum}, depth={model.depth}): "
            + "; ".join(parts)
        )
    for key, var in table.items():
        var.assign(arrays[key].astype(np.float32))


def save_npz_weights(model: PartialConvUNet, path: str) -> None:
    """Write the model's weights in the ``load_npz_weights`` layout, atomically."""
    arrays = {k: np.asarray(v) for k, v in model.weight_table().items()}
    bn = next(iter(model.bns.values()), None)
    if bn is not None:
        arrays["bn_epsilon"] = np.float32(bn.epsilon)
        arrays["bn_momentum"] = np.float32(1.0 - bn.momentum)
        arrays["bn_momentum_keras"] = np.float32(bn.momentum)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
