"""The DeepFill two-stage coarse-to-fine generator (``inpaint_net``), v1 and v2.

One implementation for both versions; they differ only in the points listed in
``DeepFillGenerator`` below. Layer names copy the original variable scopes, so the Keras
variable paths are the TF1 checkpoint keys (``inpaint_net/conv1/kernel`` ...).
"""

from __future__ import annotations

import keras
from keras import ops

from deepfill_tf.layers.contextual_attention import ContextualAttention
from deepfill_tf.layers.gen_conv import GenConv2D, GenDeconv2D
from deepfill_tf.ops.resize import resize_nearest_align_corners

# (scope, filters as a multiple of cnum, kernel, stride, dilation); "up" = GenDeconv2D.
# filters < 1 means cnum // 2. Shared by both versions (v2 gating halves the outputs).
_STAGE1 = [
    ("conv1", 1, 5, 1, 1),
    ("conv2_downsample", 2, 3, 2, 1),
    ("conv3", 2, 3, 1, 1),
    ("conv4_downsample", 4, 3, 2, 1),
    ("conv5", 4, 3, 1, 1),
    ("conv6", 4, 3, 1, 1),
    # -- the hole mask is resized to this (1/4) resolution here --
    ("conv7_atrous", 4, 3, 1, 2),
    ("conv8_atrous", 4, 3, 1, 4),
    ("conv9_atrous", 4, 3, 1, 8),
    ("conv10_atrous", 4, 3, 1, 16),
    ("conv11", 4, 3, 1, 1),
    ("conv12", 4, 3, 1, 1),
    ("conv13_upsample", 2, "up", 1, 1),
    ("conv14", 2, 3, 1, 1),
    ("conv15_upsample", 1, "up", 1, 1),
    ("conv16", 0.5, 3, 1, 1),
]
_STAGE2_CONV = [
    ("xconv1", 1, 5, 1, 1),
    ("xconv2_downsample", 1, 3, 2, 1),  # narrower than stage 1, as in the original
    ("xconv3", 2, 3, 1, 1),
    ("xconv4_downsample", 2, 3, 2, 1),
    ("xconv5", 4, 3, 1, 1),
    ("xconv6", 4, 3, 1, 1),
    ("xconv7_atrous", 4, 3, 1, 2),
    ("xconv8_atrous", 4, 3, 1, 4),
    ("xconv9_atrous", 4, 3, 1, 8),
    ("xconv10_atrous", 4, 3, 1, 16),
]
_STAGE2_ATTENTION_IN = [
    ("pmconv1", 1, 5, 1, 1),
    ("pmconv2_downsample", 1, 3, 2, 1),
    ("pmconv3", 2, 3, 1, 1),
    ("pmconv4_downsample", 4, 3, 2, 1),
    ("pmconv5", 4, 3, 1, 1),
    ("pmconv6", 4, 3, 1, 1),  # ReLU, not ELU: the attention input
]
_STAGE2_ATTENTION_OUT = [("pmconv9", 4, 3, 1, 1), ("pmconv10", 4, 3, 1, 1)]
_STAGE2_MERGE = [
    ("allconv11", 4, 3, 1, 1),
    ("allconv12", 4, 3, 1, 1),
    ("allconv13_upsample", 2, "up", 1, 1),
    ("allconv14", 2, 3, 1, 1),
    ("allconv15_upsample", 1, "up", 1, 1),
    ("allconv16", 0.5, 3, 1, 1),
]


def _build_chain(layers, shape: tuple) -> tuple:
    """Build ``layers`` one after the other from the input ``shape``; the output shape."""
    for layer in layers:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


