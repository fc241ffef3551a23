"""DeepFill generator convolutions: ``gen_conv`` (v1 plain, v2 gated) and ``gen_deconv``.

Paper references: Yu et al., "Generative Image Inpainting with Contextual Attention" (CVPR 2018,
v1) and "Free-Form Image Inpainting with Gated Convolution" (ICCV 2019, v2).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from deepfill_tf.ops.gating import gated_elu, gated_elu_bias
from deepfill_tf.ops.upsample_conv import upsample2x_conv3x3


@keras.saving.register_keras_serializable(package="deepfill_tf")
class GenConv2D(keras.layers.Layer):
    """The original ``gen_conv``: a TF 'SAME' conv with bias, then the activation or gating.

    Ungated (DeepFill v1): ``activation(conv(x))`` with ``filters`` output channels.

    Gated (DeepFill v2): ONE kernel to ``filters`` channels whose first half are features and
    second half the gate: ``activation(y[..., :filters//2]) * sigmoid(y[..., filters//2:])``, so
    the layer outputs ``filters // 2`` channels. This is what the original code does (conv1's
    kernel is 5x5x5x48 with cnum 48), not the paper's "2x channels" description. (The two halves
    are computed as two convolutions, see ``activate``.) With ``activation=None``
    (the 3-channel output convs) or ``filters == 3`` the layer is never gated: the original
    returns the conv as it is.

    Args:
      filters: conv output channels (``cnum`` in the original).
      kernel_size: square kernel size.
      strides: conv stride. TF 'SAME' padding: asymmetric (more after) for stride 2 on even sizes.
      dilation_rate: conv dilation (``rate`` in the original).
      activation: "elu" (default), "relu", or None for a linear conv.
      gated: apply v2 gating (ignored when ``activation`` is None).

    Input shape: (B, H, W, C_in) float.
    Output shape: (B, ceil(H/s), ceil(W/s), filters or filters // 2 when gated).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        dilation_rate: int = 1,
        activation: str | None = "elu",
        gated: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.activation = keras.activations.get(activation) if activation else None
        self.activation_name = activation
        self.gated = bool(gated)
        if self.is_gated and self.filters % 2:
            raise ValueError(f"a gated conv needs an even number of filters, got {filters}")

    @property
    def is_gated(self) -> bool:
        # The original skips gating for linear convs and for 3-filter convs (the output layer).
        return self.gated and self.activation is not None and self.filters != 3

    @property
    def output_channels(self) -> int:
        return self.filters // 2 if self.is_gated else self.filters

    def build(self, input_shape):
        k = self.kernel_size
        # tf.layers defaults of the original: Glorot-uniform kernel, zero bias.
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, input_shape[-1], self.filters),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        # tf.nn.conv2d, not keras.ops.conv: for a dilated conv the latter goes through
        # tf.nn.convolution's SpaceToBatchND / BatchToSpaceND (about 70 shape ops per layer at
        # unknown sizes, two copies of the activations), where oneDNN's native dilated Conv2D is
        # a third to a half faster. TF 'SAME' padding either way.
        return self.activate(
            lambda kernel: tf.nn.conv2d(
                x, kernel, self.strides, "SAME", dilations=self.dilation_rate
            )
        )

    def activate(self, conv, bias_fuses: bool = True):
        """Bias, then the activation or the gating, of ``conv(self.kernel)``.

        ``conv`` maps a kernel (or a part of it along the output channels) to the linear
        convolution with it: the layer's own conv, or ``GenDeconv2D``'s upsampled one.
        ``bias_fuses``: grappler fuses ``conv``'s BiasAdd (and ELU) into it (Conv2D); False for
        a transposed conv, whose gating then takes the biases (``gated_elu_bias``).

        Gated, the features and the gate are two convolutions with the two halves of the
        kernel rather than one conv and a split: the same numbers (each output channel is the
        same sum), but the split's copy of the whole conv output never exists, which halves
        the peak memory of a full-resolution layer on a large photo (docs/high_resolution.md).
        """
        # BiasAdd, not a broadcasting add: grappler fuses Conv2D + BiasAdd (+ activation) into
        # one oneDNN kernel and the gradient is one BiasAddGrad. ``y + bias`` (AddV2) makes
        # the gradient read the conv output's shape, which blocks the fusion, and reduces the
        # bias gradient with a generic Sum: about 10 % of a training step (docs/performance.md).
        # Same float additions, as the original's tf.layers.conv2d.
        if not self.is_gated:
            y = tf.nn.bias_add(conv(self.kernel), self.bias)
            return y if self.activation is None else self.activation(y)
        kernels, biases = tf.split(self.kernel, 2, axis=-1), tf.split(self.bias, 2)
        if self.activation_name == "elu" and not bias_fuses:
            # One pass for both biases and the gating where the exact kernel runs (inference).
            return gated_elu_bias(conv(kernels[0]), conv(kernels[1]), *biases)
        features, gate = (tf.nn.bias_add(conv(k), b) for k, b in zip(kernels, biases, strict=True))
        if self.activation_name == "elu":
            # One fused kernel inside deepfill_tf.ops.gating.native_gating() (training steps),
            # a bit-exact fused Sigmoid * Mul inside exact_native_gating() (inference),
            # TensorFlow's Elu * Sigmoid elsewhere (exports).
            return gated_elu(features, gate)
        return self.activation(features) * ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.strides
        h = None if h is None else -(-h // s)
        w = None if w is None else -(-w // s)
        return (b, h, w, self.output_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "activation": self.activation_name,
            "gated": self.gated,
        }


@keras.saving.register_keras_serializable(package="deepfill_tf")
class GenDeconv2D(keras.layers.Layer):
    """The original ``gen_deconv``: x2 nearest-neighbour upsampling, then a 3x3 ``GenConv2D``.

    The upsampling is neuralgym's ``resize`` (align_corners=True), which for x2 repeats every
    pixel twice. The conv lives in a nested scope ``<name>/<name>_conv`` as in the original,
    hence checkpoint keys such as ``inpaint_net/conv13_upsample/conv13_upsample_conv/kernel``.
    It is computed without the upsampled image: one stride-2 transposed conv of the input with
    a folded 4x4 copy of that kernel (``deepfill_tf/ops/upsample_conv.py``), the same result up
    to float32 reassociation.

    Args:
      filters: conv output channels (``cnum``); gated convs output ``filters // 2``.
      gated: v2 gating; activation is ELU.

    Input shape: (B, H, W, C_in). Output shape: (B, 2H, 2W, filters or filters // 2).
    """

    def __init__(self, filters: int, gated: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.gated = bool(gated)
        self.conv = GenConv2D(
            filters, 3, gated=gated, name=f"{self.name}_conv", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        b, h, w, c = input_shape
        self.conv.build((b, None if h is None else 2 * h, None if w is None else 2 * w, c))

    def call(self, x):
        # The upsampling and the 3x3 conv as one stride-2 transposed conv of x with a folded
        # 4x4 kernel (ops/upsample_conv.py): the same numbers up to float32 reassociation,
        # 16 / 36 of the multiply-adds, no 4x upsampled tensor.
        return self.conv.activate(lambda kernel: upsample2x_conv3x3(x, kernel), bias_fuses=False)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return self.conv.compute_output_shape(
            (b, None if h is None else 2 * h, None if w is None else 2 * w, c)
        )

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "gated": self.gated}
