"""The checks every registered model family passes (``run_family_test``).

For a family (``deepfill_tf.registry.Family``): build its tiny generator, inpaint through
the family's inpainter (shape, dtype, known pixels unchanged), the generic pipeline eager ==
``tf.function``,
a generator weights save/restore round trip, the Keras serialisation round trip, and, where
the family says so, one training step of every objective of its task and an export to a
SavedModel that reloads and gives the same pixels.
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from deepfill_tf.convert.tf1_checkpoint import tf1_variable_table
from deepfill_tf.export.saved_model import export_saved_model
from deepfill_tf.inference.inpainter import Inpainter
from deepfill_tf.inference.pipeline import inpaint_uint8
from deepfill_tf.registry import Family


def _inputs(family: Family, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    mask = np.zeros((1, size, size, 1), np.float32)
    mask[:, size // 4 : size // 2, size // 4 : size // 2] = 1.0
    return image, mask


def run_family_test(family: Family, *, size: int | None = None, train_config=None) -> None:
    """Run the standard family checks; raises AssertionError naming the failing one.

    Args:
        family: a registered family.
        size: image side (default: the smallest multiple of ``size_multiple`` >= 64).
        train_config: a ``TrainConfig`` of the family for the training step (default: none,
            the step is skipped) — tests pass a tiny one.
    """
    m = int(family.size_multiple)
    size = size or max(m, -(-64 // m) * m)
    spec = family.tiny_spec()
    generator = family.build_generator(spec)
    image, mask = _inputs(family, size)
    extras = {o.name: image[0] for o in family.model_inputs(generator) if o.required}

    # forward through the family's inpainter (traced once): shape, dtype, known pixels
    traced = _inpainter(family, generator, spec)(image[0], mask[0, :, :, 0], **extras)
    assert traced.shape == image.shape[1:] and traced.dtype == np.uint8, traced.shape
    known = mask[0, :, :, 0] < 0.5
    assert np.array_equal(traced[known], image[0][known]), f"{family.name}: known pixels changed"
    if family.make_inpainter(generator, spec) is None:
        # the generic pipeline, eagerly, gives the traced pixels
        batch_extras = {k: v[None] for k, v in extras.items()}
        eager = inpaint_uint8(generator, image, mask, family=family, inputs=batch_extras)
        diff = np.abs(eager.numpy()[0].astype(int) - traced.astype(int)).max()
        assert diff <= 1, f"{family.name}: eager vs tf.function differ by {diff} levels"

    # weights save / restore by TF1 name (what run checkpoints and converters rely on)
    table = tf1_variable_table(generator)
    assert table, f"{family.name}: the generator has no variables"
    assert len(set(table)) == len(generator.weights), "TF1 names are not unique"
    other = family.build_generator(spec)
    other_table = tf1_variable_table(other)
    assert set(other_table) == set(table), "a rebuilt generator has other variable names"
    for name, variable in other_table.items():
        variable.assign(table[name])
    again = _inpainter(family, other, spec)(image[0], mask[0, :, :, 0], **extras)
    assert np.array_equal(again, traced), f"{family.name}: restored weights give other pixels"

    # Keras serialisation round trip keeps the class and its configuration
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(generator))
    assert type(restored) is type(generator), f"{family.name}: deserialised {type(restored)}"

    if train_config is not None and family.trainable:
        _train_one_step(family, train_config)
    if family.exportable:
        batch_extras = {k: v[None] for k, v in extras.items()}
        _export_round_trip(generator, image, mask, batch_extras, traced[None])


def _inpainter(family: Family, generator, spec):
    return family.make_inpainter(generator, spec) or Inpainter(generator, family=family, spec=spec)


def _train_one_step(family: Family, config) -> None:
    task = family.make_task(config)
    optimizer = task.make_optimizer()
    objectives = task.objectives()
    optimizer.build([v for o in objectives.values() for v in o.variables()])
    h, w = config.img_shapes[:2]
    batch = tf.random.stateless_uniform((config.batch_size, h, w, 3), [1, 2], -1.0, 1.0)
    if getattr(config, "guided", False):
        batch = (batch, tf.zeros((config.batch_size, h, w, 1)))
    for name, objective in objectives.items():
        variables = objective.variables()
        before = [v.numpy().copy() for v in variables]
        with tf.GradientTape() as tape:
            loss, metrics = objective.loss(batch, task.sample_random(tf.constant([0, 1])))
        assert np.isfinite(float(loss)), f"{family.name}: {name} loss {float(loss)}"
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        assert pairs, f"{family.name}: objective {name} reaches no variable"
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        moved = any(
            not np.array_equal(b, v.numpy()) for b, v in zip(before, variables, strict=True)
        )
        assert moved, f"{family.name}: a {name} step changed no weight"


def _export_round_trip(generator, image, mask, extras, expected) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = export_saved_model(generator, os.path.join(tmp, "model"))
        served = tf.saved_model.load(path).signatures["inpaint_tensors"]
        mask_u8 = (mask * 255).astype(np.uint8)  # (B, H, W, 1), > 127 = hole
        tensors = {k: tf.constant(v) for k, v in extras.items()}
        out = served(image=tf.constant(image), mask=tf.constant(mask_u8), **tensors)
        got = next(iter(out.values())).numpy()
    assert np.array_equal(got, expected), "the exported model gives other pixels"