@keras.saving.register_keras_serializable(package="deepfill_tf")
class DeepFillGenerator(keras.Model):
    """DeepFill generator: coarse network, then refinement with contextual attention.

    v1 (``gated=False``, cnum 32): ELU convs; outputs clipped to [-1, 1]; the refinement stage
    sees the pasted coarse result plus the ones and mask channels (5 channels); flow image
    upsampled by nearest neighbour.
    v2 (``gated=True``, cnum 48): gated convs (see ``GenConv2D``); tanh outputs; the refinement
    stage sees only the 3 pasted channels; flow upsampled bilinearly; optional guidance edge
    channel (``guided=True``) appended to the coarse network's input only.

    Args:
      cnum: base width (32 for v1, 48 for v2 as published; 4-8 for tests).
      gated: v2 gated convolutions (and the v2 differences above).
      guided: v2 with a user guidance (edge) channel.

    Call:
      ``x1, x2, flow = model(image, hole_mask)``
      image: (B, H, W, 3) BGR in [-1, 1] (or (B, H, W, 4) with the edge map in [0, 1] as the 4th
        channel when guided); H and W multiples of 8. Hole pixels are zeroed inside the model
        (``x * (1 - mask)``), so a full or an already-masked image give the same result.
      hole_mask: (1, H, W, 1) shared by the batch (what the original does) or (B, H, W, 1);
        float, 1 = hole.
      x1: (B, H, W, 3) coarse output, BGR in [-1, 1] (before pasting).
      x2: (B, H, W, 3) refined output, BGR in [-1, 1] (before pasting; the inpainted image is
        ``x2 * mask + image * (1 - mask)``).
      flow: (B, H/4, W/4, 3) attention flow colour image in [-1, 1] (for visualisation).
      hole_only (keyword, default False): compute the contextual attention only where the
        decoder reads it for hole pixels (``hole_reach``). x2 is then exact (up to float32
        reassociation) at every hole pixel, which is all the inpainted image keeps, but not
        elsewhere, and the flow is zero away from the hole. Inference uses it; training
        (whose losses read x2 everywhere) does not.
    """

    tf1_scopes = ("inpaint_net",)

    # How far (in 1/4-resolution pixels) from a hole pixel's 4 x 4 block the refinement decoder
    # reads the attention output: pmconv9, pmconv10, allconv11, allconv12 (3 x 3 at 1/4: 4),
    # allconv13_upsample + allconv14 (3 x 3 at 1/2 after a x2 repeat), allconv15_upsample,
    # allconv16, allconv17 (3 x 3 at full resolution): a hole pixel in block k reads blocks
    # k - 6 .. k + 6. ``tests/test_deepfill_hole_only.py`` checks that 6 is exact and 5 is not.
    ATTENTION_READ_RADIUS = 6

    def __init__(self, cnum: int = 48, gated: bool = True, guided: bool = False, **kwargs):
        kwargs.setdefault("name", "inpaint_net")
        super().__init__(**kwargs)
        if guided and not gated:
            raise ValueError("the guided (edge channel) generator exists only for DeepFill v2")
        self.cnum = int(cnum)
        self.gated = bool(gated)
        self.guided = bool(guided)
        self.stage1 = self._make(_STAGE1)
        self.conv17 = self._conv("conv17", 3, 3, activation=None)
        self.xconv = self._make(_STAGE2_CONV)
        self.pmconv_in = self._make(_STAGE2_ATTENTION_IN, last_activation="relu")
        self.contextual_attention = ContextualAttention(
            ksize=3,
            stride=1,
            rate=2,
            fuse_k=3,
            softmax_scale=10.0,
            fuse=True,
            flow_resize="bilinear" if gated else "nearest",
            name="contextual_attention",
            dtype=self.dtype_policy,
        )
        self.pmconv_out = self._make(_STAGE2_ATTENTION_OUT)
        self.allconv = self._make(_STAGE2_MERGE)
        self.allconv17 = self._conv("allconv17", 3, 3, activation=None)

    @property
    def family(self) -> str:
        """Registered family name (``deepfill_tf.registry``): v2 when gated, else v1."""
        return "deepfill_v2" if self.gated else "deepfill_v1"

    @property
    def input_channels(self) -> int:
        """Channels of the image argument: 3, or 4 with the guidance edge map."""
        return 4 if self.guided else 3

    def _conv(self, name, filters, kernel, stride=1, rate=1, activation="elu"):
        return GenConv2D(
            filters,
            kernel,
            strides=stride,
            dilation_rate=rate,
            activation=activation,
            gated=self.gated,
            name=name,
            dtype=self.dtype_policy,
        )

    def _make(self, spec, last_activation="elu"):
        layers = []
        for i, (name, mult, kernel, stride, rate) in enumerate(spec):
            filters = self.cnum // 2 if mult < 1 else self.cnum * mult
            if kernel == "up":
                layers.append(
                    GenDeconv2D(filters, gated=self.gated, name=name, dtype=self.dtype_policy)
                )
            else:
                activation = last_activation if i == len(spec) - 1 else "elu"
                layers.append(self._conv(name, filters, kernel, stride, rate, activation))
        return layers

    def _output(self, y):
        # v1 ends in a plain clip, v2 in tanh (the conv itself is linear and never gated).
        return ops.tanh(y) if self.gated else ops.clip(y, -1.0, 1.0)

    def call(self, image, hole_mask, training=None, hole_only=False):
        out = self._forward(image, hole_mask, hole_only=hole_only)
        return out["x1"], out["x2"], out["flow"]

    def stages(self, image, hole_mask) -> dict:
        """Run the network and return its intermediate tensors, to locate a divergence.

        Keys: "mask_s4" (mask at 1/4), "x1", "ca_in" (contextual-attention input, the
        pmconv6 output), "ca_out", "flow", "x2".
        """
        return self._forward(image, hole_mask)

    def hole_reach(self, hole_mask, size):
        """Where the refinement decoder reads the attention output for the hole's pixels.

        Args:
          hole_mask: (B|1, H, W, 1) float, 1 = hole; H, W multiples of 8.
          size: (H/4, W/4), the attention's resolution.

        Returns:
          (B|1, H/4, W/4, 1) float32, 1 where an output pixel in the hole reads the
          attention output: the hole's 4 x 4 blocks (any hole pixel, so no thin stroke is
          lost to the nearest-neighbour mask), dilated by ``ATTENTION_READ_RADIUS``.
        """
        del size  # H/4 x W/4 by construction (H, W multiples of 8)
        blocks = ops.max_pool(ops.cast(hole_mask, "float32"), 4, strides=4, padding="valid")
        side = 2 * self.ATTENTION_READ_RADIUS + 1
        return ops.max_pool(blocks, side, strides=1, padding="same")

    def _forward(self, image, hole_mask, hole_only: bool = False) -> dict:
        image = ops.convert_to_tensor(image)
        mask = ops.cast(hole_mask, image.dtype)
        x_in = image[..., :3] * (1.0 - mask)
        ones = ops.ones_like(image[..., :1])
        if self.guided:
            # The original feeds the edge map only inside the hole (edge * mask).
            x = ops.concatenate([x_in, image[..., 3:4] * mask, ones, ones * mask], axis=-1)
        else:
            x = ops.concatenate([x_in, ones, ones * mask], axis=-1)

        # Stage 1 (coarse).
        for layer in self.stage1[:6]:
            x = layer(x)
        mask_s4 = resize_nearest_align_corners(mask, size=ops.shape(x)[1:3])
        for layer in self.stage1[6:]:
            x = layer(x)
        x1 = self._output(self.conv17(x))

        # Stage 2 (refinement) on the coarse result pasted into the hole.
        x = x1 * mask + x_in * (1.0 - mask)
        if not self.gated:
            x = ops.concatenate([x, ones, ones * mask], axis=-1)
        conv_branch = x
        for layer in self.xconv:
            conv_branch = layer(conv_branch)
        ca_in = x
        for layer in self.pmconv_in:
            ca_in = layer(ca_in)
        if hole_only:
            region = self.hole_reach(mask, ops.shape(ca_in)[1:3])
            ca_out, flow = self.contextual_attention(ca_in, ca_in, mask_s4, region)
        else:
            ca_out, flow = self.contextual_attention(ca_in, ca_in, mask_s4)
        att = ca_out
        for layer in self.pmconv_out:
            att = layer(att)
        # Conv branch first, then the attention branch, as the original concatenates.
        y = ops.concatenate([conv_branch, att], axis=-1)
        for layer in self.allconv:
            y = layer(y)
        x2 = self._output(self.allconv17(y))
        return {
            "mask_s4": mask_s4,
            "x1": x1,
            "ca_in": ca_in,
            "ca_out": ca_out,
            "flow": flow,
            "x2": x2,
        }

    def build_for(self, height: int = 64, width: int = 64) -> DeepFillGenerator:
        """Create the variables from the layers' shapes (no forward pass); returns self.

        ``height`` and ``width`` only fill the shapes (any multiples of 8 give the same
        variables). Building layer by layer costs a few milliseconds per layer where a dummy
        forward pass took about a second at start-up.
        """
        if self.built:
            return self
        # Under the model's name, as a call would build them: variable paths
        # "inpaint_net/conv1/kernel", ...
        with keras.name_scope(self.name):
            image = (1, height, width, self.input_channels + 2)  # + the ones and mask channels
            self.conv17.build(_build_chain(self.stage1, image))
            refine = (1, height, width, 3 if self.gated else 5)
            conv_branch = _build_chain(self.xconv, refine)
            ca_in = _build_chain(self.pmconv_in, refine)
            self.contextual_attention.build(ca_in, ca_in, ca_in[:3] + (1,))
            att = _build_chain(self.pmconv_out, ca_in)
            merged = _build_chain(self.allconv, conv_branch[:3] + (conv_branch[3] + att[3],))
            self.allconv17.build(merged)
        self.built = True
        return self

    def get_build_config(self):
        return {"built": self.built}

    def build_from_config(self, config):
        # Variables do not depend on the image size: any size builds them.
        if config.get("built"):
            self.build_for(64, 64)

    def get_config(self):
        return {
            **super().get_config(),
            "cnum": self.cnum,
            "gated": self.gated,
            "guided": self.guided,
        }


@keras.saving.register_keras_serializable(package="deepfill_tf")
class DeepFillV1Generator(DeepFillGenerator):
    """DeepFill v1 generator (contextual attention, no gating), published width cnum 32."""

    def __init__(self, cnum: int = 32, **kwargs):
        kwargs.pop("gated", None)
        kwargs.pop("guided", None)
        super().__init__(cnum=cnum, gated=False, guided=False, **kwargs)

    @classmethod
    def tiny(cls, **kwargs):
        """Test-sized generator (cnum 4)."""
        return cls(cnum=4, **kwargs)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class DeepFillV2Generator(DeepFillGenerator):
    """DeepFill v2 generator (gated convolutions), published width cnum 48, optionally guided."""

    def __init__(self, cnum: int = 48, guided: bool = False, **kwargs):
        kwargs.pop("gated", None)
        super().__init__(cnum=cnum, gated=True, guided=guided, **kwargs)

    @classmethod
    def tiny(cls, **kwargs):
        """Test-sized generator (cnum 8, so gated layers keep >= 2 channels)."""
        return cls(cnum=8, **kwargs)
