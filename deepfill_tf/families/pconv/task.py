"""Partial-convolution training task (Liu et al., ECCV 2018): no discriminator, two stages.

* stage 1 (``stage1``, steps < ``stage1_iters``): Adam at ``lr`` (2e-4), batch norm in
  training mode everywhere;
* stage 2 (``finetune``, until ``max_iters``): Adam at ``finetune_lr`` (5e-5) with the
  encoder's batch norm frozen (bn2 .. bn{depth}: moving statistics used and kept, gamma and
  beta not trained); the decoder's batch norm still trains.

Every step: one irregular mask per image (``sample_random``), the UNet on the masked image,
``PartialConvLoss`` (L_valid + 6 L_hole + 0.05 L_perceptual + 120 L_style + 0.1 L_tv). Images
come from the generic dataset as BGR [-1, 1] and are converted to the network's
ImageNet-normalised RGB here.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from deepfill_tf.errors import ConfigError
from deepfill_tf.losses.perceptual import HOW_TO_GET_VGG, PartialConvLoss
from deepfill_tf.masks.irregular import IrregularMaskFolder, IrregularParams, irregular_mask
from deepfill_tf.models.partial_conv_unet import IMAGENET_MEAN, IMAGENET_STD, PartialConvUNet
from deepfill_tf.training.task import Objective, Phase, Task

STAGE1, FINETUNE = "stage1", "finetune"


def bgr_to_imagenet(images: tf.Tensor) -> tf.Tensor:
    """(B, H, W, 3) BGR in [-1, 1] (the generic dataset) -> ImageNet-normalised RGB."""
    rgb01 = (tf.reverse(images, axis=[-1]) + 1.0) / 2.0
    return (rgb01 - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def imagenet_to_rgb01(x: tf.Tensor) -> tf.Tensor:
    return x * tf.constant(IMAGENET_STD) + tf.constant(IMAGENET_MEAN)


class PConvTask(Task):
    """The partial-convolution training task (see the module docstring)."""

    def __init__(self, config):
        super().__init__(config)
        s = config.section
        if s.uses_vgg and not s.vgg_weights:
            raise ConfigError(
                "key 'vgg_weights' is empty but the perceptual and style terms are on: "
                f"{HOW_TO_GET_VGG}; then --set vgg_weights=PATH (or set perceptual_weight and "
                "style_weight to 0)"
            )
        h, w, _ = config.img_shapes
        self.height, self.width = int(h), int(w)
        self.generator = PartialConvUNet(cnum=s.cnum, depth=s.depth)
        self.generator.build((None, self.height, self.width, 3), (None, self.height, self.width, 1))
        self.networks = {"generator": self.generator}
        self.loss = PartialConvLoss(
            s.vgg_weights or None,
            image_space="imagenet",
            vgg_normalization=s.vgg_normalization,
            valid_weight=s.valid_weight,
            hole_weight=s.hole_weight,
            perceptual_weight=s.perceptual_weight,
            style_weight=s.style_weight,
            tv_weight=s.tv_weight,
        )
        self.mask_params = IrregularParams(hole_ratio=(s.hole_ratio_min, s.hole_ratio_max))
        self.mask_folder = None
        if s.mask_dir:
            self.mask_folder = IrregularMaskFolder(
                s.mask_dir,
                (self.height, self.width),
                holes_are=s.mask_holes_are,
                dilation=(1, s.mask_max_dilation),
            )

    # ------------------------------------------------------------------ schedule

    def objectives(self) -> dict[str, Objective]:
        return {
            "generator": Objective(self.g_loss, lambda: list(self.generator.trainable_variables))
        }

    def phases(self) -> list[Phase]:
        c, s = self.config, self.config.section
        return [
            Phase(STAGE1, (("generator", 1),), end=s.stage1_iters, learning_rate=c.lr),
            Phase(FINETUNE, (("generator", 1),), learning_rate=s.finetune_lr),
        ]

    def begin_phase(self, phase: Phase) -> None:
        # Stage 2: freeze the encoder's batch norm (trainable=False makes PConvBatchNorm use
        # and keep its moving statistics and drops gamma/beta from the trained variables).
        frozen = phase.name == FINETUNE
        for bn in self.generator.encoder_bns:
            bn.trainable = not frozen

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        s = self.config.section
        return keras.optimizers.Adam(
            learning_rate=self.config.lr, beta_1=s.beta1, beta_2=s.beta2, name="adam"
        )

    # ------------------------------------------------------------------ masks

    def _masks(self, seed: np.ndarray) -> np.ndarray:
        """(batch_size, H, W, 1) float32 masks, 1 = hole; mask b from ``[*seed, b]``."""
        out = []
        for b in range(self.config.batch_size):
            rng = [int(seed[0]) % 2**63, int(seed[1]) % 2**63, b]
            if self.mask_folder is not None:
                out.append(self.mask_folder.sample(rng))
            else:
                out.append(irregular_mask((self.height, self.width), rng, self.mask_params))
        return np.concatenate(out, axis=0)

    def sample_random(self, seed) -> dict[str, tf.Tensor]:
        masks = tf.numpy_function(self._masks, [tf.cast(seed, tf.int64)], tf.float32)
        shape = (self.config.batch_size, self.height, self.width, 1)
        return {"masks": tf.ensure_shape(masks, shape)}

    # ------------------------------------------------------------------ loss

    def _forward(self, images, random, training=True):
        x = bgr_to_imagenet(tf.cast(images, tf.float32))
        hole = random["masks"][: tf.shape(x)[0]]
        output = self.generator(x * (1.0 - hole), hole, training=training)
        return x, hole, output

    def g_loss(self, images, random):
        x, hole, output = self._forward(images, random)
        terms = self.loss(x, output, hole)
        return terms["total"], terms

    # ------------------------------------------------------------------ summaries

    def visuals(self, images, random):
        """[input with the hole in white | network output | composite | original], RGB [0, 1]."""
        x, hole, output = self._forward(images, random, training=False)
        original = imagenet_to_rgb01(x)
        raw = tf.clip_by_value(imagenet_to_rgb01(output), 0.0, 1.0)
        masked = original * (1.0 - hole) + hole
        composite = original * (1.0 - hole) + raw * hole
        return tf.concat([masked, raw, composite, original], axis=2)


def make_task(config) -> PConvTask:
    return PConvTask(config)
