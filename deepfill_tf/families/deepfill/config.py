"""DeepFill v1 / v2 config sections: the keys of the original ``inpaint.yml`` files.

Field names are the lower-case keys of the original v2 ``inpaint.yml`` (and, lower-cased, the
upper-case v1 keys; ``neuralgym_compat`` translates the original files). Defaults are the
published settings of JiahuiYu/generative_inpainting v1.0.0 / v2.0.0 (``inpaint.yml`` +
``train.py``).

Network:
    cnum: generator width (32 v1, 48 v2); v2 needs a multiple of 4 (gated convolutions halve
        it twice), v1 an even number. disc_cnum: discriminator base width (64 in both).
    guided (v2): append a sketch/edge channel to the generator and discriminator input (the
        edge image of ``x.jpg`` is ``x_edge.jpg``); edge_threshold (v2): edge binarisation.

Masks (the original's random box):
    height, width: box size; max_delta_height, max_delta_width: the box shrinks on each side
    by a random ``randint(max_delta // 2 + 1)``; vertical_margin, horizontal_margin: minimum
    distance of the box from the image border.

Optimisation (one Adam shared by G and D, as the original): beta1 (0.5), beta2 (0.9 v1 /
0.999 v2), d_steps: discriminator steps per generator step (5 v1 / 1 v2).

Losses: gan: ``'wgan_gp'`` (v1) / ``'sngan'`` (v2 hinge), the only loss each original
implements; gan_loss_alpha (0.001 v1 / 1 v2); gan_with_mask: the discriminator also sees the
mask (False v1 / True v2); l1_loss_alpha: v1 weight of the spatially discounted local L1 loss
(1.2), v2 weight of each full-image L1 term (1); ae_loss: add the reconstruction loss.
v1 only: wgan_gp_lambda (10), coarse_l1_alpha (1.2), ae_loss_alpha (1.2),
global_wgan_loss_alpha (1), spatial_discounting_gamma (0.9), discounted_mask (True),
pretrain_coarse_network (False: True trains x1 only, without GAN losses).
"""

from __future__ import annotations

import dataclasses

from deepfill_tf.config.schema import Section, need


@dataclasses.dataclass(frozen=True)
class _DeepFillSection(Section):
    """Keys both DeepFill versions have (see the module docstring)."""

    cnum: int = 48
    disc_cnum: int = 64
    height: int = 128
    width: int = 128
    max_delta_height: int = 32
    max_delta_width: int = 32
    vertical_margin: int = 0
    horizontal_margin: int = 0
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    gan: str = "sngan"
    gan_loss_alpha: float = 1.0
    gan_with_mask: bool = True
    l1_loss_alpha: float = 1.0
    ae_loss: bool = True

    cnum_multiple = 4
    model_name = "deepfill_v2"

    def validate(self, common) -> None:
        want_gan = type(self).gan
        need(
            self.gan == want_gan,
            f"key 'gan' must be {want_gan!r} for {self.model_name} (the only loss the original"
            f" implements), got {self.gan!r}",
        )
        m = self.cnum_multiple
        need(
            self.cnum > 0 and self.cnum % m == 0,
            f"key 'cnum' must be a positive multiple of {m} for {self.model_name}, got {self.cnum}",
        )
        need(self.disc_cnum > 0, f"key 'disc_cnum' must be positive, got {self.disc_cnum}")
        h, w, _ = common.img_shapes
        for size, delta, margin, full, names in (
            (self.height, self.max_delta_height, self.vertical_margin, h, "height"),
            (self.width, self.max_delta_width, self.horizontal_margin, w, "width"),
        ):
            keys = (
                names,
                f"max_delta_{names}",
                f"{'vertical' if names == 'height' else 'horizontal'}_margin",
            )
            for name, value in zip(keys, (size, delta, margin), strict=True):
                least = 1 if name in ("height", "width") else 0
                need(value >= least, f"key {name!r} must be >= {least}, got {value}")
            # the box's top/left is drawn from [margin, full - margin - size): must be non-empty
            need(
                full - margin - size > margin,
                f"the mask box (key {keys[0]!r} = {size}, key {keys[2]!r} = {margin}) does not"
                f" fit in {full} pixels",
            )
            need(size > 2 * (delta // 2), f"key {keys[1]!r} = {delta} shrinks the box to nothing")
        need(self.d_steps >= 1, f"key 'd_steps' must be >= 1, got {self.d_steps}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            need(0 <= value < 1, f"key {name!r} must be in [0, 1), got {value}")
        for name in self._non_negative():
            need(getattr(self, name) >= 0, f"key {name!r} must be >= 0, got {getattr(self, name)}")

    def _non_negative(self) -> tuple[str, ...]:
        return ("gan_loss_alpha", "l1_loss_alpha")


@dataclasses.dataclass(frozen=True)
class DeepFillV2Section(_DeepFillSection):
    """DeepFill v2 (gated convolution, SN-PatchGAN): v2.0.0 ``inpaint.yml`` defaults."""

    guided: bool = False
    edge_threshold: float = 0.6

    def _non_negative(self) -> tuple[str, ...]:
        return (*super()._non_negative(), "edge_threshold")


@dataclasses.dataclass(frozen=True)
class DeepFillV1Section(_DeepFillSection):
    """DeepFill v1 (contextual attention, WGAN-GP critics): v1.0.0 ``inpaint.yml`` defaults."""

    cnum: int = 32
    beta2: float = 0.9
    d_steps: int = 5  # neuralgym SecondaryTrainer(max_iters=5): 5 critic steps per G step
    gan: str = "wgan_gp"
    gan_loss_alpha: float = 0.001
    gan_with_mask: bool = False
    l1_loss_alpha: float = 1.2
    wgan_gp_lambda: float = 10.0
    coarse_l1_alpha: float = 1.2
    ae_loss_alpha: float = 1.2
    global_wgan_loss_alpha: float = 1.0
    spatial_discounting_gamma: float = 0.9
    discounted_mask: bool = True
    pretrain_coarse_network: bool = False

    cnum_multiple = 2
    model_name = "deepfill_v1"

    def validate(self, common) -> None:
        super().validate(common)
        need(
            0 < self.spatial_discounting_gamma <= 1,
            "key 'spatial_discounting_gamma' must be in (0, 1], got"
            f" {self.spatial_discounting_gamma}",
        )

    def _non_negative(self) -> tuple[str, ...]:
        return (
            *super()._non_negative(),
            "wgan_gp_lambda",
            "coarse_l1_alpha",
            "ae_loss_alpha",
            "global_wgan_loss_alpha",
        )
