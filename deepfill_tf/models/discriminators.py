"""DeepFill discriminators: v2's SN-PatchGAN and v1's local + global WGAN critics.

Both are stacks of 5x5 stride-2 TF-SAME convolutions with bias and leaky ReLU (slope 0.2),
flattened in NHWC order, named after the original TF1 variable scopes so original checkpoints
load with ``deepfill_tf.convert.load_tf1_checkpoint(model, path)`` (strict, key by key; the
models define ``tf1_variable_table()`` and ``tf1_scopes``).
"""

from __future__ import annotations

import keras
from keras import ops

from deepfill_tf.errors import InputError
from deepfill_tf.layers.spectral_norm import SNConv2D


@keras.saving.register_keras_serializable(package="deepfill_tf")
class DiscriminatorConvStack(keras.layers.Layer):
    """``conv1..convN``: 5x5 stride-2 SAME conv + bias + leaky ReLU 0.2 each, then flatten.

    Args:
      filters: output channels of each conv, e.g. ``(64, 128, 256, 256, 256, 256)``.
      spectral_norm: use ``SNConv2D`` (neuralgym spectral norm, ``u`` updated on every call)
        instead of a plain ``keras.layers.Conv2D``.

    Input shape: ``(B, H, W, C)`` NHWC float.
    Output shape: ``(B, ceil(H/2^N) * ceil(W/2^N) * filters[-1])``, flattened NHWC (row-major
    over height, width, channel, as ``tf.reshape`` of the original).
    """

    def __init__(self, filters, spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.spectral_norm = bool(spectral_norm)
        self.convs = []
        for i, width in enumerate(self.filters, start=1):
            if self.spectral_norm:
                conv = SNConv2D(width, 5, 2, name=f"conv{i}", dtype=self.dtype_policy)
            else:
                conv = keras.layers.Conv2D(
                    width,
                    5,
                    strides=2,
                    padding="same",  # TF SAME: 5x5 stride 2 pads 1/2 on even sizes, 2/2 on odd
                    activation="leaky_relu",  # Keras' default slope is 0.2, as the original
                    name=f"conv{i}",
                    dtype=self.dtype_policy,
                )
            self.convs.append(conv)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)

    def call(self, inputs):
        x = inputs
        for conv in self.convs:
            x = conv(x)
        return ops.reshape(x, (ops.shape(x)[0], -1))  # NHWC -> (B, h*w*c)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        n = len(self.filters)
        if height is None or width is None:
            return (batch, None)
        return (batch, _ceil_div(height, 2**n) * _ceil_div(width, 2**n) * self.filters[-1])

    def tf1_variables(self, scope: str) -> dict:
        """``{TF1 name: variable}`` of every conv under ``scope`` (e.g. ``.../conv1/kernel``)."""
        table = {}
        for conv in self.convs:
            if self.spectral_norm:
                table.update(conv.tf1_variables(f"{scope}/{conv.name}"))
            else:
                table[f"{scope}/{conv.name}/kernel"] = conv.kernel
                table[f"{scope}/{conv.name}/bias"] = conv.bias
        return table

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, spectral_norm=self.spectral_norm)
        return config


