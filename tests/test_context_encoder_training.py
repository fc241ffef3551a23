"""Context Encoder training pieces against train.lua's definitions."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.families.context_encoder import training as T
from deepfill_tf.models.context_encoder import fill_centre


def test_overlap_weights():
    w = T.overlap_weights(64, 4, 0.999).numpy()[0, ..., 0]
    assert w.shape == (64, 64)
    np.testing.assert_allclose(w[4:60, 4:60], 0.999, rtol=1e-6)
    np.testing.assert_allclose(w[:4], 9.99, rtol=1e-6)
    np.testing.assert_allclose(w[:, 60:], 9.99, rtol=1e-6)
    np.testing.assert_allclose(T.overlap_weights(8, 0, 0.5), 0.5)


def test_losses():
    pred, target = tf.ones((1, 64, 64, 3)), tf.zeros((1, 64, 64, 3))
    w = T.overlap_weights(64, 4, 0.999)
    expected = np.mean(w.numpy()) * 1.0
    np.testing.assert_allclose(float(T.reconstruction_loss(pred, target, w)), expected, rtol=1e-6)
    zero = tf.zeros((2, 1))
    np.testing.assert_allclose(
        float(T.generator_loss(zero, target, target, w)), 0.001 * np.log(2), rtol=1e-4
    )
    np.testing.assert_allclose(float(T.discriminator_loss(zero, zero)), 2 * np.log(2), rtol=1e-6)


def test_centre_inputs_match_demo_fill():
    images = tf.random.stateless_uniform((2, 128, 128, 3), (1, 2), -1, 1)
    filled, centre = T.centre_inputs(images, overlap=4)
    np.testing.assert_array_equal(filled, fill_centre(images, overlap=4))
    np.testing.assert_array_equal(centre, images[:, 32:96, 32:96])


def test_random_pattern_mask():
    m = T.random_pattern_mask(tf.constant([3, 4])).numpy()
    assert m.shape == (1, 128, 128, 1) and set(np.unique(m)) <= {0.0, 1.0}
    assert 0.2 < m.mean() < 0.3
    again = T.random_pattern_mask(tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(m, again)
    images = tf.zeros((2, 128, 128, 3))
    filled, target = T.random_region_inputs(images, tf.constant(m))
    np.testing.assert_allclose(filled.numpy()[0][m[0, ..., 0] > 0][0], T.fill_colour().numpy())
    w = T.random_region_weights(tf.constant(m)).numpy()
    np.testing.assert_allclose(np.unique(w), [0.999, 9.99], rtol=1e-6)
