"""Context Encoder config section: ``train.lua`` / ``train_random.lua`` of
pathak22/context-encoder with the README's training command (overlapPred 4, wtl2 0.999,
nBottleneck 4000, loadSize 350, fineSize 128).

Network: nef / ngf / ndf (64): encoder, decoder and discriminator widths; bottleneck (4000).
Region: region 'centre' (predict the 64x64 centre, ``train.lua``) or 'random' (the paper's
  random-region variant, ``train_random.lua``); overlap (4): border pixels of the centre the
  network sees and is weighted 10x on (``overlapPred``; random regions: 10x on known pixels).
Loss: wtl2 (0.999 = lambda_rec; lambda_adv = 1 - wtl2 = 0.001).
Optimiser: Adam, ``lr`` 0.0002, beta1 0.5, the generator's rate g_lr_mult (10) times larger
  when 0 < wtl2 < 1 (as the original).
Data: load_size (350): the shorter side is rescaled to it before the random 128x128 crop.
"""

from __future__ import annotations

import dataclasses

from deepfill_tf.config.schema import Section, need


@dataclasses.dataclass(frozen=True)
class ContextEncoderSection(Section):
    """Keys of a Context Encoder training config (see the module docstring)."""

    nef: int = 64
    ngf: int = 64
    ndf: int = 64
    bottleneck: int = 4000
    region: str = "centre"
    overlap: int = 4
    wtl2: float = 0.999
    beta1: float = 0.5
    g_lr_mult: float = 10.0
    load_size: int = 350

    def validate(self, common) -> None:
        h, w, _ = common.img_shapes
        need(
            (h, w) == (128, 128), f"key 'img_shapes' must be [128, 128, 3] (fineSize), got {h}x{w}"
        )
        for name in ("nef", "ngf", "ndf", "bottleneck"):
            need(getattr(self, name) > 0, f"key {name!r} must be > 0, got {getattr(self, name)}")
        need(
            self.region in ("centre", "random"),
            f"key 'region' must be 'centre' or 'random', got {self.region!r}",
        )
        need(0 <= self.overlap < 32, f"key 'overlap' must be in [0, 32), got {self.overlap}")
        need(0 <= self.wtl2 <= 1, f"key 'wtl2' must be in [0, 1], got {self.wtl2}")
        need(0 <= self.beta1 < 1, f"key 'beta1' must be in [0, 1), got {self.beta1}")
        need(self.load_size >= 128, f"key 'load_size' must be >= 128, got {self.load_size}")
