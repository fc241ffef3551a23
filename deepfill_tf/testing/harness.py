"""Standard checks every layer and model of the package must pass.

``run_layer_test`` builds a layer on given inputs and checks: the output shape (against
``expected_shape`` and ``compute_output_shape``), eager == ``tf.function`` outputs, a
``get_config`` / ``from_config`` (and ``keras.saving`` serialisation) round trip that computes
the same outputs once the weights are copied, and that gradients reach every trainable weight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _call(layer, inputs, call_kwargs):
    return layer(*inputs, **call_kwargs)


def run_layer_test(
    layer_factory: Callable[[], keras.layers.Layer],
    inputs: Sequence[np.ndarray] | np.ndarray,
    expected_shape: Sequence | None = None,
    *,
    call_kwargs: dict | None = None,
    atol: float = 1e-5,
    check_gradients: bool = True,
    check_output_shape_fn: bool = True,
) -> list[np.ndarray]:
    """Run the standard layer checks; returns the eager outputs as NumPy arrays.

    Args:
      layer_factory: builds a fresh, unbuilt layer.
      inputs: positional call inputs (one array or a sequence of arrays).
      expected_shape: shape of the first output, or a list of shapes for all outputs.
      call_kwargs: extra keyword arguments of ``call``.
      check_gradients: assert that every trainable weight gets a non-zero gradient of the sum
        of the first output.
    """
    call_kwargs = call_kwargs or {}
    inputs = [tf.convert_to_tensor(x) for x in _as_list(inputs)]
    layer = layer_factory()
    eager = [np.asarray(o) for o in _as_list(_call(layer, inputs, call_kwargs))]

    if expected_shape is not None:
        shapes = (
            expected_shape if isinstance(expected_shape[0], (list, tuple)) else [expected_shape]
        )
        for out, shape in zip(eager, shapes, strict=False):
            assert tuple(out.shape) == tuple(shape), f"output shape {out.shape} != {tuple(shape)}"
    if check_output_shape_fn:
        declared = layer.compute_output_shape(*[tuple(x.shape) for x in inputs])
        declared = declared if isinstance(declared, list) else [declared]
        if isinstance(declared[0], int) or declared[0] is None:
            declared = [declared]
        for out, shape in zip(eager, declared, strict=False):
            assert tuple(out.shape) == tuple(shape), (
                f"compute_output_shape {tuple(shape)} != actual {out.shape}"
            )

    graph_fn = tf.function(lambda *xs: _call(layer, xs, call_kwargs))
    graph = [np.asarray(o) for o in _as_list(graph_fn(*inputs))]
    for i, (a, b) in enumerate(zip(eager, graph, strict=True)):
        np.testing.assert_allclose(a, b, atol=atol, err_msg=f"eager vs tf.function, output {i}")

    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    _call(clone, inputs, call_kwargs)
    clone.set_weights(layer.get_weights())
    _compare_outputs(layer, clone, inputs, call_kwargs, atol, "from_config")

    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer), f"deserialised {type(restored)} != {type(layer)}"
    assert restored.get_config() == config, "config changed in the serialisation round trip"

    if check_gradients and layer.trainable_weights:
        with tf.GradientTape() as tape:
            out = _as_list(_call(layer, inputs, call_kwargs))[0]
            loss = tf.reduce_sum(out * tf.random.stateless_normal(tf.shape(out), seed=[1, 2]))
        grads = tape.gradient(loss, layer.trainable_weights)
        for w, g in zip(layer.trainable_weights, grads, strict=True):
            assert g is not None, f"no gradient reaches {w.path}"
            assert float(tf.reduce_max(tf.abs(g))) > 0, f"zero gradient for {w.path}"
    return eager


def _compare_outputs(a, b, inputs, call_kwargs, atol, what):
    # Stateful layers (spectral norm) change on every call; compare fresh calls of both.
    out_a = _as_list(_call(a, inputs, call_kwargs))
    out_b = _as_list(_call(b, inputs, call_kwargs))
    for i, (x, y) in enumerate(zip(out_a, out_b, strict=True)):
        np.testing.assert_allclose(
            np.asarray(x), np.asarray(y), atol=atol, err_msg=f"{what} output {i}"
        )


def run_model_test(
    model_factory: Callable[[], keras.Model],
    inputs: Sequence[np.ndarray] | np.ndarray,
    expected_shape: Sequence | None = None,
    *,
    call_kwargs: dict | None = None,
    atol: float = 1e-5,
) -> list[np.ndarray]:
    """The layer checks for a model, without the per-weight gradient requirement (some
    models have weights that a single output does not reach)."""
    return run_layer_test(
        model_factory,
        inputs,
        expected_shape,
        call_kwargs=call_kwargs,
        atol=atol,
        check_gradients=False,
        check_output_shape_fn=False,
    )
