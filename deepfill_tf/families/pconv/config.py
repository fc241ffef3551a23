"""Partial-convolution config section: Liu et al. (ECCV 2018)'s training recipe.

Network: cnum (64: PConv1's width; widths 64, 128, 256, 512, ...), depth (8 stride-2 encoder
  layers as published; H and W of ``img_shapes`` must be multiples of 2**depth).
Loss (``deepfill_tf.losses.PartialConvLoss``): valid_weight 1, hole_weight 6,
  perceptual_weight 0.05, style_weight 120 (for L_style_out + L_style_comp), tv_weight 0.1.
  vgg_weights: path of a Keras VGG-16 (include_top=False) weights file; needed unless
  perceptual_weight and style_weight are both 0 (nothing is downloaded; see
  ``python -m deepfill_tf.convert.torchvision_vgg``). vgg_normalization: 'torchvision'
  (default: torchvision's weights, the ones the loss weights were tuned for) or 'caffe'
  (Keras' own ImageNet VGG16 file).
Schedule: stage 1 at ``lr`` (2e-4) with batch norm everywhere until step ``stage1_iters``,
  then stage 2 at ``finetune_lr`` (5e-5) with the encoder's batch norm frozen (moving
  statistics and affine parameters) until ``max_iters``. Optimiser Adam (beta1, beta2).
Masks: irregular masks, one per image: generated (strokes + blobs, hole ratio in
  [hole_ratio_min, hole_ratio_max]) or, with ``mask_dir``, sampled from a folder of mask
  images (e.g. NVIDIA's Irregular Mask Dataset, ``mask_holes_are`` 'black') with random
  dilation (odd kernel sizes 1 .. ``mask_max_dilation``), rotation and cropping.
"""

from __future__ import annotations

import dataclasses

from deepfill_tf.config.schema import Section, need


@dataclasses.dataclass(frozen=True)
class PConvSection(Section):
    """Keys of a partial-convolution training config (see the module docstring)."""

    cnum: int = 64
    depth: int = 8
    vgg_weights: str = ""
    vgg_normalization: str = "torchvision"
    valid_weight: float = 1.0
    hole_weight: float = 6.0
    perceptual_weight: float = 0.05
    style_weight: float = 120.0
    tv_weight: float = 0.1
    stage1_iters: int = 800_000
    finetune_lr: float = 5e-5
    beta1: float = 0.9
    beta2: float = 0.999
    hole_ratio_min: float = 0.01
    hole_ratio_max: float = 0.6
    mask_dir: str = ""
    mask_holes_are: str = "black"
    mask_max_dilation: int = 9

    @property
    def uses_vgg(self) -> bool:
        return bool(self.perceptual_weight or self.style_weight)

    def validate(self, common) -> None:
        need(self.cnum > 0, f"key 'cnum' must be > 0, got {self.cnum}")
        need(1 <= self.depth <= 10, f"key 'depth' must be in 1..10, got {self.depth}")
        m = 2**self.depth
        h, w, _ = common.img_shapes
        need(
            h % m == 0 and w % m == 0,
            f"key 'img_shapes' must be multiples of 2**depth = {m} (depth {self.depth}),"
            f" got {h}x{w}",
        )
        for name in (
            "valid_weight",
            "hole_weight",
            "perceptual_weight",
            "style_weight",
            "tv_weight",
        ):
            need(getattr(self, name) >= 0, f"key {name!r} must be >= 0, got {getattr(self, name)}")
        need(
            self.vgg_normalization in ("torchvision", "caffe"),
            f"key 'vgg_normalization' must be 'torchvision' or 'caffe', got"
            f" {self.vgg_normalization!r}",
        )
        need(self.stage1_iters >= 0, f"key 'stage1_iters' must be >= 0, got {self.stage1_iters}")
        need(self.finetune_lr > 0, f"key 'finetune_lr' must be > 0, got {self.finetune_lr}")
        for name in ("beta1", "beta2"):
            need(0 <= getattr(self, name) < 1, f"key {name!r} must be in [0, 1)")
        need(
            0 < self.hole_ratio_min <= self.hole_ratio_max < 1,
            "keys 'hole_ratio_min' <= 'hole_ratio_max' must lie in (0, 1), got"
            f" {self.hole_ratio_min}, {self.hole_ratio_max}",
        )
        need(
            self.mask_holes_are in ("black", "white"),
            f"key 'mask_holes_are' must be 'black' or 'white', got {self.mask_holes_are!r}",
        )
        need(
            self.mask_max_dilation >= 1 and self.mask_max_dilation % 2 == 1,
            f"key 'mask_max_dilation' must be an odd kernel size >= 1, got"
            f" {self.mask_max_dilation}",
        )
