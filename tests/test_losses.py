"""DeepFill losses against small NumPy references, and the training tasks' composition of
them (with a toy generator, so no generator code is needed): pretraining drops the GAN terms,
the SN u advances once per loss, sample_random is stateless and in range, visuals layout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.config import TrainConfig
from deepfill_tf.errors import ConfigError, InputError
from deepfill_tf.families.deepfill.task import DeepFillV1Task, DeepFillV2Task, make_task
from deepfill_tf.layers.spectral_norm import spectral_normalize
from deepfill_tf.losses import (
    gradient_penalty,
    hinge_loss,
    random_interpolates,
    slope_penalty,
    spatial_discounting_mask,
    v1_ae_loss,
    v1_l1_loss,
    v2_ae_loss,
    wgan_loss,
)
from deepfill_tf.models.discriminators import SNPatchGANDiscriminator, WGANLocalGlobalCritics


def _rand(shape, seed, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def _box_mask(h, w, top, left, bh, bw):
    m = np.zeros((1, h, w, 1), np.float32)
    m[:, top : top + bh, left : left + bw] = 1.0
    return m


# ------------------------------------------------------------------ reconstruction


def test_spatial_discounting_mask_is_the_original_formula():
    gamma, h, w = 0.9, 12, 7
    ref = np.ones((h, w))
    for i in range(h):
        for j in range(w):
            ref[i, j] = max(gamma ** min(i, h - i), gamma ** min(j, w - j))
    got = spatial_discounting_mask(h, w, gamma)
    assert got.shape == (1, h, w, 1) and got.dtype == np.float32
    np.testing.assert_array_equal(got[0, :, :, 0], ref.astype(np.float32))
    # max, not min: the whole first row and column weigh 1; h - i, not h - 1 - i: the last
    # row is one step from the border.
    assert np.all(got[0, 0] == 1) and np.all(got[0, :, 0] == 1)
    assert got[0, h - 1, 3, 0] == np.float32(gamma)
    assert got[0, 6, 3, 0] == np.float32(gamma**3)  # centre: min(6, 6)=6 rows, min(3, 4)=3 cols
    np.testing.assert_array_equal(spatial_discounting_mask(h, w, gamma, discounted=False), 1)


def test_v1_l1_and_ae_losses_match_numpy():
    real, x1, x2 = (_rand((2, 16, 12, 3), s) for s in (0, 1, 2))
    mask = _box_mask(16, 12, 3, 2, 8, 6)
    d = spatial_discounting_mask(8, 6, 0.9)
    crop = np.s_[:, 4:12, 3:9]
    l1 = 1.2 * np.mean(np.abs(real[crop] - x1[crop]) * d) + np.mean(
        np.abs(real[crop] - x2[crop]) * d
    )
    got = v1_l1_loss(real[crop], x1[crop], x2[crop], d, 1.2)
    np.testing.assert_allclose(float(got), l1, rtol=1e-6)
    valid = 1 - mask
    ae = (1.2 * np.mean(np.abs(real - x1) * valid) + np.mean(np.abs(real - x2) * valid)) / np.mean(
        valid
    )
    np.testing.assert_allclose(float(v1_ae_loss(real, x1, x2, mask, 1.2)), ae, rtol=1e-6)
    # pretraining: the x2 terms are left out
    ae1 = 1.2 * np.mean(np.abs(real - x1) * valid) / np.mean(valid)
    np.testing.assert_allclose(float(v1_ae_loss(real, x1, None, mask, 1.2)), ae1, rtol=1e-6)
    l11 = 1.2 * np.mean(np.abs(real[crop] - x1[crop]) * d)
    np.testing.assert_allclose(float(v1_l1_loss(real[crop], x1[crop], None, d)), l11, rtol=1e-6)


def test_v2_ae_loss_is_over_all_pixels():
    real, x1, x2 = (_rand((2, 8, 8, 3), s) for s in (3, 4, 5))
    ref = 0.7 * np.mean(np.abs(real - x1)) + 0.7 * np.mean(np.abs(real - x2))
    np.testing.assert_allclose(float(v2_ae_loss(real, x1, x2, 0.7)), ref, rtol=1e-6)


# ------------------------------------------------------------------ adversarial


def test_hinge_and_wgan_losses_match_numpy():
    pos, neg = _rand((3, 10), 6, -3, 3), _rand((3, 10), 7, -3, 3)
    g, d = hinge_loss(pos, neg)
    d_ref = 0.5 * np.mean(np.maximum(1 - pos, 0)) + 0.5 * np.mean(np.maximum(1 + neg, 0))
    np.testing.assert_allclose(float(d), d_ref, rtol=1e-6)
    np.testing.assert_allclose(float(g), -np.mean(neg), rtol=1e-6)
    g, d = wgan_loss(pos[:, :1], neg[:, :1])
    np.testing.assert_allclose(float(d), np.mean(neg[:, :1] - pos[:, :1]), rtol=1e-6)
    np.testing.assert_allclose(float(g), -np.mean(neg[:, :1]), rtol=1e-6)


def test_random_interpolates_one_alpha_per_sample():
    real, fake = _rand((3, 4, 5, 2), 8), _rand((3, 4, 5, 2), 9)
    alpha = np.array([[0.0], [0.25], [1.0]], np.float32)
    got = np.asarray(random_interpolates(real, fake, alpha))
    np.testing.assert_allclose(got, real + alpha[:, :, None, None] * (fake - real), atol=1e-7)
    np.testing.assert_array_equal(got[0], real[0])
    np.testing.assert_allclose(got[2], fake[2], atol=1e-7)


def test_gradient_penalty_of_a_linear_critic_is_analytic_and_second_order():
    # critic(x) = sum(x * W) per sample: its input gradient is W for every sample, so
    # slope = sqrt(sum(W^2 * mask)) and penalty = (slope - 1)^2, d penalty / dW =
    # 2 (slope - 1) W mask / slope.
    w_np = _rand((1, 6, 5, 3), 10, -0.3, 0.3)
    mask = _box_mask(6, 5, 1, 1, 3, 2)
    w = tf.Variable(w_np)
    x = tf.constant(_rand((4, 6, 5, 3), 11))
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(lambda z: tf.reduce_sum(z * w, axis=[1, 2, 3]), x, mask)
    slope = np.sqrt(np.sum(w_np.astype(np.float64) ** 2 * mask))
    np.testing.assert_allclose(float(penalty), (slope - 1) ** 2, rtol=1e-5)
    grad = tape.gradient(penalty, w)
    assert grad is not None, "the penalty must be differentiable w.r.t. the critic"
    np.testing.assert_allclose(np.asarray(grad), 2 * (slope - 1) * w_np * mask / slope, atol=1e-6)
    # no mask: all pixels count
    full = gradient_penalty(lambda z: tf.reduce_sum(z * w, axis=[1, 2, 3]), x)
    np.testing.assert_allclose(float(full), (np.sqrt(np.sum(w_np**2.0)) - 1) ** 2, rtol=1e-5)


def test_gradient_penalty_averages_per_sample_slopes():
    # critic(x) = 0.5 * sum(c * x^2): gradient c * x differs per sample.
    c = _rand((1, 4, 4, 1), 12, 0.5, 2.0)
    x = _rand((3, 4, 4, 2), 13)
    mask = _box_mask(4, 4, 0, 1, 4, 2)
    got = gradient_penalty(lambda z: 0.5 * tf.reduce_sum(c * z * z, axis=[1, 2, 3]), x, mask)
    slopes = np.sqrt(np.sum((c * x) ** 2 * mask, axis=(1, 2, 3)))
    np.testing.assert_allclose(float(got), np.mean((slopes - 1) ** 2), rtol=1e-5)
    np.testing.assert_allclose(
        float(slope_penalty(c * x, mask, norm=0.5)), np.mean((slopes - 0.5) ** 2), rtol=1e-5
    )


# ------------------------------------------------------------------ tasks (toy generator)


class ToyGenerator(keras.Model):
    """Stand-in for the DeepFill generator: x1 = tanh(a * x_in), x2 = tanh(b * x_in + c)."""

    def __init__(self, guided=False, **kwargs):
        super().__init__(**kwargs)
        self.guided = guided
        self.a = self.add_weight(shape=(), initializer=keras.initializers.Constant(0.8), name="a")
        self.b = self.add_weight(shape=(), initializer=keras.initializers.Constant(0.6), name="b")
        self.c = self.add_weight(shape=(), initializer=keras.initializers.Constant(0.1), name="c")
        self.built = True
        self.calls = 0

    def build_for(self, height, width):
        return self

    def call(self, image, hole_mask):
        self.calls += 1
        x_in = image[..., :3] * (1.0 - hole_mask)
        flow = tf.zeros_like(x_in[:, ::4, ::4]) + 0.5
        return tf.tanh(self.a * x_in), tf.tanh(self.b * x_in + self.c), flow


class CountingCritics(WGANLocalGlobalCritics):
    calls = 0

    def call(self, local_patch, global_image):
        type(self).calls += 1
        return super().call(local_patch, global_image)


def _v1(pretrain=False, **overrides):
    config = TrainConfig(
        model="deepfill_v1",
        img_shapes=(32, 24, 3),
        height=16,
        width=12,
        max_delta_height=4,
        max_delta_width=4,
        batch_size=2,
        pretrain_coarse_network=pretrain,
        **overrides,
    )
    critics = CountingCritics(cnum=4, image_size=(32, 24), local_size=(16, 12))
    return DeepFillV1Task(config, ToyGenerator(), critics)


def _v1_random():
    return {
        "mask": _box_mask(32, 24, 10, 6, 12, 8),
        "bbox": tf.constant([8, 4, 16, 12], tf.int32),
        "alpha_local": np.array([[0.3], [0.8]], np.float32),
        "alpha_global": np.array([[0.6], [0.1]], np.float32),
    }


def _np_v1_parts(task, x, rnd, pretrain):
    """NumPy l1/ae of the toy generator for the v1 task."""
    mask = rnd["mask"]
    x_in = x * (1 - mask)
    x1, x2 = np.tanh(0.8 * x_in), np.tanh(0.6 * x_in + 0.1)
    d = spatial_discounting_mask(16, 12, 0.9)
    crop = np.s_[:, 8:24, 4:16]
    l1 = 1.2 * np.mean(np.abs(x[crop] - x1[crop]) * d)
    ae = 1.2 * np.mean(np.abs(x - x1) * (1 - mask))
    if not pretrain:
        l1 += np.mean(np.abs(x[crop] - x2[crop]) * d)
        ae += np.mean(np.abs(x - x2) * (1 - mask))
    return l1, ae / np.mean(1 - mask)


def test_pretrain_coarse_network_drops_the_gan_terms():
    x = _rand((2, 32, 24, 3), 20)
    rnd = _v1_random()
    task = _v1(pretrain=True)
    assert task.d_steps == 0, "the original trains no critic while pretraining"
    CountingCritics.calls = 0
    with tf.GradientTape() as tape:
        loss, metrics = task.g_loss(x, rnd)
    assert CountingCritics.calls == 0, "pretraining must not evaluate the critics"
    l1, ae = _np_v1_parts(task, x, rnd, pretrain=True)
    np.testing.assert_allclose(float(metrics["l1_loss"]), l1, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["ae_loss"]), ae, rtol=1e-5)
    np.testing.assert_allclose(float(loss), 1.2 * l1 + 1.2 * ae, rtol=1e-5)
    assert "local_g_loss" not in metrics
    grads = dict(zip(["a", "b", "c"], tape.gradient(loss, task.g_variables), strict=True))
    assert grads["a"] is not None and grads["b"] is None and grads["c"] is None  # x1 only

    full = _v1(pretrain=False)
    assert full.d_steps == 5
    loss, metrics = full.g_loss(x, rnd)
    assert CountingCritics.calls == 1
    l1, ae = _np_v1_parts(full, x, rnd, pretrain=False)
    np.testing.assert_allclose(float(metrics["l1_loss"]), l1, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["ae_loss"]), ae, rtol=1e-5)
    gan = 0.001 * (float(metrics["global_g_loss"]) + float(metrics["local_g_loss"]))
    np.testing.assert_allclose(float(loss), gan + 1.2 * l1 + 1.2 * ae, rtol=1e-5)


def test_v1_d_loss_is_wgan_plus_weighted_penalty():
    x = _rand((2, 32, 24, 3), 21)
    rnd = _v1_random()
    task = _v1()
    with tf.GradientTape(persistent=True) as tape:
        loss, m = task.d_loss(x, rnd)
    expected = (
        m["local_d_loss"]
        + m["global_d_loss"]
        + 10.0 * (m["gp_penalty_local"] + m["gp_penalty_global"])
    )
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)
    np.testing.assert_allclose(
        float(m["gp_loss"]), float(expected - m["local_d_loss"] - m["global_d_loss"]), rtol=1e-5
    )
    grads = tape.gradient(loss, task.d_variables)
    assert all(g is not None for g in grads)
    # generator outputs are constants for the critic step
    assert tape.gradient(loss, task.g_variables) == [None, None, None]


def test_v1_config_and_model_mismatches_are_config_errors():
    base = dict(
        model="deepfill_v1",
        img_shapes=(32, 24, 3),
        height=16,
        width=12,
        max_delta_height=4,
        max_delta_width=4,
    )
    with pytest.raises(ConfigError, match="critics are built for images"):
        DeepFillV1Task(TrainConfig(**base), ToyGenerator(), WGANLocalGlobalCritics.tiny())
    with pytest.raises(ConfigError, match="gan_with_mask"):
        DeepFillV1Task(TrainConfig(**base, gan_with_mask=True), ToyGenerator(), None)
    with pytest.raises(ConfigError, match="guided"):
        DeepFillV2Task(
            TrainConfig(
                model="deepfill_v2",
                img_shapes=(32, 24, 3),
                height=16,
                width=12,
                max_delta_height=4,
                max_delta_width=4,
            ),
            ToyGenerator(guided=True),
            SNPatchGANDiscriminator.tiny(),
        )


def test_v1_sample_random_is_stateless_and_in_range():
    task = _v1()
    sample = tf.function(task.sample_random)
    a, b = sample(tf.constant([3, 4])), sample(tf.constant([3, 4]))
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    assert a["mask"].shape == (1, 32, 24, 1) and a["alpha_local"].shape == (2, 1)
    seen_delta = set()
    for i in range(30):
        r = {k: np.asarray(v) for k, v in sample(tf.constant([7, i])).items()}
        top, left, bh, bw = r["bbox"]
        assert (bh, bw) == (16, 12) and 0 <= top < 32 - 16 and 0 <= left < 24 - 12
        rows = np.flatnonzero(r["mask"][0, :, :, 0].any(axis=1))
        cols = np.flatnonzero(r["mask"][0, :, :, 0].any(axis=0))
        dh, dw = rows[0] - top, cols[0] - left
        assert 0 <= dh <= 2 and 0 <= dw <= 2  # max_delta // 2
        assert rows[-1] == top + bh - dh - 1 and cols[-1] == left + bw - dw - 1
        seen_delta.add((int(dh), int(dw)))
        for key in ("alpha_local", "alpha_global"):
            assert np.all((r[key] >= 0) & (r[key] < 1))
    assert len(seen_delta) > 3
    assert not np.array_equal(np.asarray(a["alpha_local"]), np.asarray(a["alpha_global"]))


def _v2(guided=False):
    config = TrainConfig(
        model="deepfill_v2",
        img_shapes=(64, 64, 3),
        height=32,
        width=32,
        max_delta_height=8,
        max_delta_width=8,
        batch_size=2,
        guided=guided,
    )
    return DeepFillV2Task(config, ToyGenerator(guided=guided), SNPatchGANDiscriminator.tiny())


def test_v2_each_loss_advances_the_sn_u_once():
    task = _v2()
    x = _rand((2, 64, 64, 3), 22)
    rnd = task.sample_random(tf.constant([1, 2]))
    convs = task.discriminator.sn_patch_gan.convs
    for loss_fn in (task.d_loss, task.g_loss):
        before = [np.asarray(c.u) for c in convs]
        loss_fn(x, rnd)
        for conv, u0 in zip(convs, before, strict=True):
            want = spectral_normalize(tf.constant(np.asarray(conv.kernel)), tf.constant(u0))[1]
            np.testing.assert_allclose(np.asarray(conv.u), np.asarray(want), atol=1e-6)


def test_v2_losses_compose_as_the_original():
    task = _v2()
    x = _rand((2, 64, 64, 3), 23)
    rnd = task.sample_random(tf.constant([5, 6]))
    mask = np.asarray(rnd["mask"])
    assert mask.shape == (1, 64, 64, 1) and set(np.unique(mask)) <= {0.0, 1.0} and mask.any()
    loss, m = task.g_loss(x, rnd)
    x_in = x * (1 - mask)
    ae = np.mean(np.abs(x - np.tanh(0.8 * x_in))) + np.mean(np.abs(x - np.tanh(0.6 * x_in + 0.1)))
    np.testing.assert_allclose(float(m["ae_loss"]), ae, rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(m["gan_loss"]) + ae, rtol=1e-5)
    with tf.GradientTape() as tape:
        d, dm = task.d_loss(x, rnd)
    assert 0.0 <= float(d) and set(dm) == {"d_loss"}
    assert all(g is not None for g in tape.gradient(d, task.d_variables))


def test_v2_guided_feeds_masked_edges_to_d_and_visuals():
    task = _v2(guided=True)
    assert task.d_channels == 5
    x = _rand((2, 64, 64, 3), 24)
    edges = (_rand((2, 64, 64, 1), 25, 0, 1) > 0.5).astype(np.float32)
    rnd = task.sample_random(tf.constant([8, 9]))
    assert np.isfinite(float(task.g_loss((x, edges), rnd)[0]))
    assert np.isfinite(float(task.d_loss((x, edges), rnd)[0]))
    grid = np.asarray(task.visuals((x, edges), rnd))
    mask = np.asarray(rnd["mask"])
    np.testing.assert_allclose(grid[:, :, 64:128], x * (1 - mask) + edges * mask, atol=1e-6)
    with pytest.raises(InputError, match="needs \\(images, edges\\)"):
        task.g_loss(x, rnd)


def test_visuals_layout():
    task = _v2()
    x = _rand((2, 64, 64, 3), 26)
    rnd = task.sample_random(tf.constant([1, 1]))
    mask = np.asarray(rnd["mask"])
    grid = np.asarray(task.visuals(x, rnd))
    assert grid.shape == (2, 64, 256, 3)
    np.testing.assert_array_equal(grid[:, :, :64], x)
    x_in = x * (1 - mask)
    np.testing.assert_allclose(grid[:, :, 64:128], x_in, atol=1e-7)
    complete = np.tanh(0.6 * x_in + 0.1) * mask + x_in * (1 - mask)
    np.testing.assert_allclose(grid[:, :, 128:192], complete, atol=1e-6)
    np.testing.assert_allclose(grid[:, :, 192:], 0.5, atol=1e-6)  # toy flow, upsampled x4


def test_make_task_builds_models_from_the_config():
    v2 = make_task(
        TrainConfig(
            model="deepfill_v2",
            img_shapes=(64, 64, 3),
            height=32,
            width=32,
            max_delta_height=8,
            max_delta_width=8,
            cnum=8,
            disc_cnum=4,
        ),
        generator=ToyGenerator(),
    )
    assert isinstance(v2, DeepFillV2Task) and v2.d_steps == 1
    assert v2.discriminator.built and v2.discriminator.cnum == 4
    assert v2.d_variables[0].shape == (5, 5, 4, 4)  # BGR + mask channel
    v1 = make_task(
        TrainConfig(
            model="deepfill_v1",
            img_shapes=(32, 24, 3),
            height=16,
            width=12,
            max_delta_height=4,
            max_delta_width=4,
            disc_cnum=4,
        ),
        generator=ToyGenerator(),
    )
    assert isinstance(v1, DeepFillV1Task) and v1.d_steps == 5
    assert v1.discriminator.local_size == (16, 12) and v1.discriminator.image_size == (32, 24)


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np
    from deepfill_tf.config import TrainConfig
    from deepfill_tf.models.discriminators import WGANLocalGlobalCritics
    from deepfill_tf.families.deepfill.task import DeepFillV1Task

    class Gen(keras.Model):
        guided = False

        def __init__(self):
            super().__init__()
            self.a = self.add_weight(shape=(), initializer="ones", name="a")
            self.built = True

        def call(self, image, hole_mask):
            x = tf.tanh(self.a * image * (1 - hole_mask))
            return x, x, x[:, ::4, ::4]

    config = TrainConfig(
        model="deepfill_v1", img_shapes=(32, 24, 3), height=16, width=12, max_delta_height=4,
        max_delta_width=4, batch_size=4,
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        task = DeepFillV1Task(
            config, Gen(), WGANLocalGlobalCritics(cnum=4, image_size=(32, 24), local_size=(16, 12))
        )
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 24, 3)).astype(np.float32)
    data = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x))

    @tf.function
    def step(batch, seed):
        random = task.sample_random(seed)
        def replica(images):
            return task.d_loss(images, random)[0], task.g_loss(images, random)[0]
        return strategy.run(replica, args=(batch,)), random

    (d, g), random = step(next(iter(data)), tf.constant([1, 2]))
    d = [float(v) for v in strategy.experimental_local_results(d)]
    g = [float(v) for v in strategy.experimental_local_results(g)]
    for r in range(2):  # replica r holds samples 2r, 2r+1 and must use alpha rows 2r, 2r+1
        rows = slice(2 * r, 2 * r + 2)
        single = {k: v for k, v in random.items()}
        single["alpha_local"] = random["alpha_local"][rows]
        single["alpha_global"] = random["alpha_global"][rows]
        want_d = float(task.d_loss(x[rows], single)[0])
        want_g = float(task.g_loss(x[rows], single)[0])
        assert abs(d[r] - want_d) < 1e-5 * max(1, abs(want_d)), (r, d, want_d)
        assert abs(g[r] - want_g) < 1e-5 * max(1, abs(want_g)), (r, g, want_g)
    print("OK")
    """
)


