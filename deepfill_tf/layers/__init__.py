"""Keras 3 layers of the DeepFill family. Each module holds one layer (or one layer pair)."""

from deepfill_tf.layers.contextual_attention import ContextualAttention  # noqa: F401
from deepfill_tf.layers.gate_conv import GateConv2D, GateDeconv2D  # noqa: F401
from deepfill_tf.layers.gen_conv import GenConv2D, GenDeconv2D  # noqa: F401
from deepfill_tf.layers.partial_conv import (  # noqa: F401
    PartialConv2D,
    hole_mask_from_valid_mask,
    valid_mask_from_hole_mask,
)
from deepfill_tf.layers.spectral_norm import SNConv2D, spectral_normalize  # noqa: F401
