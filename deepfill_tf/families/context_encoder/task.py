"""Context Encoder training task: ``train.lua`` / ``train_random.lua`` of pathak22/context-encoder.

Per iteration one discriminator step, ``BCE(D(real region), 1) + BCE(D(G(x)), 0)``, then one
generator step, ``(1 - wtl2) * BCE(D(G(x)), 1) + mean(W * (G(x) - real)^2)`` (see
``deepfill_tf.families.context_encoder.training``). Differences from the original, kept small
and stated: each step draws its own batch (the original's G step reuses the D step's batch and
fake), and one Adam serves both networks (the original keeps two optimiser states; the
generator's 10x learning rate is kept, see :class:`ContextEncoderAdam`).

As the original, every convolution bias is zero and stays zero (``train.lua`` zeroes them
before each step): they are left out of the trained variables. Images: (B, 128, 128, 3)
float32 RGB in [-1, 1], the shorter side rescaled to ``load_size`` then a random 128 crop.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from deepfill_tf.families.context_encoder import training as T
from deepfill_tf.families.glcic.training import rescale_and_crop, training_image_paths
from deepfill_tf.models.context_encoder import (
    INPUT_SIZE,
    OUTPUT_SIZE,
    ContextEncoderDiscriminator,
    ContextEncoderGenerator,
)
from deepfill_tf.training.task import Objective, Phase, Task


@keras.saving.register_keras_serializable(package="deepfill_tf")
class ContextEncoderAdam(keras.optimizers.Adam):
    """Adam whose step is ``g_lr_mult`` times larger for variables under ``g_prefix`` (the
    original's generator learning rate, 10x the discriminator's when 0 < wtl2 < 1)."""

    def __init__(self, g_prefix: str = "context_encoder/", g_lr_mult: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.g_prefix, self.g_lr_mult = g_prefix, float(g_lr_mult)

    def build(self, variables):
        super().build(variables)
        self._in_generator = [v.path.startswith(self.g_prefix) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        # The TF backend passes the underlying tf.Variable: find it by index.
        if self._in_generator[self._get_variable_index(variable)]:
            learning_rate = learning_rate * self.g_lr_mult
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "g_prefix": self.g_prefix, "g_lr_mult": self.g_lr_mult}


def _without_conv_biases(variables):
    return [v for v in variables if not v.path.endswith("/conv/bias")]


class ContextEncoderTask(Task):
    """The Context Encoder training task (see the module docstring)."""

    def __init__(self, config):
        super().__init__(config)
        s = config.section
        self.generator = ContextEncoderGenerator(
            nef=s.nef, ngf=s.ngf, bottleneck=s.bottleneck, region=s.region
        )
        self.generator.build((None, INPUT_SIZE, INPUT_SIZE, 3))
        size = INPUT_SIZE if s.region == "random" else OUTPUT_SIZE
        self.discriminator = ContextEncoderDiscriminator(ndf=s.ndf, input_size=size)
        self.discriminator(tf.zeros((1, size, size, 3)))
        for model in (self.generator, self.discriminator):
            for v in model.weights:
                if v.path.endswith("/conv/bias"):
                    v.assign(tf.zeros_like(v))
        if s.region == "centre":
            self.weights = T.overlap_weights(OUTPUT_SIZE, s.overlap, s.wtl2)

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def objectives(self) -> dict[str, Objective]:
        return {
            "discriminator": Objective(
                self.d_loss,
                lambda: _without_conv_biases(self.discriminator.trainable_variables),
            ),
            "generator": Objective(
                self.g_loss, lambda: _without_conv_biases(self.generator.trainable_variables)
            ),
        }

    def phases(self) -> list[Phase]:
        return [Phase("train", (("discriminator", 1), ("generator", 1)))]

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        s = self.config.section
        mult = s.g_lr_mult if 0 < s.wtl2 < 1 else 1.0
        return ContextEncoderAdam(
            g_prefix=self.generator.name + "/",
            g_lr_mult=mult,
            learning_rate=self.config.lr,
            beta_1=s.beta1,
            epsilon=1e-8,  # optim.adam's default
            name="adam",
        )

    # ------------------------------------------------------------------ data

    def make_dataset(self, seed: int) -> tf.data.Dataset:
        c, s = self.config, self.config.section
        paths = training_image_paths(c, "Context Encoder")

        def load(path, element_seed):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            image = tf.cast(image, tf.float32) / 255.0
            crop = rescale_and_crop(image, element_seed, (s.load_size, s.load_size), INPUT_SIZE)
            return crop * 2.0 - 1.0

        ds = tf.data.Dataset.from_tensor_slices(paths)
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
        counter = tf.data.Dataset.counter(dtype=tf.int64)
        ds = tf.data.Dataset.zip(ds, counter).map(
            lambda p, i: load(p, tf.stack([tf.constant(seed, tf.int64), i])),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        ds = ds.ignore_errors()
        return ds.batch(c.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def sample_random(self, seed) -> dict[str, tf.Tensor]:
        if self.config.section.region == "random":
            return {"mask": T.random_pattern_mask(seed)}
        return {}

    # ------------------------------------------------------------------ losses

    def _inputs(self, images, random):
        """(network input, target, L2 weights)."""
        s = self.config.section
        if s.region == "random":
            mask = random["mask"]
            filled, target = T.random_region_inputs(images, mask)
            return filled, target, T.random_region_weights(mask, s.wtl2, s.overlap > 0)
        filled, target = T.centre_inputs(images, s.overlap)
        return filled, target, self.weights

    def d_loss(self, images, random):
        filled, target, _ = self._inputs(images, random)
        fake = tf.stop_gradient(self.generator(filled, training=True))
        real_logits = self.discriminator(target, training=True)
        fake_logits = self.discriminator(fake, training=True)
        loss = T.discriminator_loss(real_logits, fake_logits)
        return loss, {"d_loss": loss}

    def g_loss(self, images, random):
        s = self.config.section
        filled, target, weights = self._inputs(images, random)
        pred = self.generator(filled, training=True)
        logits = self.discriminator(pred, training=True)
        l2 = T.reconstruction_loss(pred, target, weights)
        loss = T.generator_loss(logits, pred, target, weights, s.wtl2)
        return loss, {"g_loss": loss, "l2": l2}

    # ------------------------------------------------------------------ summaries

    def visuals(self, images, random):
        """[input with the fill | completed | original], RGB [0, 1]."""
        s = self.config.section
        filled, _, _ = self._inputs(images, random)
        pred = self.generator(filled, training=False)
        if s.region == "random":
            completed = images * (1.0 - random["mask"]) + pred * random["mask"]
        else:
            q = INPUT_SIZE // 4
            pad = [[0, 0], [q, q], [q, q], [0, 0]]
            region = tf.pad(tf.ones_like(pred[..., :1]), pad)
            completed = images * (1.0 - region) + tf.pad(pred, pad)
        grid = tf.concat([filled, completed, images], axis=2)
        return (grid + 1.0) * 0.5


def make_task(config) -> ContextEncoderTask:
    return ContextEncoderTask(config)
