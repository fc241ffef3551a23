"""DeepFill training losses (reconstruction and adversarial), as the original TF1 code.

Images NHWC float32 BGR in [-1, 1], masks 1 = hole; every loss is a scalar mean over the
batch. The per-model combinations live in ``deepfill_tf.training.task``.
"""

from deepfill_tf.losses.adversarial import (
    gradient_penalty,
    hinge_loss,
    random_interpolates,
    slope_penalty,
    wgan_loss,
)
from deepfill_tf.losses.perceptual import PartialConvLoss  # noqa: F401
from deepfill_tf.losses.reconstruction import (
    discounted_l1,
    spatial_discounting_mask,
    v1_ae_loss,
    v1_l1_loss,
    v2_ae_loss,
)

__all__ = [
    "discounted_l1",
    "gradient_penalty",
    "hinge_loss",
    "random_interpolates",
    "slope_penalty",
    "spatial_discounting_mask",
    "v1_ae_loss",
    "v1_l1_loss",
    "v2_ae_loss",
    "wgan_loss",
]
