"""The partial-convolution inpainting loss (Liu et al., ECCV 2018, Sec. 3.4 / arXiv 1804.07723).

``L = L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv``
with VGG-16 pool1/pool2/pool3 features (torchvision's network, no BN). The VGG part follows
NVIDIA's ``models/loss.py`` (github.com/NVIDIA/partialconv): Gram matrices ``F F^T / (C H W)``,
L1 means, torchvision's ImageNet normalisation of RGB in [0, 1]. The VGG weights come from a
local Keras weights file (nothing is downloaded): the file that
``keras.applications.VGG16(include_top=False)`` loads, e.g. one written by
``python -m deepfill_tf.convert.torchvision_vgg`` from torchvision's ``vgg16-397923af.pth``
(the weights the paper's loss weights were tuned for).
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from deepfill_tf.errors import ConfigError, InputError

__all__ = ["PartialConvLoss", "gram_matrix", "load_vgg16_features", "tv_region"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# keras.applications.vgg16.preprocess_input ("caffe"): BGR, 0-255, minus these means.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
VGG_LAYERS = ("block1_pool", "block2_pool", "block3_pool")
# The convolutions before pool3 (what the loss uses).
_LOSS_CONVS = tuple(
    f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3)) for c in range(1, n + 1)
)
TERMS = ("l_valid", "l_hole", "l_perceptual", "l_style_out", "l_style_comp", "l_tv", "total")

HOW_TO_GET_VGG = (
    "make one from torchvision's vgg16-397923af.pth with `python -m "
    "deepfill_tf.convert.torchvision_vgg vgg16-397923af.pth vgg16.weights.h5` (needs torch), or "
    "use Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 with vgg_normalization=caffe"
)


def load_vgg16_features(path: str) -> keras.Model:
    """A frozen VGG-16 returning ``[pool1, pool2, pool3]`` (Keras ``block{1,2,3}_pool``).

    Args:
      path: a Keras weights file of ``keras.applications.VGG16(include_top=False)``: a Keras 3
        ``*.weights.h5`` (``save_weights``) or the legacy ``*.h5`` Keras downloads.

    Returns:
      A non-trainable ``keras.Model`` mapping (B, H, W, 3) (already normalised as the weights
      expect) to three tensors (B, H/2, W/2, 64), (B, H/4, W/4, 128), (B, H/8, W/8, 256).

    Raises:
      InputError: the file is missing, is a PyTorch file, is truncated / not HDF5, or does not
        hold VGG-16 weights (one line each, saying what to do).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"VGG-16 weights file {path} not found: {HOW_TO_GET_VGG}")
    if path.endswith((".pth", ".pt")):
        raise InputError(
            f"VGG-16 weights file {path} is a PyTorch file: convert it once with `python -m "
            f"deepfill_tf.convert.torchvision_vgg {path} vgg16.weights.h5`"
        )
    if not path.endswith(".h5"):
        raise InputError(
            f"VGG-16 weights file {path}: expected a Keras weights file ending in .weights.h5 "
            f"or .h5; {HOW_TO_GET_VGG}"
        )
    # Loaded on use: a heavy or optional library only this feature needs.
    import h5py

    legacy = not path.endswith(".weights.h5")
    try:
        with h5py.File(path, "r") as f:
            names = [
                n.decode() if isinstance(n, bytes) else str(n)
                for n in f.attrs.get("layer_names", [])
            ]
    except OSError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(
            f"VGG-16 weights file {path} is not a readable HDF5 file (truncated or corrupt: "
            f"{first}); re-copy or re-create it"
        ) from None
    if legacy:
        # Keras 2 layout (what keras.applications downloads): loaded by layer name, so the
        # include_top file works too; the convolutions the loss uses must all be there.
        absent = [n for n in _LOSS_CONVS if n not in names]
        if absent:
            raise InputError(
                f"VGG-16 weights file {path} does not hold keras.applications.VGG16 weights "
                f"(no layer {absent[0]}); {HOW_TO_GET_VGG}"
            )
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if legacy:
                vgg.load_weights(path, by_name=True)
            else:
                vgg.load_weights(path)
        # Keras only warns when parts of the file do not match: a partial load is an error.
        skipped = [
            str(w.message)
            for w in caught
            if any(s in str(w.message).lower() for s in ("load", "skipping"))
        ]
        if skipped:
            raise ValueError(skipped[0])
    except Exception as e:  # Keras raises ValueError / KeyError / OSError by layout
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(
            f"VGG-16 weights file {path} does not hold keras.applications.VGG16"
            f"(include_top=False) weights ({first[:200]}); {HOW_TO_GET_VGG}"
        ) from None
    features = keras.Model(
        vgg.input, [vgg.get_layer(n).output for n in VGG_LAYERS], name="vgg16_pool123"
    )
    features.trainable = False
    _check_weights_are_not_all_zero(features, path)
    return features


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """(B, H, W, C) -> (B, C, C) Gram matrix ``F^T F / (C * H * W)`` (NVIDIA's ``gram_matrix``).

    The division is applied to the factors (a scaled matmul), as NVIDIA does for fp16 safety.
    """
    shape = tf.shape(features)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    f = tf.reshape(features, [b, h * w, c])  # (B, HW, C)
    scale = tf.math.rsqrt(tf.cast(c * h * w, features.dtype))
    f = f * scale
    return tf.matmul(f, f, transpose_a=True)


