"""The TensorFlow half of the partial-convolution family: network, prediction, task.

Prediction: RGB [0, 255] -> ImageNet-normalised RGB (torchvision's mean/std, what the
network is trained on), sides padded to the network's multiple (2**depth) with pixels marked
as holes, ``PartialConvUNet`` in inference mode, crop, back to [0, 255].
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import CheckpointError
from deepfill_tf.families.pconv import SCOPE
from deepfill_tf.families.pconv.task import make_task  # noqa: F401  (the family's task)
from deepfill_tf.models.partial_conv_unet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PartialConvUNet,
    load_npz_weights,
)
from deepfill_tf.registry import ModelSpec, get_family


def build_generator(spec: ModelSpec) -> PartialConvUNet:
    """A built (unloaded) ``PartialConvUNet`` for ``spec`` (``cnum``, ``depth``)."""
    generator = PartialConvUNet(cnum=spec.cnum, depth=spec.depth)
    m = generator.size_multiple
    generator.build((None, m, m, 3), (None, m, m, 1))
    return generator


def load_npz(path: str):
    """A ``weights.npz`` (``load_npz_weights``'s layout) -> (built, loaded generator, spec).

    Raises:
      CheckpointError: unreadable, or not the weights of a ``PartialConvUNet`` (one line).
    """
    try:
        with np.load(path) as f:
            shapes = {f"{SCOPE}/{k}": np.empty(f[k].shape, np.uint8) for k in f.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except Exception as e:  # zip / pickle errors of every kind
        raise CheckpointError(f"{path}: not a readable .npz weights file ({e})") from None
    spec = get_family("pconv").detect(shapes)
    if spec is None:
        raise CheckpointError(
            f"{path} holds no partial-convolution UNet weights (pconv1/kernel (7, 7, 3, C),"
            " pconv{i}/kernel, pconv{i}/bias, bn{i}/... expected)"
        )
    generator = build_generator(spec)
    load_npz_weights(generator, path)
    return generator, spec


def to_imagenet(rgb255: tf.Tensor) -> tf.Tensor:
    """(..., 3) RGB on the [0, 255] scale -> ``(rgb / 255 - mean) / std``."""
    return (rgb255 / 255.0 - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def from_imagenet(x: tf.Tensor) -> tf.Tensor:
    """Inverse of ``to_imagenet`` (no clipping)."""
    return (x * tf.constant(IMAGENET_STD) + tf.constant(IMAGENET_MEAN)) * 255.0


def predict(generator: PartialConvUNet, image: tf.Tensor, hole_mask: tf.Tensor) -> tf.Tensor:
    """``Family.predict``: (B, H, W, 3) RGB [0, 255] + (B|1, H, W, 1) 1 = hole -> (B, H, W, 3)
    RGB on the [0, 255] scale (unclipped)."""
    x = to_imagenet(tf.cast(image, tf.float32))
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    m = generator.size_multiple
    pads = [[0, 0], [0, (-h) % m], [0, (-w) % m], [0, 0]]
    # Padding beyond the pipeline's multiple of 64 (depth > 6): zeros marked as holes, which
    # every partial convolution ignores, as it ignores the zero padding at the border.
    x = tf.pad(x, pads)
    hole = tf.pad(tf.cast(hole_mask, tf.float32), pads, constant_values=1.0)
    out = generator(x, hole, training=False)
    return from_imagenet(out[:, :h, :w, :])
