"""Spectrally normalised convolution, exactly as neuralgym's ``conv2d_spectral_norm``.

Miyato et al., "Spectral Normalization for Generative Adversarial Networks" (ICLR 2018), in the
variant DeepFill v2 (Yu et al., ICCV 2019) trains its SN-PatchGAN discriminator with:

* one power iteration on EVERY forward call (training or not), starting from the stored ``u``;
* the updated ``u'`` is already used for this forward's ``sigma`` (not the stored one);
* ``u := u'`` is written back as a side effect of the call;
* ``n(z) = z / (sqrt(sum z^2) + eps)`` (eps added after the square root);
* no stop-gradient: gradients flow through ``u'``, ``v`` and ``sigma``.

``keras.layers.SpectralNormalization`` differs (it updates only in training and stops gradients
through the iteration), so it must not be used to reproduce DeepFill v2.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _l2_normalize(z, eps):
    # neuralgym adds eps AFTER the square root (tf.nn.l2_normalize clips the squared sum instead).
    return z / (ops.sqrt(ops.sum(ops.square(z))) + eps)


def spectral_normalize(kernel, u, eps: float = 1e-12):
    """One neuralgym power iteration; returns ``(kernel / sigma, u_new, sigma)``.

    Args:
      kernel: conv kernel ``(kh, kw, cin, cout)`` (any rank; the last axis is the output axis).
      u: current estimate of the top right-singular vector, ``(1, cout)``.
      eps: added to each vector norm after the square root.

    Returns:
      ``kernel_sn`` (same shape as ``kernel``), ``u_new`` ``(1, cout)`` and ``sigma`` ``(1, 1)``.
      Nothing is stopped: all three are differentiable in ``kernel`` and ``u``.
    """
    cout = kernel.shape[-1]
    w_mat = ops.reshape(kernel, (-1, cout))  # (kh*kw*cin, cout)
    v = _l2_normalize(ops.matmul(u, ops.transpose(w_mat)), eps)  # (1, kh*kw*cin)
    u_new = _l2_normalize(ops.matmul(v, w_mat), eps)  # (1, cout)
    sigma = ops.matmul(ops.matmul(v, w_mat), ops.transpose(u_new))  # (1, 1)
    # The original divides the matrix, then reshapes back (same rounding as here).
    return ops.reshape(w_mat / sigma, ops.shape(kernel)), u_new, sigma


@keras.saving.register_keras_serializable(package="deepfill_tf")
class SNConv2D(keras.layers.Layer):
    """2-D convolution whose kernel is divided by its spectral norm (neuralgym flavour).

    Every call runs one power iteration from the stored ``u`` (see ``spectral_normalize``),
    convolves with ``kernel / sigma``, adds the (unnormalised) bias, applies the activation and
    assigns ``u := u'``. Two calls with the same input therefore give slightly different outputs
    until ``u`` has converged; this is the original behaviour (D in training advances ``u`` once
    in its own step and once in the generator step).

    Args:
      filters: output channels ``cout``.
      kernel_size: square kernel size (int) or ``(kh, kw)``; 5 in SN-PatchGAN.
      strides: int or pair; 2 in SN-PatchGAN.
      padding: ``"same"`` (TF SAME: asymmetric, the smaller half before) or ``"valid"``.
      activation: Keras activation name or callable; default ``"leaky_relu"`` (slope 0.2, as
        ``tf.nn.leaky_relu(alpha=0.2)`` of the original). ``None`` for linear.
      sn_eps: epsilon of the vector normalisation (1e-12 in neuralgym).
      use_bias: add a bias (after the normalised convolution).
      kernel_initializer: ``glorot_uniform`` (tf.layers default) unless given.
      bias_initializer: ``zeros`` unless given.
      u_initializer: initial ``u``; truncated N(0, 1) as the original.

    Weights: ``kernel`` ``(kh, kw, cin, filters)``, ``bias`` ``(filters,)`` and the
    non-trainable ``u`` ``(1, filters)``; TF1 names ``<scope>/kernel``, ``<scope>/bias``,
    ``<scope>/kernel_sn/u`` (see ``tf1_variables``).

    Input shape: ``(B, H, W, cin)`` NHWC float.
    Output shape: ``(B, ceil(H/s), ceil(W/s), filters)`` for ``"same"``.
    """

    def __init__(
        self,
        filters: int,
        kernel_size=5,
        strides=2,
        padding: str = "same",
        activation="leaky_relu",
        sn_eps: float = 1e-12,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        u_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.padding = padding.lower()
        if self.padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.activation = keras.activations.get(activation)
        self.sn_eps = float(sn_eps)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.u_initializer = keras.initializers.get(
            u_initializer or keras.initializers.TruncatedNormal(mean=0.0, stddev=1.0)
        )

    def build(self, input_shape):
        cin = input_shape[-1]
        if cin is None:
            raise ValueError(f"{self.name}: the channel axis of the input must be known")
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, int(cin), self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )
        # u is state written by the forward pass, not an optimiser variable. Under
        # tf.distribute.MirroredStrategy it is a MirroredVariable (sync ON_WRITE, the default),
        # so the assign in call() runs in replica context. Aggregation ONLY_FIRST_REPLICA: u'
        # depends only on the kernel and u, never on the replica's data, so every replica
        # computes the same u', and writing the first replica's value to all copies keeps them
        # identical by construction (NONE would let each replica write its own copy, which may
        # drift apart by rounding on unlike devices; MEAN costs an all-reduce for nothing).
        # ON_READ is wrong here: replicas would keep private copies and a checkpoint would hold
        # an aggregate of them rather than the u the next forward starts from.
        self.u = self.add_weight(
            name="u",
            shape=(1, self.filters),
            initializer=self.u_initializer,
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
        )

    def call(self, inputs):
        kernel = self.kernel
        u = ops.cast(self.u, kernel.dtype)
        kernel_sn, u_new, _ = spectral_normalize(kernel, u, self.sn_eps)
        # Side effect of every forward, as the original's control dependency on `u.assign`.
        self.u.assign(ops.cast(u_new, self.u.dtype))
        outputs = ops.conv(
            inputs,
            kernel_sn,
            strides=self.strides,
            padding=self.padding,
            data_format="channels_last",
        )
        if self.use_bias:
            # BiasAdd (fusable with the conv and the activation; see gen_conv.GenConv2D).
            outputs = tf.nn.bias_add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (
            batch,
            _conv_out(height, self.kernel_size[0], self.strides[0], self.padding),
            _conv_out(width, self.kernel_size[1], self.strides[1], self.padding),
            self.filters,
        )

    def tf1_variables(self, scope: str) -> dict:
        """``{TF1 name: variable}`` for this layer under the variable scope ``scope``."""
        table = {f"{scope}/kernel": self.kernel, f"{scope}/kernel_sn/u": self.u}
        if self.use_bias:
            table[f"{scope}/bias"] = self.bias
        return table

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            activation=keras.activations.serialize(self.activation),
            sn_eps=self.sn_eps,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            u_initializer=keras.initializers.serialize(self.u_initializer),
        )
        return config


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def _conv_out(size, kernel, stride, padding):
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1
