"""Partial convolution (Liu et al., ECCV 2018), reproducing NVIDIA's ``PartialConv2d``.

The layer works in NVIDIA's mask convention (**1 = valid pixel, 0 = hole**), the opposite
of the package's public convention (1 = hole). Convert at the boundary with
``valid_mask_from_hole_mask`` (and back with ``hole_mask_from_valid_mask``).
"""

from __future__ import annotations

import keras
from keras import ops

# NVIDIA adds this to the window count before dividing (fp32; their README suggests 1e-6
# for fp16, which is why the mask path below always runs in float32).
_EPS = 1e-8


def valid_mask_from_hole_mask(hole_mask):
    """Convert a package mask (1 = hole) into a partial-convolution mask (1 = valid).

    Args:
      hole_mask: (B, H, W, 1) or (B, H, W, C) array/tensor, 1 = hole, 0 = known pixel (soft
        values in [0, 1] allowed). Non-float inputs (bool, uint8) are cast to float32.

    Returns:
      ``1 - hole_mask``, same shape, float (1 = valid, 0 = hole).
    """
    hole_mask = ops.convert_to_tensor(hole_mask)
    if "float" not in str(hole_mask.dtype):
        hole_mask = ops.cast(hole_mask, "float32")
    return 1.0 - hole_mask


def hole_mask_from_valid_mask(valid_mask):
    """Inverse of ``valid_mask_from_hole_mask``: a PConv (update) mask (1 = valid) to 1 = hole.

    Args:
      valid_mask: (B, H, W, C) array/tensor, 1 = valid. Non-float inputs are cast to float32.

    Returns:
      ``1 - valid_mask``, same shape, float (1 = hole).
    """
    return valid_mask_from_hole_mask(valid_mask)


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
    return value


