"""Networks of every family, named after the original variable scopes."""

from deepfill_tf.models.context_encoder import ContextEncoderDiscriminator, ContextEncoderGenerator  # noqa: F401
from deepfill_tf.models.deepfill_generator import (  # noqa: F401
    DeepFillGenerator,
    DeepFillV1Generator,
    DeepFillV2Generator,
)
from deepfill_tf.models.discriminators import (  # noqa: F401
    DiscriminatorConvStack,
    SNPatchGANDiscriminator,
    WGANLocalGlobalCritics,
)
from deepfill_tf.models.glcic import GLCICCompletionNet, GLCICDiscriminator  # noqa: F401
from deepfill_tf.models.partial_conv_unet import PartialConvUNet  # noqa: F401
from deepfill_tf.models.sc_fegan import SCFEGANGenerator  # noqa: F401
