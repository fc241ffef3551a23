"""Context Encoder: the encoder-decoder generator of the released code and its DCGAN critic.

Paper reference: Pathak, Krähenbühl, Donahue, Darrell & Efros, "Context Encoders: Feature
Learning by Inpainting" (CVPR 2016); code pathak22/context-encoder (``train.lua`` builds
``netG`` and ``netD``; the released ``models/inpaintCenter/*.t7`` are ``netG``).
``load_context_encoder_t7`` reads those files, taking every width from the weight shapes.

Conventions (the original's): images RGB in [-1, 1] (``x * 2 - 1``); the generator sees the
whole 128x128 image with its centre filled by the mean colour and predicts the 64x64 centre.
"""

from __future__ import annotations

import keras
from keras import ops

from deepfill_tf.convert.torch7 import (
    ConvSpec,
    TorchLayerSlot,
    assign_torch7,
    module_specs,
    read_t7,
)
from deepfill_tf.errors import CheckpointError
from deepfill_tf.models.glcic import TorchConv2D, torch_batch_norm

# The released code works on 128x128 images and predicts the 64x64 centre.
INPUT_SIZE = 128
OUTPUT_SIZE = 64
# demo.lua / train.lua fill the centre with this colour (2 * (117, 104, 123) / 255 - 1).
FILL_COLOUR_255 = (117.0, 104.0, 123.0)
LEAKY_SLOPE = 0.2
# Encoder widths (multiples of nef) of the five 4x4 stride-2 convolutions for 128x128 input.
ENCODER_MULTS = (1, 1, 2, 4, 8)
# Decoder widths (multiples of ngf) of the four full convolutions before the RGB one.
DECODER_MULTS = (8, 4, 2, 1)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class ContextEncoderGenerator(keras.Model):
    """``netG`` of ``train.lua`` (noiseGen off), for 128x128 inputs.

    Encoder ``netE``: conv 4x4/2 (nef) + LeakyReLU 0.2; four conv 4x4/2 (nef, 2nef, 4nef, 8nef)
    + BN + LeakyReLU; a 4x4 VALID conv to the ``bottleneck`` (4x4 -> 1x1). Then BN +
    LeakyReLU; decoder: full conv 4x4 VALID (1x1 -> 4x4, 8ngf) + BN + ReLU; three full conv
    4x4/2 pad 1 (4ngf, 2ngf, ngf) + BN + ReLU; full conv 4x4/2 to RGB; tanh.

    Args:
      nef, ngf: encoder / decoder base widths (64 released). bottleneck: 4000 in the README's
        training command (100 is ``train.lua``'s default). channels: 3.
      region: ``"centre"`` (``train.lua``, the released models: the 64x64 centre is
        predicted) or ``"random"`` (``train_random.lua``, the paper's random-region variant:
        one more full convolution (ngf) + BN + ReLU, the whole 128x128 image is predicted).

    Input: (B, 128, 128, channels), RGB in [-1, 1] with the region filled
      (``fill_centre``). Output: (B, 64, 64, channels) in [-1, 1] (tanh), the predicted centre
      plus ``overlap`` pixels of border on every side when the model was trained with one;
      (B, 128, 128, channels) for ``region="random"``.
    """

    # The registered family (deepfill_tf.registry.family_of) of this generator.
    family = "context_encoder"

    def __init__(
        self,
        nef: int = 64,
        ngf: int = 64,
        bottleneck: int = 4000,
        channels: int = 3,
        region: str = "centre",
        name: str = "context_encoder",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if region not in ("centre", "random"):
            raise ValueError(f"region must be 'centre' or 'random', got {region!r}")
        self.region = region
        decoder_mults = DECODER_MULTS + ((1,) if region == "random" else ())
        self.nef, self.ngf, self.bottleneck, self.channels = (
            int(nef),
            int(ngf),
            int(bottleneck),
            int(channels),
        )
        dtype = self.dtype_policy
        self.enc_convs = [
            TorchConv2D(m * self.nef, 4, strides=2, pad=1, name=f"enc_conv{i}", dtype=dtype)
            for i, m in enumerate(ENCODER_MULTS, start=1)
        ]
        self.enc_norms = [
            torch_batch_norm(f"enc_bn{i}", dtype) for i in range(2, len(ENCODER_MULTS) + 1)
        ]
        self.enc_bottleneck = TorchConv2D(self.bottleneck, 4, name="enc_bottleneck", dtype=dtype)
        self.bottleneck_norm = torch_batch_norm("bottleneck_bn", dtype)
        self.dec_convs = [
            TorchConv2D(
                decoder_mults[0] * self.ngf, 4, transposed=True, name="dec_conv1", dtype=dtype
            )
        ]
        self.dec_convs += [
            TorchConv2D(
                m * self.ngf, 4, strides=2, pad=1, transposed=True, name=f"dec_conv{i}", dtype=dtype
            )
            for i, m in enumerate(decoder_mults[1:], start=2)
        ]
        self.dec_norms = [
            torch_batch_norm(f"dec_bn{i}", dtype) for i in range(1, len(decoder_mults) + 1)
        ]
        self.dec_output = TorchConv2D(
            self.channels, 4, strides=2, pad=1, transposed=True, name="dec_output", dtype=dtype
        )

    @classmethod
    def tiny(cls, **kwargs) -> ContextEncoderGenerator:
        """The tests' configuration: nef = ngf = 8, bottleneck 32."""
        return cls(nef=8, ngf=8, bottleneck=32, **kwargs)

    def _check(self, shape):
        want = (INPUT_SIZE, INPUT_SIZE, self.channels)
        if len(shape) != 4 or any(
            n is not None and n != m for n, m in zip(shape[1:], want, strict=True)
        ):
            raise ValueError(
                f"the Context Encoder takes (B, {INPUT_SIZE}, {INPUT_SIZE}, {self.channels}) inputs,"
                f" got {tuple(shape)}"
            )

    def build(self, input_shape):
        self._check(tuple(input_shape))
        shape = tuple(input_shape)
        for i, conv in enumerate(self.enc_convs):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if i:
                self.enc_norms[i - 1].build(shape)
        self.enc_bottleneck.build(shape)
        shape = self.enc_bottleneck.compute_output_shape(shape)
        self.bottleneck_norm.build(shape)
        for conv, norm in zip(self.dec_convs, self.dec_norms, strict=True):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
        self.dec_output.build(shape)

    def call(self, inputs, training=None):
        self._check(tuple(inputs.shape))
        x = ops.leaky_relu(self.enc_convs[0](inputs), LEAKY_SLOPE)
        for conv, norm in zip(self.enc_convs[1:], self.enc_norms, strict=True):
            x = ops.leaky_relu(norm(conv(x), training=training), LEAKY_SLOPE)
        x = self.enc_bottleneck(x)  # (B, 1, 1, bottleneck)
        x = ops.leaky_relu(self.bottleneck_norm(x, training=training), LEAKY_SLOPE)
        for conv, norm in zip(self.dec_convs, self.dec_norms, strict=True):
            x = ops.relu(norm(conv(x), training=training))
        return ops.tanh(self.dec_output(x))

    def compute_output_shape(self, input_shape):
        size = INPUT_SIZE if self.region == "random" else OUTPUT_SIZE
        return (input_shape[0], size, size, self.channels)

    def torch7_slots(self) -> list[TorchLayerSlot]:
        """The 31 leaves of the released ``netG`` (encoder ``netE`` nested as module 1)."""
        lrelu = TorchLayerSlot("leaky_relu", negative_slope=LEAKY_SLOPE)
        slots = [self.enc_convs[0].torch_slot(), lrelu]
        for conv, norm in zip(self.enc_convs[1:], self.enc_norms, strict=True):
            slots += [conv.torch_slot(), TorchLayerSlot("bn", norm), lrelu]
        slots += [
            self.enc_bottleneck.torch_slot(),
            TorchLayerSlot("bn", self.bottleneck_norm),
            lrelu,
        ]
        for conv, norm in zip(self.dec_convs, self.dec_norms, strict=True):
            slots += [conv.torch_slot(), TorchLayerSlot("bn", norm), TorchLayerSlot("relu")]
        return [*slots, self.dec_output.torch_slot(), TorchLayerSlot("tanh")]

    def get_config(self):
        return {
            **super().get_config(),
            "nef": self.nef,
            "ngf": self.ngf,
            "bottleneck": self.bottleneck,
            "channels": self.channels,
            "region": self.region,
        }


def fill_centre(images, overlap: int = 4):
    """Fill the centre of (B, 128, 128, 3) images in [-1, 1] with the original's mean colour.

    Rows and columns ``[32 + overlap, 96 - overlap)`` are set to ``2 * (117, 104, 123) / 255 -
    1`` (``demo.lua`` L62-64, ``train.lua``): the network sees ``overlap`` pixels of the true
    centre's border.
    """
    lo, hi = INPUT_SIZE // 4 + overlap, INPUT_SIZE // 4 + OUTPUT_SIZE - overlap
    fill = ops.cast(
        ops.convert_to_tensor([2.0 * c / 255.0 - 1.0 for c in FILL_COLOUR_255]), images.dtype
    )
    rows = ops.arange(INPUT_SIZE)
    inside = ops.logical_and(rows >= lo, rows < hi)
    region = ops.cast(ops.logical_and(inside[:, None], inside[None, :]), images.dtype)[
        None, :, :, None
    ]
    return images * (1.0 - region) + ops.reshape(fill, (1, 1, 1, -1)) * region


def paste_centre(images, prediction, overlap: int = 4):
    """``demo.lua`` L73: the prediction without its ``overlap`` border replaces the filled
    region ``[32 + overlap, 96 - overlap)`` of (B, 128, 128, 3) images (all in [-1, 1])."""
    o = overlap
    inner = prediction[:, o : OUTPUT_SIZE - o, o : OUTPUT_SIZE - o, :]
    lo = INPUT_SIZE // 4 + o
    pad = [
        [0, 0],
        [lo, INPUT_SIZE - lo - (OUTPUT_SIZE - 2 * o)],
        [lo, INPUT_SIZE - lo - (OUTPUT_SIZE - 2 * o)],
        [0, 0],
    ]
    region = ops.pad(ops.ones_like(inner[..., :1]), pad)
    return images * (1.0 - region) + ops.pad(inner, pad)


def load_context_encoder_t7(path) -> ContextEncoderGenerator:
    """Build a :class:`ContextEncoderGenerator` from a released ``netG`` ``.t7`` file.

    ``nef``, ``ngf``, the bottleneck and the channel count come from the weight shapes; both
    the current nn layout and the pre-2016 one (BN ``running_std``, no ``adjW``) are read.

    Raises:
      CheckpointError: one line naming the file, module path and class that does not fit.
    """
    path = str(path)
    root = read_t7(path)
    if isinstance(root, dict) and "model" in root:
        raise CheckpointError(
            f"{path}: a table {{model, mean}} (a GLCIC file?), not a Context Encoder netG;"
            " try --model glcic"
        )
    specs = module_specs(root, path)
    convs = [s for s in specs if isinstance(s, ConvSpec)]
    if len(convs) < 7 or convs[0].transposed or convs[0].kernel_size != (4, 4):
        first = specs[0] if specs else None
        what = f"module {first.path} ({first.class_name})" if first else "no modules"
        raise CheckpointError(
            f"{path}: not a Context Encoder generator (expected 4x4 convolutions starting with"
            f" the encoder; found {what} and {len(convs)} convolutions)"
        )
    model = ContextEncoderGenerator(
        nef=convs[0].out_channels,
        ngf=convs[-1].in_channels,
        bottleneck=convs[len(ENCODER_MULTS)].out_channels,
        channels=convs[0].in_channels,
        # train_random.lua's generator has one more full convolution (128x128 output).
        region="random" if sum(c.transposed for c in convs) > len(DECODER_MULTS) + 1 else "centre",
    )
    model.build((None, INPUT_SIZE, INPUT_SIZE, model.channels))
    assign_torch7(specs, model.torch7_slots(), path)
    return model


@keras.saving.register_keras_serializable(package="deepfill_tf")
class ContextEncoderDiscriminator(keras.Model):
    """``netD`` of ``train.lua`` (conditionAdv off): the DCGAN discriminator of the centre.

    conv 4x4/2 (ndf) + LeakyReLU 0.2; three conv 4x4/2 (2ndf, 4ndf, 8ndf) + BN + LeakyReLU;
    conv 4x4 VALID to 1 (4x4 -> 1x1). The original ends with a sigmoid; this returns the logit
    (the binary cross-entropy of training applies the sigmoid). ``input_size=128``
    (``train_random.lua``) adds a conv 4x4/2 (ndf) + BN + LeakyReLU after the first.

    Input: (B, input_size, input_size, 3) in [-1, 1]. Output: (B, 1) logits.
    """

    def __init__(
        self,
        ndf: int = 64,
        input_size: int = OUTPUT_SIZE,
        name: str = "context_encoder_discriminator",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.ndf, self.input_size = int(ndf), int(input_size)
        if self.input_size not in (OUTPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"input_size must be 64 or 128, got {input_size}")
        mults = (1, 1, 2, 4, 8) if self.input_size == INPUT_SIZE else (1, 2, 4, 8)
        dtype = self.dtype_policy
        self.convs = [
            TorchConv2D(m * self.ndf, 4, strides=2, pad=1, name=f"conv{i}", dtype=dtype)
            for i, m in enumerate(mults, start=1)
        ]
        self.norms = [torch_batch_norm(f"bn{i}", dtype) for i in range(2, len(mults) + 1)]
        self.out_conv = TorchConv2D(1, 4, name=f"conv{len(mults) + 1}", dtype=dtype)

    @classmethod
    def tiny(cls, **kwargs) -> ContextEncoderDiscriminator:
        return cls(ndf=8, **kwargs)

    def call(self, inputs, training=None):
        n = self.input_size
        if any(d is not None and d != n for d in inputs.shape[1:3]):
            raise ValueError(
                f"the discriminator takes (B, {n}, {n}, 3) images, got {tuple(inputs.shape)}"
            )
        x = ops.leaky_relu(self.convs[0](inputs), LEAKY_SLOPE)
        for conv, norm in zip(self.convs[1:], self.norms, strict=True):
            x = ops.leaky_relu(norm(conv(x), training=training), LEAKY_SLOPE)
        return ops.reshape(self.out_conv(x), (-1, 1))

    def get_config(self):
        return {**super().get_config(), "ndf": self.ndf, "input_size": self.input_size}
