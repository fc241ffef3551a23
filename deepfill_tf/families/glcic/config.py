"""GLCIC config section: the training recipe of Iizuka et al. (SIGGRAPH 2017).

Defaults are the published values (``configs/glcic_places2.yml`` spells them out):

Network: cnum (64: completion network widths 64 ... 256), disc_cnum (64: discriminator
  widths 64 ... 512), fc_units (1024 per discriminator branch).
Data: short_side_min / short_side_max: the shorter image side is rescaled to an integer
  drawn uniformly in [256, 384] before the random ``img_shapes`` (256x256) crop.
Holes: hole_min / hole_max: one rectangle per image, sides uniform in [96, 128].
Local discriminator: local_size (128): the patch around the hole (completed images) or a
  random patch (real images).
Schedule: t_c (90,000 completion-only MSE steps), t_d (10,000 discriminator-only steps),
  then joint training until ``max_iters`` (T = 500,000).
Loss: alpha (0.0004): weight of the GAN term in the joint objective.
Optimiser: optimizer 'adadelta' (the paper) with rho 0.95 and epsilon 1e-6 (Keras' are
  1e-7; ADADELTA's paper uses 1e-6) at learning rate ``lr`` 1.0, or 'adam' (beta1 0.5).
Dataset mean: mean_batches: batches of training data averaged for the mean pixel at the
  start of a run (stored in the generator's ``dataset_mean`` weight, so a resume keeps it).
"""

from __future__ import annotations

import dataclasses

from deepfill_tf.config.schema import Section, need


@dataclasses.dataclass(frozen=True)
class GLCICSection(Section):
    """Keys of a GLCIC training config (see the module docstring)."""

    cnum: int = 64
    disc_cnum: int = 64
    fc_units: int = 1024
    short_side_min: int = 256
    short_side_max: int = 384
    hole_min: int = 96
    hole_max: int = 128
    local_size: int = 128
    t_c: int = 90_000
    t_d: int = 10_000
    alpha: float = 0.0004
    optimizer: str = "adadelta"
    rho: float = 0.95
    epsilon: float = 1e-6
    beta1: float = 0.5
    mean_batches: int = 100

    def validate(self, common) -> None:
        h, w, _ = common.img_shapes
        for name in ("cnum", "disc_cnum", "fc_units", "hole_min", "local_size", "mean_batches"):
            need(getattr(self, name) > 0, f"key {name!r} must be > 0, got {getattr(self, name)}")
        need(h % 4 == 0 and w % 4 == 0, f"key 'img_shapes' must be multiples of 4, got {h}x{w}")
        need(
            self.hole_min <= self.hole_max <= min(h, w),
            f"keys 'hole_min' <= 'hole_max' <= the image side ({min(h, w)}), got"
            f" {self.hole_min}, {self.hole_max}",
        )
        need(
            self.hole_max <= self.local_size <= min(h, w),
            f"key 'local_size' ({self.local_size}) must hold the largest hole ({self.hole_max})"
            f" and fit in the {h}x{w} image",
        )
        need(
            self.local_size % 32 == 0 and min(h, w) % 64 == 0,
            "the discriminators halve their input 5 (local) and 6 (global) times: 'local_size'"
            f" must be a multiple of 32 and 'img_shapes' of 64, got {self.local_size}, {h}x{w}",
        )
        need(
            self.short_side_min <= self.short_side_max,
            "key 'short_side_min' must be <= 'short_side_max'",
        )
        need(self.t_c >= 0 and self.t_d >= 0, "keys 't_c' and 't_d' must be >= 0")
        need(self.alpha >= 0, f"key 'alpha' must be >= 0, got {self.alpha}")
        need(
            self.optimizer in ("adadelta", "adam"),
            f"key 'optimizer' must be 'adadelta' or 'adam', got {self.optimizer!r}",
        )