@keras.saving.register_keras_serializable(package="deepfill_tf")
class SNPatchGANDiscriminator(keras.Model):
    """DeepFill v2 SN-PatchGAN discriminator (``discriminator/sn_patch_gan/conv1..conv6``).

    Six spectrally normalised 5x5 stride-2 SAME convs with ``cnum, 2cnum, 4cnum, 4cnum, 4cnum,
    4cnum`` outputs, each followed by leaky ReLU 0.2 (also the last), flattened NHWC; no dense
    layer. Every call advances the spectral-norm ``u`` of each conv by one power iteration
    (the original's behaviour, also at inference).

    Args:
      cnum: base width; 64 in the published model, 4-8 for tests (``tiny()``).

    Input shape: ``(B, H, W, C)``: BGR in [-1, 1] plus the hole mask (1 = hole) as channel 4
      (``gan_with_mask``), plus the edge channel when guided (C = 5). In training the batch
      is ``concat([real, completed], 0)``.
    Output shape: ``(B, ceil(H/64) * ceil(W/64) * 4cnum)`` (the hinge loss averages it).

    TF1 variables: ``discriminator/sn_patch_gan/conv{1..6}/{kernel, bias, kernel_sn/u}``.
    """

    tf1_scopes = ("discriminator",)

    def __init__(self, cnum: int = 64, name: str = "discriminator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.cnum = int(cnum)
        widths = (cnum, 2 * cnum, 4 * cnum, 4 * cnum, 4 * cnum, 4 * cnum)
        self.sn_patch_gan = DiscriminatorConvStack(
            widths, spectral_norm=True, name="sn_patch_gan", dtype=self.dtype_policy
        )

    @classmethod
    def tiny(cls, **kwargs) -> SNPatchGANDiscriminator:
        """A narrow copy (cnum 4) for tests and smoke runs."""
        return cls(cnum=kwargs.pop("cnum", 4), **kwargs)

    def build(self, input_shape):
        self.sn_patch_gan.build(input_shape)

    def call(self, inputs):
        return self.sn_patch_gan(inputs)

    def compute_output_shape(self, input_shape):
        return self.sn_patch_gan.compute_output_shape(input_shape)

    def tf1_variable_table(self) -> dict:
        """``{TF1 checkpoint name: variable}`` for ``load_tf1_checkpoint``."""
        return self.sn_patch_gan.tf1_variables("discriminator/sn_patch_gan")

    def get_config(self):
        return {"cnum": self.cnum, "name": self.name, "trainable": self.trainable}


@keras.saving.register_keras_serializable(package="deepfill_tf")
class WGANLocalGlobalCritics(keras.Model):
    """DeepFill v1 WGAN-GP critics: one on the local (hole) patch, one on the whole image.

    ``d_local, d_global = critics(local_patch, global_image)``.

    * local: ``discriminator/discriminator_local/conv1..4`` (cnum, 2cnum, 4cnum, 8cnum),
      flatten NHWC, ``discriminator/dout_local_fc`` dense to 1;
    * global: ``discriminator/discriminator_global/conv1..4`` (cnum, 2cnum, 4cnum, 4cnum),
      flatten NHWC, ``discriminator/dout_global_fc`` dense to 1.

    The dense heads sit directly under ``discriminator/`` (not inside the local / global
    scopes) and their kernels have ``ceil(h/16) * ceil(w/16) * width`` rows, so the model is
    made for one image size and one local patch size (the original trains 256x256 images with
    128x128 boxes). No mask channel (``GAN_WITH_MASK: False``), no spectral norm, no state.

    Args:
      cnum: base width; 64 in the published model, 4-8 for tests (``tiny()``).
      image_size: ``(H, W)`` of the global input.
      local_size: ``(h, w)`` of the local patch; default half the image size.
      channels: input channels (3: BGR).

    Inputs: ``local_patch`` ``(B, h, w, channels)`` and ``global_image`` ``(B, H, W, channels)``,
      BGR in [-1, 1] (batch ``concat([real, completed], 0)`` in training, or interpolates for
      the gradient penalty).
    Outputs: ``(d_local, d_global)``, each ``(B, 1)`` unbounded critic scores.
    """

    tf1_scopes = ("discriminator",)

    def __init__(
        self,
        cnum: int = 64,
        image_size=(256, 256),
        local_size=None,
        channels: int = 3,
        name: str = "discriminator",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.cnum = int(cnum)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        if local_size is None:
            local_size = (self.image_size[0] // 2, self.image_size[1] // 2)
        self.local_size = (int(local_size[0]), int(local_size[1]))
        self.channels = int(channels)
        policy = self.dtype_policy
        self.discriminator_local = DiscriminatorConvStack(
            (cnum, 2 * cnum, 4 * cnum, 8 * cnum), name="discriminator_local", dtype=policy
        )
        self.discriminator_global = DiscriminatorConvStack(
            (cnum, 2 * cnum, 4 * cnum, 4 * cnum), name="discriminator_global", dtype=policy
        )
        self.dout_local_fc = keras.layers.Dense(1, name="dout_local_fc", dtype=policy)
        self.dout_global_fc = keras.layers.Dense(1, name="dout_global_fc", dtype=policy)

    @classmethod
    def tiny(cls, **kwargs) -> WGANLocalGlobalCritics:
        """A narrow copy (cnum 4, 64x64 images, 32x32 patches) for tests and smoke runs."""
        kwargs.setdefault("cnum", 4)
        kwargs.setdefault("image_size", (64, 64))
        return cls(**kwargs)

    def build(self, local_patch_shape=None, global_image_shape=None):
        local_shape = (None, *self.local_size, self.channels)
        global_shape = (None, *self.image_size, self.channels)
        self.discriminator_local.build(local_shape)
        self.discriminator_global.build(global_shape)
        self.dout_local_fc.build(self.discriminator_local.compute_output_shape(local_shape))
        self.dout_global_fc.build(self.discriminator_global.compute_output_shape(global_shape))

    def call(self, local_patch, global_image):
        self._check_size("local_patch", local_patch, self.local_size)
        self._check_size("global_image", global_image, self.image_size)
        d_local = self.dout_local_fc(self.discriminator_local(local_patch))
        d_global = self.dout_global_fc(self.discriminator_global(global_image))
        return d_local, d_global

    def _check_size(self, what, x, size):
        # The dense kernels fix the spatial size; say so instead of a matmul shape error.
        static = tuple(x.shape[1:4])
        expected = (*size, self.channels)
        if all(s is not None for s in static) and static != expected:
            raise InputError(
                f"{what} is {static[0]}x{static[1]}x{static[2]} but these critics were built for"
                f" {expected[0]}x{expected[1]}x{expected[2]} (image_size={self.image_size},"
                f" local_size={self.local_size})"
            )

    def compute_output_shape(self, local_patch_shape, global_image_shape):
        return (local_patch_shape[0], 1), (global_image_shape[0], 1)

    def tf1_variable_table(self) -> dict:
        """``{TF1 checkpoint name: variable}`` for ``load_tf1_checkpoint``."""
        table = {}
        table.update(self.discriminator_local.tf1_variables("discriminator/discriminator_local"))
        table.update(self.discriminator_global.tf1_variables("discriminator/discriminator_global"))
        for dense in (self.dout_local_fc, self.dout_global_fc):
            table[f"discriminator/{dense.name}/kernel"] = dense.kernel
            table[f"discriminator/{dense.name}/bias"] = dense.bias
        return table

    def get_config(self):
        return {
            "cnum": self.cnum,
            "image_size": self.image_size,
            "local_size": self.local_size,
            "channels": self.channels,
            "name": self.name,
            "trainable": self.trainable,
        }


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
