"""GLCIC training task: three phases (completion MSE, discriminators, joint), as the paper.

See ``deepfill_tf.families.glcic.training`` for the recipe and its pieces. Per step:

* completion (phase 1, steps < t_c): ``weighted_mse(C(x, M), x, M)`` on the completion
  network only;
* discriminator (phase 2 until t_c + t_d, and the first step of each joint iteration):
  ``BCE(D(x, random patch), 1) + BCE(D(composite, patch around the hole), 0)``, the
  completion network fixed;
* joint (phase 3 until ``max_iters``): discriminator step, then the completion network on
  ``MSE + alpha * BCE(D(composite, patch), 1)``.

Images: (B, H, W, 3) float32 RGB in [0, 1] from :meth:`GLCICTask.make_dataset` (shorter side
rescaled uniformly in [short_side_min, short_side_max], random ``img_shapes`` crop). The
dataset mean is computed from ``mean_batches`` batches when a fresh run starts and kept in
the generator's ``dataset_mean`` weight (saved in every checkpoint; a resume keeps it).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from deepfill_tf.families.glcic import training as T
from deepfill_tf.models.glcic import GLCICCompletionNet, GLCICDiscriminator
from deepfill_tf.training.task import Objective, Phase, Task

# dataset_mean before the data have been averaged (a fresh run); any negative value.
_UNSET_MEAN = (-1.0, -1.0, -1.0)


class GLCICTask(Task):
    """The GLCIC training task (see the module docstring)."""

    def __init__(self, config):
        super().__init__(config)
        s = config.section
        h, w, _ = config.img_shapes
        self.height, self.width = int(h), int(w)
        self.generator = GLCICCompletionNet(cnum=s.cnum, mean=_UNSET_MEAN)
        self.generator.build((None, self.height, self.width, 4))
        self.discriminator = GLCICDiscriminator(cnum=s.disc_cnum, fc_units=s.fc_units)
        self.discriminator(
            [
                tf.zeros((1, self.height, self.width, 3)),
                tf.zeros((1, s.local_size, s.local_size, 3)),
            ]
        )

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    # ------------------------------------------------------------------ schedule

    def objectives(self) -> dict[str, Objective]:
        g_vars = lambda: list(self.generator.trainable_variables)  # noqa: E731
        d_vars = lambda: list(self.discriminator.trainable_variables)  # noqa: E731
        return {
            "completion_mse": Objective(self.mse_loss, g_vars),
            "discriminator": Objective(self.d_loss, d_vars),
            "completion": Objective(self.joint_loss, g_vars),
        }

    def phases(self) -> list[Phase]:
        s = self.config.section
        return [
            Phase("completion", (("completion_mse", 1),), end=s.t_c),
            Phase("discriminator", (("discriminator", 1),), end=s.t_c + s.t_d),
            Phase("joint", (("discriminator", 1), ("completion", 1))),
        ]

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        s = self.config.section
        if s.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=self.config.lr, beta_1=s.beta1, name="adam")
        # ADADELTA as Zeiler (2012), as the paper: lr 1.0 (the config's lr), rho, epsilon.
        return keras.optimizers.Adadelta(
            learning_rate=self.config.lr, rho=s.rho, epsilon=s.epsilon, name="adadelta"
        )

    def begin_phase(self, phase: Phase) -> None:
        if float(np.min(np.asarray(self.generator.dataset_mean))) < 0:
            self.generator.dataset_mean.assign(self.compute_dataset_mean())

    def compute_dataset_mean(self) -> tf.Tensor:
        """The mean RGB pixel of ``mean_batches`` batches of the training data."""
        ds = self.make_dataset(self.config.seed)
        return T.dataset_mean(iter(ds), max_batches=self.config.section.mean_batches)

    # ------------------------------------------------------------------ data

    def make_dataset(self, seed: int) -> tf.data.Dataset:
        """Global batches (B, H, W, 3) float32 RGB [0, 1]: the paper's rescale and crop."""
        c, s = self.config, self.config.section
        paths = T.training_image_paths(c, "GLCIC")
        crop = (self.height, self.width)
        short = (s.short_side_min, s.short_side_max)

        def load(path, element_seed):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            image = tf.cast(image, tf.float32) / 255.0
            if crop[0] == crop[1]:
                return T.rescale_and_crop(image, element_seed, short, crop[0])
            scaled = T.rescale_and_crop(image, element_seed, short, max(crop))
            return scaled[: crop[0], : crop[1]]

        ds = tf.data.Dataset.from_tensor_slices(paths)
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
        counter = tf.data.Dataset.counter(dtype=tf.int64)
        ds = tf.data.Dataset.zip(ds, counter).map(
            lambda p, i: load(p, tf.stack([tf.constant(seed, tf.int64), i])),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        ds = ds.ignore_errors()  # unreadable files are skipped
        return ds.batch(c.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def sample_random(self, seed) -> dict[str, tf.Tensor]:
        s = self.config.section
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        n = self.config.batch_size
        return {
            "boxes": T.random_boxes(n, self.height, self.width, (s.hole_min, s.hole_max), seeds[0]),
            "real_offsets": T.random_patch_offsets(
                n, self.height, self.width, s.local_size, seeds[1]
            ),
        }

    # ------------------------------------------------------------------ losses

    def _complete(self, images, random, training=True):
        b = tf.shape(images)[0]
        boxes = random["boxes"][:b]
        mask = T.box_masks(boxes, self.height, self.width)
        raw = self.generator(self.generator.prepare_input(images, mask), training=training)
        composite = images * (1.0 - mask) + raw * mask
        return boxes, mask, raw, composite

    def _fake_logits(self, composite, boxes, training=True):
        s = self.config.section
        offsets = T.centred_patch_offsets(boxes, self.height, self.width, s.local_size)
        patch = T.crop_patches(composite, offsets, s.local_size)
        return self.discriminator([composite, patch], training=training)

    def mse_loss(self, images, random):
        _, mask, raw, _ = self._complete(images, random)
        loss = T.weighted_mse(raw, images, mask)
        return loss, {"mse": loss}

    def d_loss(self, images, random):
        s = self.config.section
        boxes, _, _, composite = self._complete(images, random)
        composite = tf.stop_gradient(composite)
        b = tf.shape(images)[0]
        real_patch = T.crop_patches(images, random["real_offsets"][:b], s.local_size)
        real = self.discriminator([images, real_patch], training=True)
        fake = self._fake_logits(composite, boxes)
        loss = T.discriminator_loss(real, fake)
        return loss, {"d_loss": loss, "d_real": tf.reduce_mean(tf.sigmoid(real)),
                      "d_fake": tf.reduce_mean(tf.sigmoid(fake))}  # fmt: skip

    def joint_loss(self, images, random):
        s = self.config.section
        boxes, mask, raw, composite = self._complete(images, random)
        mse = T.weighted_mse(raw, images, mask)
        gan = T.generator_gan_loss(self._fake_logits(composite, boxes))
        loss = mse + s.alpha * gan
        return loss, {"g_loss": loss, "mse": mse, "g_gan": gan}

    # ------------------------------------------------------------------ summaries

    def visuals(self, images, random):
        """[masked input (hole in the mean colour) | completed | original], RGB [0, 1]."""
        _, mask, _, composite = self._complete(images, random, training=False)
        mean = tf.reshape(tf.cast(self.generator.dataset_mean, images.dtype), (1, 1, 1, 3))
        masked = images * (1.0 - mask) + tf.maximum(mean, 0.0) * mask
        return tf.concat([masked, composite, images], axis=2)


def make_task(config) -> GLCICTask:
    return GLCICTask(config)