def _out_size(size, k: int, s: int, d: int, padding) -> int | None:
    if size is None:
        return None
    if padding == "same":
        return -(-size // s)
    pad = 0 if padding == "valid" else padding
    return (size + 2 * pad - d * (k - 1) - 1) // s + 1


@keras.saving.register_keras_serializable(package="deepfill_tf")
class PartialConv2D(keras.layers.Layer):
    """NVIDIA's partial convolution (``models/partialconv2d.py``), NHWC.

    For a window W of the (padded) input and its mask window m (1 = valid)::

        count  = sum(m)                     # over all Cin channels when multi_channel
        update = clip(count, 0, 1)
        ratio  = window_size / (count + 1e-8) * update
        output = (conv_nobias(x * m) * ratio + b) * update     # with bias
        output = conv_nobias(x * m) * ratio                    # without bias

    with ``window_size = kh * kw`` (single-channel mask) or ``Cin * kh * kw``
    (``multi_channel``), independent of padding and dilation. Positions in the zero padding
    count as holes, so a fully valid window at the image border gets ratio > 1 ("partial
    convolution based padding"). A window with no valid pixel outputs exactly 0 (not the
    bias). No gradient flows through the mask (NVIDIA computes the mask path under
    ``no_grad``; here the whole mask input is ``stop_gradient``-ed).

    Args:
      filters: number of output channels Cout.
      kernel_size: int or (kh, kw).
      strides: int or (sh, sw).
      padding: int or (ph, pw): PyTorch's symmetric zero padding of that many pixels on each
        side (explicit pad + 'VALID'; needed to match NVIDIA for stride 2 on even sizes), or
        'same' / 'valid' with TensorFlow semantics ('same' pads bottom/right more when
        asymmetric).
      dilation_rate: int or (dh, dw); the mask window uses the same dilation.
      use_bias: add a bias (unscaled by the ratio, see above).
      multi_channel: False: one mask channel shared by all input channels. True: one mask
        channel per input channel (NVIDIA's setting for inpainting).
      kernel_initializer, bias_initializer: Keras initialisers.

    Call arguments:
      inputs: (B, H, W, Cin) features (any range).
      valid_mask: (B, H, W, 1), or (B, H, W, Cin) when ``multi_channel``; 1 = valid, 0 = hole
        (soft values allowed; convert package masks with ``valid_mask_from_hole_mask``). A batch
        of 1 broadcasts over B. ``None`` = all ones: partial-convolution-based padding, and the
        input is not multiplied by the mask.

    Returns:
      ``(output, update_mask)``: output (B, Ho, Wo, Cout) in the input's dtype; update mask
      (B, Ho, Wo, 1), or (B, Ho, Wo, Cout) with identical channels when ``multi_channel``;
      values in [0, 1], 1 = valid. Without a mask NVIDIA returns a batch-1 update mask; here it
      is broadcast to B (same values).
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding=0,
        dilation_rate=1,
        use_bias: bool = True,
        multi_channel: bool = False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if isinstance(padding, str):
            padding = padding.lower()
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, 'same' or 'valid', got {padding!r}")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding")
        if self.padding == "same" and max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "padding='same' with both strides > 1 and dilation_rate > 1 is undefined"
            )
        self.use_bias = bool(use_bias)
        self.multi_channel = bool(multi_channel)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, inputs_shape, valid_mask_shape=None):
        # Argument names follow Keras 3's `<call arg>_shape` rule for multi-input builds.
        in_channels = inputs_shape[-1]
        if in_channels is None:
            raise ValueError("PartialConv2D needs a known number of input channels")
        self.in_channels = int(in_channels)
        if valid_mask_shape is not None:
            self._check_mask_channels(valid_mask_shape[-1])
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(kh, kw, self.in_channels, self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )
        else:
            self.bias = None
        # Entries of a full window, padding included (NVIDIA's `slide_winsize`).
        self.window_size = float(self._mask_channels * kh * kw)

    @property
    def _mask_channels(self) -> int:
        return self.in_channels if self.multi_channel else 1

    def _check_mask_channels(self, channels):
        if channels is not None and int(channels) != self._mask_channels:
            mode = "multi_channel=True" if self.multi_channel else "multi_channel=False"
            raise ValueError(
                f"PartialConv2D({mode}) expects a valid_mask with {self._mask_channels} "
                f"channel(s), got {channels}"
            )

    def _conv(self, x, kernel):
        """Cross-correlation with the layer's stride, padding and dilation (no bias)."""
        padding = self.padding
        if not isinstance(padding, str):
            ph, pw = padding
            if ph or pw:
                # PyTorch pads symmetrically; TF 'SAME' would put the extra row bottom/right.
                x = ops.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
            padding = "valid"
        strides = self.strides
        subsample = max(strides) > 1 and max(self.dilation_rate) > 1
        if subsample:
            # TF refuses strides > 1 together with dilation > 1; with 'valid' padding a
            # stride-1 conv sampled every s-th row/column is the same thing.
            strides = (1, 1)
        y = ops.conv(x, kernel, strides, padding, "channels_last", self.dilation_rate)
        if subsample:
            y = y[:, :: self.strides[0], :: self.strides[1], :]
        return y

    def call(self, inputs, valid_mask=None):
        x = inputs
        kh, kw = self.kernel_size
        if valid_mask is None:
            # NVIDIA builds an all-ones mask and does not multiply the input.
            mask = ops.ones_like(x[:1, :, :, :1], dtype="float32")
            window_mask = mask * float(self._mask_channels)
            masked = x
        else:
            self._check_mask_channels(valid_mask.shape[-1])
            # NVIDIA's mask path has no gradient; update masks fed back in (UNet) have none.
            mask = ops.stop_gradient(ops.cast(valid_mask, "float32"))
            window_mask = mask
            if self.multi_channel:
                # Every output channel of NVIDIA's ones-kernel count sums all Cin channels:
                # summing them first and counting with a 1-channel kernel is the same.
                window_mask = ops.sum(mask, axis=-1, keepdims=True)
            masked = x * ops.cast(mask, x.dtype)

        # Mask path in float32 (1e-8 underflows in float16).
        count = self._conv(window_mask, ops.ones((kh, kw, 1, 1), dtype="float32"))
        update_mask = ops.clip(count, 0.0, 1.0)
        ratio = self.window_size / (count + _EPS) * update_mask
        count, update_mask, ratio = (ops.stop_gradient(t) for t in (count, update_mask, ratio))

        raw = self._conv(masked, ops.cast(self.kernel, x.dtype))  # (B, Ho, Wo, Cout), no bias
        output = raw * ops.cast(ratio, raw.dtype)
        if self.use_bias:
            # Bias added back unscaled, then everything multiplied by the update mask again.
            output = (output + ops.cast(self.bias, raw.dtype)) * ops.cast(update_mask, raw.dtype)

        batch = ops.shape(output)[0] if valid_mask is None else ops.shape(update_mask)[0]
        um_shape = (
            batch,
            *tuple(ops.shape(output)[1:3]),
            self.filters if self.multi_channel else 1,
        )
        if valid_mask is None or self.multi_channel:
            update_mask = ops.broadcast_to(update_mask, um_shape)
        return output, ops.cast(update_mask, x.dtype)

    def compute_output_shape(self, inputs_shape, valid_mask_shape=None):
        kh, kw = self.kernel_size
        sh, sw = self.strides
        dh, dw = self.dilation_rate
        if isinstance(self.padding, str):
            pad_h = pad_w = self.padding
        else:
            pad_h, pad_w = self.padding
        ho = _out_size(inputs_shape[1], kh, sh, dh, pad_h)
        wo = _out_size(inputs_shape[2], kw, sw, dw, pad_w)
        batch = inputs_shape[0] if valid_mask_shape is None else valid_mask_shape[0]
        mask_channels = self.filters if self.multi_channel else 1
        return [
            (inputs_shape[0], ho, wo, self.filters),
            (batch, ho, wo, mask_channels),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "dilation_rate": self.dilation_rate,
                "use_bias": self.use_bias,
                "multi_channel": self.multi_channel,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
