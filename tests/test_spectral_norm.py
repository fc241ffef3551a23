"""SNConv2D: neuralgym's spectral norm (one power iteration per call, u updated, no
stop-gradient) against a NumPy reference, plus the standard layer checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.layers.spectral_norm import SNConv2D, spectral_normalize
from deepfill_tf.testing.harness import run_layer_test
from deepfill_tf.testing.parity import assert_parity


def _np_normalize(z, eps=1e-12):
    return z / (np.sqrt(np.sum(z**2)) + eps)


def _np_power_iteration(kernel, u, eps=1e-12):
    """float64 reference: (kernel / sigma, u_new, sigma) with the neuralgym order of steps."""
    w = kernel.astype(np.float64).reshape(-1, kernel.shape[-1])  # (kh*kw*cin, cout)
    v = _np_normalize(u.astype(np.float64) @ w.T, eps)
    u_new = _np_normalize(v @ w, eps)
    sigma = (v @ w @ u_new.T).item()
    return (w / sigma).reshape(kernel.shape), u_new, sigma


def _converge_u(layer):
    """Set u to the kernel's top right-singular vector: a fixed point of the power iteration,
    so repeated calls give the same output (the harness compares separate calls)."""
    kernel = np.asarray(layer.kernel, np.float64).reshape(-1, layer.filters)
    u = np.linalg.svd(kernel, full_matrices=False)[2][:1]  # (1, cout)
    layer.u.assign(u.astype(np.float32))


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_one_power_iteration_matches_numpy():
    kernel, u = _random((5, 5, 3, 8), 0), _random((1, 8), 1)
    kernel_sn, u_new, sigma = spectral_normalize(tf.constant(kernel), tf.constant(u))
    ref_kernel, ref_u, ref_sigma = _np_power_iteration(kernel, u)
    assert kernel_sn.shape == kernel.shape and u_new.shape == (1, 8) and sigma.shape == (1, 1)
    assert_parity(u_new, ref_u, 1e-6, "u_new")
    assert_parity(sigma, [[ref_sigma]], 1e-5 * ref_sigma, "sigma")
    assert_parity(kernel_sn, ref_kernel, 1e-6, "kernel / sigma")
    # One iteration from a random start underestimates the top singular value.
    assert ref_sigma <= np.linalg.norm(kernel.reshape(-1, 8), 2) + 1e-4


def test_eps_is_added_after_the_square_root():
    # Kernel = identity and |u| = 5e-12: v = u / (5e-12 + 1e-12) = (0.5, 2/3), u' = v / |v| =
    # (0.6, 0.8), sigma = v . u' = 5/6. tf.nn.l2_normalize's clipped sum would give ~5e-6.
    _, u_new, sigma = spectral_normalize(tf.eye(2), tf.constant([[3e-12, 4e-12]]), eps=1e-12)
    np.testing.assert_allclose(np.asarray(u_new), [[0.6, 0.8]], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(sigma), [[5 / 6]], rtol=1e-5)


def test_call_uses_new_u_and_assigns_it():
    layer = SNConv2D(6, kernel_size=5, strides=2, name="conv1")
    x = _random((2, 9, 8, 3), 2)
    layer.build(x.shape)
    layer.bias.assign(_random((6,), 3) * 0.1)
    kernel, bias, u0 = (np.asarray(v) for v in (layer.kernel, layer.bias, layer.u))
    ref_kernel, ref_u, _ = _np_power_iteration(kernel, u0)

    y = np.asarray(layer(x))
    ref = tf.nn.leaky_relu(
        tf.nn.conv2d(x, ref_kernel.astype(np.float32), 2, "SAME") + bias, alpha=0.2
    )
    assert y.shape == (2, 5, 4, 6)  # TF SAME: ceil(9/2), ceil(8/2)
    assert_parity(y, ref, 1e-5, "SNConv2D output (sigma from the NEW u)")
    assert_parity(layer.u, ref_u, 1e-6, "u after one call")


def test_u_advances_on_every_call_eager_and_in_tf_function():
    layer = SNConv2D(4, name="conv1")
    x = _random((1, 16, 16, 3), 4)
    first = np.asarray(layer(x))
    u1 = np.asarray(layer.u)
    second = np.asarray(layer(x))
    u2 = np.asarray(layer.u)
    assert np.abs(u2 - u1).max() > 1e-4, "u did not change on the second eager call"
    assert np.abs(second - first).max() > 0, "two calls from different u gave equal outputs"

    call = tf.function(layer.__call__)
    expected = _np_power_iteration(np.asarray(layer.kernel), u2)[1]
    call(tf.constant(x))
    assert_parity(layer.u, expected, 1e-6, "u after a tf.function call")
    call(tf.constant(x))
    expected = _np_power_iteration(np.asarray(layer.kernel), expected)[1]
    assert_parity(layer.u, expected, 1e-6, "u after a second tf.function call")


def test_eager_and_tf_function_agree_from_the_same_state():
    layer = SNConv2D(5, name="conv1")
    x = tf.constant(_random((2, 12, 10, 4), 5))
    layer.build(x.shape)
    layer.kernel.assign(_random(tuple(layer.kernel.shape), 6))  # seeded, not Glorot draws
    u0 = np.asarray(layer.u)
    eager, u_eager = np.asarray(layer(x)), np.asarray(layer.u)
    layer.u.assign(u0)
    graph, u_graph = np.asarray(tf.function(layer.__call__)(x)), np.asarray(layer.u)
    # Graph and eager kernels round differently (~1e-6 on outputs of order 1); a wrong u
    # update would be off by orders of magnitude more.
    assert_parity(graph, eager, 1e-5, "tf.function vs eager output")
    assert_parity(u_graph, u_eager, 1e-5, "tf.function vs eager u")


def _stopped_spectral_normalize(kernel, u, eps=1e-12):
    # The usual SN-GAN variant (what neuralgym does NOT do): u', v treated as constants.
    w_mat = tf.reshape(kernel, (-1, kernel.shape[-1]))
    v = tf.stop_gradient(_np_like_normalize(u @ tf.transpose(w_mat), eps))
    u_new = tf.stop_gradient(_np_like_normalize(v @ w_mat, eps))
    sigma = v @ w_mat @ tf.transpose(u_new)
    return tf.reshape(w_mat / sigma, kernel.shape)


def _np_like_normalize(z, eps):
    return z / (tf.sqrt(tf.reduce_sum(z**2)) + eps)


def test_gradient_flows_through_the_power_iteration():
    kernel, u = tf.constant(_random((3, 3, 2, 4), 6)), tf.constant(_random((1, 4), 7))
    weights = tf.constant(_random((3, 3, 2, 4), 8))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([kernel, u])
        kernel_sn, _, _ = spectral_normalize(kernel, u)
        loss = tf.reduce_sum(kernel_sn * weights)
        loss_stopped = tf.reduce_sum(_stopped_spectral_normalize(kernel, u) * weights)
    np.testing.assert_allclose(float(loss), float(loss_stopped), rtol=1e-5)  # same forward
    grad, grad_stopped = tape.gradient(loss, kernel), tape.gradient(loss_stopped, kernel)
    diff = float(tf.reduce_max(tf.abs(grad - grad_stopped)))
    assert diff > 1e-3 * float(tf.reduce_max(tf.abs(grad))), (
        f"kernel gradient equals the stop-gradient one (max diff {diff:.3g})"
    )
    grad_u = tape.gradient(loss, u)
    assert grad_u is not None and float(tf.reduce_max(tf.abs(grad_u))) > 0, "no gradient to u"
    assert tape.gradient(loss_stopped, u) is None


def test_layer_gradient_reaches_u_through_the_call():
    layer = SNConv2D(4, name="conv1")
    x = tf.constant(_random((1, 8, 8, 3), 9))
    layer.build(x.shape)
    with tf.GradientTape() as tape:
        tape.watch(layer.u.value)
        y = layer(x)
    grad_u = tape.gradient(y, layer.u.value)
    assert grad_u is not None and float(tf.reduce_max(tf.abs(grad_u))) > 0


def test_weights_and_initialisers():
    layer = SNConv2D(8, name="conv3")
    layer.build((None, 16, 16, 6))
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["u"]
    assert layer.kernel.shape == (5, 5, 6, 8) and layer.u.shape == (1, 8)
    assert np.all(np.asarray(layer.bias) == 0)
    limit = np.sqrt(6 / (5 * 5 * 6 + 5 * 5 * 8))  # Glorot uniform, as tf.layers
    assert np.abs(np.asarray(layer.kernel)).max() <= limit
    u = np.asarray(layer.u)
    assert np.abs(u).max() <= 2.0 and np.abs(u).max() > 0  # truncated N(0, 1)
    assert sorted(layer.tf1_variables("d/conv3")) == [
        "d/conv3/bias",
        "d/conv3/kernel",
        "d/conv3/kernel_sn/u",
    ]


@pytest.mark.parametrize("padding,shape", [("same", (2, 7, 5, 6)), ("valid", (2, 6, 4, 6))])
def test_standard_layer_checks(padding, shape):
    def factory():
        layer = SNConv2D(6, kernel_size=3, strides=2, padding=padding, name="conv1")
        layer.build((None, 14, 10, 3))
        _converge_u(layer)  # so the harness' separate calls see the same sigma
        return layer

    run_layer_test(factory, _random((2, 14, 10, 3), 10), shape)


def test_activation_none_is_linear():
    layer = SNConv2D(3, activation=None, name="conv1")
    x = _random((1, 8, 8, 2), 11)
    layer.build(x.shape)
    kernel_sn, _, _ = _np_power_iteration(np.asarray(layer.kernel), np.asarray(layer.u))
    ref = tf.nn.conv2d(x, kernel_sn.astype(np.float32), 2, "SAME")
    assert_parity(layer(x), ref, 1e-5, "linear SNConv2D")
    assert SNConv2D.from_config(layer.get_config()).get_config() == layer.get_config()
