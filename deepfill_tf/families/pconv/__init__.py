"""Partial convolutions (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018) as a registered family.

The network is ``deepfill_tf.models.PartialConvUNet`` (the paper's 16-layer UNet of NVIDIA's
``PartialConv2d``, github.com/NVIDIA/partialconv); no weights were ever released, so this
family runs our own trained runs. Images reach the network as ImageNet-normalised RGB
(``(rgb / 255 - mean) / std``, torchvision's mean/std), masks 1 = hole (the network converts
to its 1 = valid once). Sides are reflect-padded to multiples of 64 by the pipeline and, for
deeper networks (the published depth 8 needs multiples of 256), further padded inside
``predict`` with pixels marked as holes, which the partial convolutions ignore.

Training: no discriminator; the six-term loss on VGG-16 features
(``deepfill_tf.losses.PartialConvLoss``); stage 1 at lr 2e-4 with batch norm everywhere,
stage 2 at 5e-5 with the encoder's batch norm frozen; batch 6; irregular masks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deepfill_tf.families.pconv.config import PConvSection
from deepfill_tf.registry import Family, ModelSpec, register

# The generator's Keras name: its variables are stored as ``pconv_unet/pconv1/kernel`` ...
SCOPE = "pconv_unet"
_KERNEL = re.compile(rf"^{SCOPE}/pconv(\d+)/kernel$")


def _impl():
    """The TensorFlow half (network, prediction, training), imported on first use so that
    listing the families (``deepfill-tf inpaint --help``) needs no TensorFlow."""
    from deepfill_tf.families.pconv import implementation

    return implementation


class PConv(Family):
    name = "pconv"
    aliases = ("partial_conv", "pconv_unet")
    label = "Partial Convolutions"
    summary = "partial-convolution UNet, VGG perceptual/style loss, irregular masks (ECCV 2018)"
    size_multiple = 64
    min_side = 33  # the pipeline's reflect padding to 64 needs pad < side
    trainable = True
    exportable = True
    tflite = True
    config_section = PConvSection
    architecture_keys = ("cnum", "depth")
    # weights.npz: pconv{i}/kernel (HWIO), pconv{i}/bias, bn{i}/gamma|beta|moving_mean|
    # moving_variance, e.g. converted from a PyTorch PConv UNet (save_npz_weights writes it).
    checkpoint_suffixes = (".npz",)

    def detect(self, variables: Mapping[str, Any]) -> ModelSpec | None:
        layers = {int(m.group(1)) for k in variables if (m := _KERNEL.match(k))}
        first = variables.get(f"{SCOPE}/pconv1/kernel")
        if first is None or tuple(first.shape)[2] != 3 or len(layers) % 2:
            return None
        return self._spec(int(first.shape[3]), len(layers) // 2)

    @staticmethod
    def _spec(cnum: int, depth: int) -> ModelSpec:
        return ModelSpec("pconv", {"cnum": int(cnum), "depth": int(depth)})

    def tiny_spec(self) -> ModelSpec:
        return self._spec(8, 6)

    def spec_from_config(self, config) -> ModelSpec:
        return self._spec(config.cnum, config.depth)

    def load_checkpoint(self, path: str):
        return _impl().load_npz(path)

    def build_generator(self, spec: ModelSpec):
        return _impl().build_generator(spec)

    def predict(self, generator, image, hole_mask, inputs):
        return _impl().predict(generator, image, hole_mask)

    def published_defaults(self) -> dict[str, Any]:
        return {
            "lr": 2e-4,
            "max_iters": 1_000_000,
            "train_spe": 10000,
            "val_psteps": 1000,
            "log_dir": "logs/pconv",
        }

    def make_task(self, config):
        return _impl().make_task(config)


register(PConv())