def tv_region(hole_mask: tf.Tensor) -> tf.Tensor:
    """R of L_tv: the hole (B, H, W, 1), 1 = hole, dilated by one pixel (3x3 max, 'SAME':
    pixels outside the image are not hole). Returns float32 (B, H, W, 1) of 0/1."""
    hole = tf.cast(hole_mask, tf.float32)
    return tf.nn.max_pool2d(hole, 3, 1, "SAME")


class PartialConvLoss:
    """Liu et al.'s six-term inpainting loss.

    Args:
      vgg_weights: path of a Keras VGG-16 (include_top=False) weights file (see
        ``load_vgg16_features``); may be None only when ``perceptual_weight`` and
        ``style_weight`` are 0 (those terms are then reported as 0).
      image_space: value space of the images passed in: ``"imagenet"`` (default: what
        ``PartialConvUNet`` takes and returns, ``(rgb01 - IMAGENET_MEAN) / IMAGENET_STD``) or
        ``"rgb01"`` (RGB in [0, 1]). L_valid, L_hole and L_tv are computed in this space.
      vgg_normalization: what the VGG receives: ``"torchvision"`` (default; RGB [0, 1] then
        ImageNet mean/std: torchvision's weights, the setting the paper's loss weights were
        tuned for) or ``"caffe"`` (``keras.applications.vgg16.preprocess_input``: BGR, 0-255,
        minus the Caffe means: Keras' own ImageNet weights).
      valid_weight, hole_weight, perceptual_weight, style_weight, tv_weight: the factors
        1, 6, 0.05, 120 (for L_style_out + L_style_comp), 0.1 of the paper.

    Call arguments:
      ground_truth: (B, H, W, 3) float, RGB in ``image_space``.
      output: (B, H, W, 3) the network's raw output I_out, same space.
      hole_mask: (B, H, W, 1), **1 = hole** (or (1, H, W, 1), broadcast).
      per_layer: also return ``l_perceptual_per_layer``, ``l_style_out_per_layer``,
        ``l_style_comp_per_layer`` (lists of three scalars).

    Returns:
      dict of float32 scalars ``l_valid``, ``l_hole``, ``l_perceptual``, ``l_style_out``,
      ``l_style_comp``, ``l_tv``, ``total``. Every mean runs over all elements of the batch
      tensor (N*C*H*W), as NVIDIA's ``loss.py``; ground-truth features get no gradient.
    """

    def __init__(
        self,
        vgg_weights: str | None = None,
        *,
        image_space: str = "imagenet",
        vgg_normalization: str = "torchvision",
        valid_weight: float = 1.0,
        hole_weight: float = 6.0,
        perceptual_weight: float = 0.05,
        style_weight: float = 120.0,
        tv_weight: float = 0.1,
    ):
        if image_space not in ("imagenet", "rgb01"):
            raise ConfigError(f"image_space must be 'imagenet' or 'rgb01', got {image_space!r}")
        if vgg_normalization not in ("torchvision", "caffe"):
            raise ConfigError(
                f"vgg_normalization must be 'torchvision' or 'caffe', got {vgg_normalization!r}"
            )
        self.image_space = image_space
        self.vgg_normalization = vgg_normalization
        self.weights = {
            "valid": float(valid_weight),
            "hole": float(hole_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "tv": float(tv_weight),
        }
        self.uses_vgg = bool(self.weights["perceptual"] or self.weights["style"])
        self.vgg = None
        if self.uses_vgg:
            if not vgg_weights:
                raise ConfigError(
                    "the perceptual and style terms need VGG-16 weights (vgg_weights / "
                    f"--vgg-weights PATH): {HOW_TO_GET_VGG}; or set perceptual_weight and "
                    "style_weight to 0"
                )
            self.vgg = load_vgg16_features(vgg_weights)

    def _vgg_input(self, x: tf.Tensor) -> tf.Tensor:
        """Images in ``image_space`` -> what the VGG weights expect."""
        mean = tf.constant(IMAGENET_MEAN, x.dtype)
        std = tf.constant(IMAGENET_STD, x.dtype)
        if self.vgg_normalization == "torchvision":
            # The model's space already IS torchvision's normalisation: pass it unchanged.
            return x if self.image_space == "imagenet" else (x - mean) / std
        rgb01 = x * std + mean if self.image_space == "imagenet" else x
        return rgb01[..., ::-1] * 255.0 - tf.constant(CAFFE_MEAN_BGR, x.dtype)

    def __call__(self, ground_truth, output, hole_mask, per_layer: bool = False) -> dict:
        gt = tf.cast(ground_truth, tf.float32)
        out = tf.cast(output, tf.float32)
        hole = tf.cast(hole_mask, tf.float32)
        if hole.shape[-1] not in (None, 1):
            hole = hole[..., :1]
        valid = 1.0 - hole
        comp = valid * gt + hole * out  # I_comp: known pixels from the ground truth

        l_valid = tf.reduce_mean(tf.abs(valid * (out - gt)))
        l_hole = tf.reduce_mean(tf.abs(hole * (out - gt)))

        # L_tv on I_comp over pairs of pixels both inside R; denominator N*C*H*W.
        region = tv_region(tf.broadcast_to(hole, tf.concat([tf.shape(gt)[:3], [1]], 0)))
        pair_h = region[:, :, 1:] * region[:, :, :-1]
        pair_v = region[:, 1:] * region[:, :-1]
        tv_sum = tf.reduce_sum(pair_h * tf.abs(comp[:, :, 1:] - comp[:, :, :-1])) + tf.reduce_sum(
            pair_v * tf.abs(comp[:, 1:] - comp[:, :-1])
        )
        l_tv = tv_sum / tf.cast(tf.size(comp), tf.float32)

        zero = tf.constant(0.0, tf.float32)
        perceptual, style_out, style_comp = [zero] * 3, [zero] * 3, [zero] * 3
        if self.vgg is not None:
            batch = tf.shape(gt)[0]
            feats = self.vgg(self._vgg_input(tf.concat([out, comp, gt], 0)), training=False)
            perceptual, style_out, style_comp = [], [], []
            for f in feats:
                f_out, f_comp, f_gt = (
                    f[:batch],
                    f[batch : 2 * batch],
                    tf.stop_gradient(f[2 * batch :]),
                )
                perceptual.append(
                    tf.reduce_mean(tf.abs(f_out - f_gt)) + tf.reduce_mean(tf.abs(f_comp - f_gt))
                )
                g_gt = gram_matrix(f_gt)
                style_out.append(tf.reduce_mean(tf.abs(gram_matrix(f_out) - g_gt)))
                style_comp.append(tf.reduce_mean(tf.abs(gram_matrix(f_comp) - g_gt)))
        terms = {
            "l_valid": l_valid,
            "l_hole": l_hole,
            "l_perceptual": tf.add_n(perceptual),
            "l_style_out": tf.add_n(style_out),
            "l_style_comp": tf.add_n(style_comp),
            "l_tv": l_tv,
        }
        w = self.weights
        terms["total"] = (
            w["valid"] * l_valid
            + w["hole"] * l_hole
            + w["perceptual"] * terms["l_perceptual"]
            + w["style"] * (terms["l_style_out"] + terms["l_style_comp"])
            + w["tv"] * l_tv
        )
        if per_layer:
            terms["l_perceptual_per_layer"] = perceptual
            terms["l_style_out_per_layer"] = style_out
            terms["l_style_comp_per_layer"] = style_comp
        return terms


def _check_weights_are_not_all_zero(features: keras.Model, path: str) -> None:
    """Reject a file whose pool1-3 convolutions are all zero (e.g. a placeholder)."""
    for v in features.weights:
        if v.path.endswith("kernel") and not np.any(np.asarray(v)):
            raise InputError(f"VGG-16 weights file {path}: {v.path} is all zeros")