@pytest.mark.slow  # a fresh TF process (~5 s): logical devices must precede any TF op
def test_v1_task_under_mirrored_strategy_uses_each_replicas_alphas():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), (
        result.stdout[-2000:] + result.stderr[-3000:]
    )


@pytest.mark.parametrize(
    "model,cnum,compiled",
    [
        ("deepfill_v2", 8, False),  # ~3 s: the one default run of make_task's own models
        pytest.param("deepfill_v1", 4, False, marks=pytest.mark.slow),
        # tracing the whole generator + critic + gradients takes 15-25 s on 2 busy cores
        pytest.param("deepfill_v1", 4, True, marks=pytest.mark.slow),
        pytest.param("deepfill_v2", 8, True, marks=pytest.mark.slow),
    ],
)
def test_make_task_real_tiny_models_train_step(model, cnum, compiled):
    config = TrainConfig(
        model=model,
        img_shapes=(32, 32, 3),
        height=16,
        width=16,
        max_delta_height=4,
        max_delta_width=4,
        batch_size=2,
        cnum=cnum,
        disc_cnum=4,
    )
    task = make_task(config)
    assert task.generator.cnum == cnum and task.generator.built
    x = tf.constant(_rand((2, 32, 32, 3), 30))

    def step(seed):
        random = task.sample_random(seed)
        out = {}
        for name, loss_fn, variables in (
            ("d", task.d_loss, task.d_variables),
            ("g", task.g_loss, task.g_variables),
        ):
            with tf.GradientTape() as tape:
                loss, metrics = loss_fn(x, random)
            grads = tape.gradient(loss, variables)
            out[name] = (loss, metrics, [tf.norm(g) for g in grads])
        return out, task.visuals(x, random)

    out, grid = (tf.function(step) if compiled else step)(tf.constant([4, 2]))
    assert grid.shape == (2, 32, 128, 3)
    for name, (loss, metrics, norms) in out.items():
        assert np.isfinite(float(loss)) and float(metrics[f"{name}_loss"]) == float(loss)
        assert all(np.isfinite(float(n)) for n in norms), name
        assert sum(float(n) > 0 for n in norms) > len(norms) // 2, name
