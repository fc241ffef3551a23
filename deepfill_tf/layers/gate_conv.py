"""SC-FEGAN's gated convolutions: ``gate_conv`` (with LRN) and ``gate_deconv``.

Paper reference: Jo & Park, "SC-FEGAN: Face Editing Generative Adversarial Network with User's
Sketch and Color" (ICCV 2019). Both layers reproduce the released code (``ops.py`` of
run-youngjoo/SC-FEGAN), quirks included, so the released checkpoint runs unchanged.

Both layers return the gated output; ``layer(x, return_gate=True)`` returns
``(output, gate)`` like the original functions.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

# tf.nn.lrn arguments of the original: TF defaults except the bias. The window spans
# 2 * 5 + 1 = 11 channels and alpha is NOT divided by the window size (unlike PyTorch / Caffe).
LRN_DEPTH_RADIUS = 5
LRN_BIAS = 5e-5
LRN_ALPHA = 1.0
LRN_BETA = 0.5

_PADDINGS = ("same", "valid", "symmetric")
_GATINGS = ("self", "shared_kernel", "separate")


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"expected an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


@keras.saving.register_keras_serializable(package="deepfill_tf")
class GateConv2D(keras.layers.Layer):
    """SC-FEGAN ``gate_conv``: ``lrelu(LRN(conv(x))) * sigmoid(conv_g(x))``.

    feature = conv(x) + bias (TF 'SAME' padding: for stride 2 on even sizes the extra pad goes
    bottom/right); if ``use_lrn``: feature = LRN(feature) with depth radius 5, bias 5e-5,
    alpha 1, beta 0.5 (``f_c / sqrt(5e-5 + sum of f^2 over channels c-5..c+5)``, window clipped
    at the channel ends); if ``activation == 'leaky_relu'``: leaky ReLU with slope 0.2.
    gate = sigmoid(conv_g(x) + gate_bias), an independent conv of the SAME input with the same
    kernel size / stride / dilation and no LRN. output = feature * gate.

    Weights, in ``get_weights()`` order: ``[kernel (kh, kw, in, filters), bias (filters,),
    gate_kernel (kh, kw, in, filters), gate_bias (filters,)]``. The original TF1 names are
    ``<name>/kernel``, ``<name>/bias``, ``<name>_g/kernel``, ``<name>_g/bias``; see
    ``tf1_variable_table``. Initialisers are TF1 ``tf.layers.conv2d``'s: Glorot-uniform kernels,
    zero biases.

    Args:
      filters: output channels (``cnum`` in the original).
      kernel_size: int or (kh, kw).
      strides: int or pair. Stride > 1 together with dilation > 1 is not supported (as in TF).
      dilation_rate: int or pair (``rate`` in the original).
      use_lrn: apply the LRN to the feature branch (False in the first and last layer).
      activation: ``'leaky_relu'`` or None (linear feature branch, the generator's last layer).
      padding: ``'same'`` (the only mode the generator uses), ``'valid'``, or ``'symmetric'``.
        ``'symmetric'`` reproduces the original's bug: it pads a copy of the input, discards it
        and convolves the unpadded input with 'VALID', so it is identical to ``'valid'``.

    Input shape: (B, H, W, C_in) float.
    Output shape: (B, ceil(H / s), ceil(W / s), filters) for 'same'; for 'valid' / 'symmetric'
      (B, (H - (kh - 1) * rate - 1) // s + 1, ..., filters). The gate has the same shape, values
      in (0, 1).
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        dilation_rate=1,
        use_lrn: bool = True,
        activation: str | None = "leaky_relu",
        padding: str = "same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if activation not in ("leaky_relu", None):
            raise ValueError(f"activation must be 'leaky_relu' or None, got {activation!r}")
        padding = str(padding).lower()
        if padding not in _PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(_PADDINGS)}, got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.dilation_rate = _pair(dilation_rate)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("strides > 1 together with dilation_rate > 1 is not supported")
        self.use_lrn = bool(use_lrn)
        self.activation = activation
        self.padding = padding

    def build(self, input_shape):
        shape = (*self.kernel_size, input_shape[-1], self.filters)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.gate_kernel = self.add_weight(
            name="gate_kernel", shape=shape, initializer="glorot_uniform"
        )
        self.gate_bias = self.add_weight(
            name="gate_bias", shape=(self.filters,), initializer="zeros"
        )

    def _conv(self, x, kernel, bias):
        # The original's 'SYMMETRIC' branch ends up as a 'VALID' conv of the unpadded input.
        padding = "same" if self.padding == "same" else "valid"
        y = ops.conv(
            x, kernel, strides=self.strides, padding=padding, dilation_rate=self.dilation_rate
        )
        return y + bias

    def call(self, x, return_gate: bool = False):
        feature = self._conv(x, self.kernel, self.bias)
        if self.use_lrn:
            # No keras.ops equivalent; tf.nn.lrn is the op the original calls.
            feature = tf.nn.local_response_normalization(
                feature,
                depth_radius=LRN_DEPTH_RADIUS,
                bias=LRN_BIAS,
                alpha=LRN_ALPHA,
                beta=LRN_BETA,
            )
        if self.activation == "leaky_relu":
            feature = ops.leaky_relu(feature, negative_slope=0.2)
        gate = ops.sigmoid(self._conv(x, self.gate_kernel, self.gate_bias))
        output = feature * gate
        return (output, gate) if return_gate else output

    def compute_output_shape(self, input_shape, return_gate: bool = False):
        b, h, w, _ = input_shape
        size = []
        for n, k, s, r in zip(
            (h, w), self.kernel_size, self.strides, self.dilation_rate, strict=True
        ):
            if n is None:
                size.append(None)
            elif self.padding == "same":
                size.append(-(-n // s))
            else:
                size.append((n - (k - 1) * r - 1) // s + 1)
        shape = (b, *size, self.filters)
        return (shape, shape) if return_gate else shape

    def tf1_variable_table(self, scope: str | None = None) -> dict:
        """Original TF1 names -> this layer's variables; ``scope`` defaults to the layer name.

        ``{scope}/kernel, {scope}/bias, {scope}_g/kernel, {scope}_g/bias`` (the gate conv is a
        sibling scope in the original, not a child).
        """
        scope = scope or self.name
        return {
            f"{scope}/kernel": self.kernel,
            f"{scope}/bias": self.bias,
            f"{scope}_g/kernel": self.gate_kernel,
            f"{scope}_g/bias": self.gate_bias,
        }

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "use_lrn": self.use_lrn,
            "activation": self.activation,
            "padding": self.padding,
        }


@keras.saving.register_keras_serializable(package="deepfill_tf")
class GateDeconv2D(keras.layers.Layer):
    """SC-FEGAN ``gate_deconv``: a stride-2 transposed conv, leaky ReLU, and a gate.

    y = leaky_relu(conv2d_transpose(x, w, 'SAME') + biases1) (slope 0.2); output = y * gate.

    ``gating`` selects the gate:
      * ``"self"`` (default, bug-compatible): gate = sigmoid(y). The original computes a second
        transposed conv with the same ``w`` plus ``biases2`` and then overwrites it with the
        sigmoid of the activated feature, so the layer is ``y * sigmoid(y)`` and ``biases2`` has
        no effect. The released checkpoint was trained this way: use this mode for it.
        ``biases2`` is kept (for strict checkpoint loading) but is non-trainable, because no
        gradient ever reaches it.
      * ``"shared_kernel"``: what the original code evidently meant: gate =
        sigmoid(conv2d_transpose(x, w) + biases2), the gate sharing ``w``.
      * ``"separate"``: a separately gated layer as the paper describes: gate =
        sigmoid(conv2d_transpose(x, gate_w) + biases2) with its own kernel ``gate_w``.
      Neither alternative matches the released weights.

    Weights, in ``get_weights()`` order: ``[w (kh, kw, filters, in), biases1 (filters,),
    biases2 (filters,)]`` plus ``gate_w (kh, kw, filters, in)`` for ``"separate"``. ``w`` has the
    TF/Keras transpose-conv layout, the original's variable names are ``<name>/w``,
    ``<name>/biases1``, ``<name>/biases2``. Initialisers as the original: N(0, 0.02) kernels,
    zero biases.

    Args:
      filters: output channels (``output_shape[-1]`` in the original).
      kernel_size: int or (kh, kw); the original uses 5.
      strides: int or pair; the original uses 2.
      gating: ``"self"``, ``"shared_kernel"`` or ``"separate"`` (see above).

    Input shape: (B, H, W, C_in) float.
    Output shape: (B, H * s, W * s, filters) ('SAME' transposed conv with the output shape the
      original passes: s times the input). The gate has the same shape, values in (0, 1).
    """

    def __init__(self, filters: int, kernel_size=5, strides=2, gating: str = "self", **kwargs):
        super().__init__(**kwargs)
        if gating not in _GATINGS:
            raise ValueError(f"gating must be one of {', '.join(_GATINGS)}, got {gating!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.gating = gating

    def build(self, input_shape):
        shape = (*self.kernel_size, self.filters, input_shape[-1])
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.w = self.add_weight(name="w", shape=shape, initializer=init)
        self.biases1 = self.add_weight(name="biases1", shape=(self.filters,), initializer="zeros")
        self.biases2 = self.add_weight(
            name="biases2",
            shape=(self.filters,),
            initializer="zeros",
            trainable=self.gating != "self",
        )
        self.gate_w = None
        if self.gating == "separate":
            self.gate_w = self.add_weight(name="gate_w", shape=shape, initializer=init)

    def _deconv(self, x, kernel, bias):
        y = ops.conv_transpose(x, kernel, strides=self.strides, padding="same")
        return y + bias

    def call(self, x, return_gate: bool = False):
        y = ops.leaky_relu(self._deconv(x, self.w, self.biases1), negative_slope=0.2)
        if self.gating == "self":
            # The original's bug: the gate is the sigmoid of the activated feature itself.
            gate = ops.sigmoid(y)
        else:
            kernel = self.w if self.gating == "shared_kernel" else self.gate_w
            gate = ops.sigmoid(self._deconv(x, kernel, self.biases2))
        output = y * gate
        return (output, gate) if return_gate else output

    def compute_output_shape(self, input_shape, return_gate: bool = False):
        b, h, w, _ = input_shape
        size = [None if n is None else n * s for n, s in zip((h, w), self.strides, strict=True)]
        shape = (b, *size, self.filters)
        return (shape, shape) if return_gate else shape

    def tf1_variable_table(self, scope: str | None = None) -> dict:
        """Original TF1 names -> variables: ``{scope}/w``, ``{scope}/biases1``,
        ``{scope}/biases2`` (``scope`` defaults to the layer name). ``"separate"`` adds
        ``{scope}/gate_w``, which no original checkpoint has."""
        scope = scope or self.name
        table = {f"{scope}/w": self.w, f"{scope}/biases1": self.biases1}
        table[f"{scope}/biases2"] = self.biases2
        if self.gate_w is not None:
            table[f"{scope}/gate_w"] = self.gate_w
        return table

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "gating": self.gating,
        }
