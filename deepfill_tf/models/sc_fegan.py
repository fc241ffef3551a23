"""SC-FEGAN generator: a gated-conv U-Net conditioned on sketch, colour, mask and noise.

Paper reference: Jo & Park, "SC-FEGAN: Face Editing Generative Adversarial Network with User's
Sketch and Color" (ICCV 2019). Reproduces ``Model.build_gen`` of run-youngjoo/SC-FEGAN; layer
names copy the original scopes so the released checkpoint loads with
``deepfill_tf.convert.load_tf1_checkpoint(model, path)``. The inputs are prepared by
``deepfill_tf.families.scfegan.inputs``.
"""

from __future__ import annotations

import keras
from keras import ops

from deepfill_tf.layers.gate_conv import GateConv2D, GateDeconv2D

# Seven stride-2 encoder layers: H and W must be multiples of 2**7 for the skips to line up.
SIZE_MULTIPLE = 128
INPUT_CHANNELS = 9

# (name, width multiple of cnum, kernel, use_lrn); all stride 2.
_ENCODER = (
    ("gconv1_ds", 1, 7, False),
    ("gconv2_ds", 2, 5, True),
    ("gconv3_ds", 4, 5, True),
    ("gconv4_ds", 8, 3, True),
    ("gconv5_ds", 8, 3, True),
    ("gconv6_ds", 8, 3, True),
    ("gconv7_ds", 8, 3, True),
)
# (name, dilation rate) of the 3x3 bottleneck layers (8 * cnum channels).
_DILATED = (("co_conv1_dlt", 2), ("co_conv2_dlt", 4), ("co_conv3_dlt", 8), ("co_conv4_dlt", 16))
# (deconv name, conv name, width multiple) of the decoder; the deconv output is concatenated
# AFTER the encoder skip of the same size, then fused by the 3x3 gate conv.
_DECODER = (
    ("deconv1", "gconv8", 8),
    ("deconv2", "gconv9", 8),
    ("deconv3", "gconv10", 8),
    ("deconv4", "gconv11", 4),
    ("deconv5", "gconv12", 2),
    ("deconv6", "gconv13", 1),
)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class SCFEGANGenerator(keras.Model):
    """The SC-FEGAN generator (``build_gen``): 7 gated stride-2 convs, 4 dilated gated convs,
    7 gated transposed convs with U-Net skips, a linear gated conv and tanh.

    Skips are the encoder's gated outputs x1..x6, concatenated BEFORE the upsampled tensor; the
    last conv (``gconv14``, no LRN, no activation) sees concat[the whole 9-channel input,
    deconv7]. The transposed convs are bug-compatible (``y * sigmoid(y)``, see
    ``GateDeconv2D``). Sizes at 512x512: 256, 128, 64, 32, 16, 8, 4 (bottleneck), back to 512.

    Args:
      cnum: base width (64 in the released model; 92,886,100 parameters). ``tiny()`` gives 4.

    Input: (B, H, W, 9) float32 with H, W multiples of 128, channels in the original's order
      (``deepfill_tf.families.scfegan.inputs.prepare_scfegan_batch`` builds it):
      0-2 incomplete image = image * (1 - mask), BGR in [-1, 1] (0 in the hole); 3 sketch {0, 1};
      4-6 colour strokes, BGR in [-1, 1] inside the hole (-1 where not stroked), 0 outside;
      7 mask {0, 1}, 1 = hole; 8 noise {0, 1}, zero outside the hole.
    Output: (B, H, W, 3) tanh output, BGR in [-1, 1], before compositing. With
      ``return_gate=True``: ``(output, gate of gconv14)`` like the original.
    """

    # Every original variable lives under this scope, whatever the Keras model is called.
    tf1_scopes = ("generator",)
    family = "scfegan"  # registered family name (deepfill_tf.registry)

    def __init__(self, cnum: int = 64, name: str = "generator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.cnum = int(cnum)
        dtype = self.dtype_policy
        self.encoder = [
            GateConv2D(mult * cnum, k, strides=2, use_lrn=lrn, name=n, dtype=dtype)
            for n, mult, k, lrn in _ENCODER
        ]
        self.dilated = [
            GateConv2D(8 * cnum, 3, dilation_rate=rate, name=n, dtype=dtype) for n, rate in _DILATED
        ]
        self.deconvs = []
        self.fuse_convs = []
        for deconv_name, conv_name, mult in _DECODER:
            self.deconvs.append(GateDeconv2D(mult * cnum, name=deconv_name, dtype=dtype))
            self.fuse_convs.append(GateConv2D(mult * cnum, 3, name=conv_name, dtype=dtype))
        self.deconv7 = GateDeconv2D(3, name="deconv7", dtype=dtype)
        self.gconv14 = GateConv2D(3, 3, use_lrn=False, activation=None, name="gconv14", dtype=dtype)

    @classmethod
    def tiny(cls, **kwargs) -> SCFEGANGenerator:
        """The tests' configuration: cnum 4 (368,080 parameters); run it at 128x128."""
        return cls(cnum=4, **kwargs)

    def _layers_in_original_order(self):
        yield from self.encoder
        yield from self.dilated
        for deconv, conv in zip(self.deconvs, self.fuse_convs, strict=True):
            yield deconv
            yield conv
        yield self.deconv7
        yield self.gconv14

    @staticmethod
    def _check_input_shape(shape):
        if len(shape) != 4 or shape[-1] != INPUT_CHANNELS:
            raise ValueError(f"SC-FEGAN expects (B, H, W, 9) inputs, got shape {tuple(shape)}")
        for n in shape[1:3]:
            if n is not None and n % SIZE_MULTIPLE:
                raise ValueError(
                    f"SC-FEGAN needs H and W divisible by {SIZE_MULTIPLE}, got"
                    f" {shape[1]}x{shape[2]} (resize first; the demo uses 512x512)"
                )

    def build(self, input_shape):
        # Build every layer from propagated shapes, so the published width can be created
        # (and its variable names checked) without running a forward pass.
        self._check_input_shape(input_shape)
        shape = tuple(input_shape)
        skips = []
        for layer in self.encoder:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
            skips.append(shape)
        for layer in self.dilated:
            layer.build(shape)
        for deconv, conv, skip in zip(
            self.deconvs, self.fuse_convs, reversed(skips[:-1]), strict=True
        ):
            deconv.build(shape)
            up = deconv.compute_output_shape(shape)
            shape = (*up[:3], skip[-1] + up[-1])
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.deconv7.build(shape)
        up = self.deconv7.compute_output_shape(shape)
        self.gconv14.build((*up[:3], INPUT_CHANNELS + up[-1]))

    def call(self, inputs, return_gate: bool = False):
        self._check_input_shape(tuple(inputs.shape))
        x = inputs
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        for layer in self.dilated:
            x = layer(x)
        # x6 pairs with deconv1, ..., x1 with deconv6 (x7 is the bottleneck, not a skip).
        for deconv, conv, skip in zip(
            self.deconvs, self.fuse_convs, reversed(skips[:-1]), strict=True
        ):
            x = conv(ops.concatenate([skip, deconv(x)], axis=-1))
        # The last layer sees the whole 9-channel input, not just the image.
        x = ops.concatenate([inputs, self.deconv7(x)], axis=-1)
        x, gate = self.gconv14(x, return_gate=True)
        output = ops.tanh(x)
        return (output, gate) if return_gate else output

    def compute_output_shape(self, input_shape, return_gate: bool = False):
        shape = (*tuple(input_shape)[:3], 3)
        return (shape, shape) if return_gate else shape

    def tf1_variable_table(self) -> dict:
        """Original TF1 names -> variables, in the original's creation order, e.g.
        ``generator/gconv1_ds/kernel``, ``generator/gconv1_ds_g/bias``, ``generator/deconv1/w``
        (93 entries, the names of generator_variables_512.txt)."""
        if not self.built:
            raise ValueError("build the model (call it once) before asking for its variables")
        scope = self.tf1_scopes[0]
        table = {}
        for layer in self._layers_in_original_order():
            table.update(layer.tf1_variable_table(f"{scope}/{layer.name}"))
        return table

    def get_config(self):
        return {**super().get_config(), "cnum": self.cnum}
