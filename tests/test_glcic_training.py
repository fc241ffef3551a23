"""GLCIC training pieces: phases, holes, local patches, losses, data preparation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.families.glcic import training as T


def test_phases():
    assert [T.phase_name(s, 3, 2) for s in range(7)] == [
        "completion", "completion", "completion", "discriminator", "discriminator", "joint", "joint",
    ]  # fmt: skip
    assert int(T.phase_index(tf.constant(4), 3, 2)) == 1
    assert T.phase_name(90_000, 90_000, 10_000) == "discriminator"
    assert T.phase_name(100_000, 90_000, 10_000) == "joint"


def test_boxes_masks_and_patches():
    boxes = T.random_boxes(64, 256, 256, (96, 128), seed=(1, 2)).numpy()
    assert boxes[:, 2].min() >= 96 and boxes[:, 2].max() <= 128
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 256).all()
    assert (boxes[:, 1] + boxes[:, 3] <= 256).all()
    masks = T.box_masks(tf.constant(boxes), 256, 256).numpy()
    np.testing.assert_array_equal(masks.sum(axis=(1, 2, 3)), boxes[:, 2] * boxes[:, 3])
    offsets = T.centred_patch_offsets(tf.constant(boxes), 256, 256, 128).numpy()
    assert (offsets >= 0).all() and (offsets <= 128).all()
    # The hole lies inside its local patch (holes <= 128 px).
    assert (offsets[:, 0] <= boxes[:, 0]).all()
    assert (offsets[:, 0] + 128 >= boxes[:, 0] + boxes[:, 2]).all()
    # Clipping at the border.
    edge = tf.constant([[0, 200, 100, 56]])
    np.testing.assert_array_equal(T.centred_patch_offsets(edge, 256, 256, 128), [[0, 128]])
    images = tf.reshape(tf.range(2 * 8 * 8, dtype=tf.float32), (2, 8, 8, 1))
    patch = T.crop_patches(images, tf.constant([[1, 2], [4, 0]]), 3).numpy()
    np.testing.assert_array_equal(patch[0, ..., 0], images.numpy()[0, 1:4, 2:5, 0])
    np.testing.assert_array_equal(patch[1, ..., 0], images.numpy()[1, 4:7, 0:3, 0])
    rand = T.random_patch_offsets(16, 64, 48, 32, seed=(3, 4)).numpy()
    assert (rand[:, 0] <= 32).all() and (rand[:, 1] <= 16).all() and (rand >= 0).all()


def test_losses():
    out = tf.fill((1, 4, 4, 3), 0.5)
    target = tf.zeros((1, 4, 4, 3))
    mask = tf.reshape(tf.constant([1.0] * 4 + [0.0] * 12), (1, 4, 4, 1))
    assert abs(float(T.weighted_mse(out, target, mask)) - 0.25 * 4 / 16) < 1e-7
    zero = tf.zeros((2, 1))
    np.testing.assert_allclose(float(T.discriminator_loss(zero, zero)), 2 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(float(T.generator_gan_loss(zero)), np.log(2), rtol=1e-6)
    big = tf.fill((2, 1), 30.0)
    assert float(T.discriminator_loss(big, -big)) < 1e-6


def test_rescale_crop_and_mean():
    image = tf.random.stateless_uniform((300, 500, 3), (0, 1))
    out = T.rescale_and_crop(image, tf.constant([5, 6]), (256, 384), 256)
    assert tuple(out.shape) == (256, 256, 3)
    small = T.rescale_and_crop(tf.zeros((100, 120, 3)), tf.constant([1, 1]), (32, 48), 32)
    assert tuple(small.shape) == (32, 32, 3)
    batches = [
        tf.fill((2, 4, 4, 3), 0.25),
        tf.concat([tf.zeros((1, 4, 4, 3)), tf.ones((1, 4, 4, 3))], 0),
    ]
    np.testing.assert_allclose(T.dataset_mean(batches), [0.375] * 3, atol=1e-7)
