"""DeepFill v1 / v2 training tasks: the original losses behind the generic task interface.

A task holds the generator and the discriminator and knows, per version, how to draw the
random parts of a step (``sample_random``), the discriminator loss (``d_loss``), the
generator loss (``g_loss``) and the visual summary (``visuals``); the generic loop in
``deepfill_tf.training`` runs them (``AdversarialTask``: ``d_steps`` D steps, one G step).

What each step computes is the original ``build_graph_with_losses`` (JiahuiYu/
generative_inpainting v1.0.0 / v2.0.0 ``inpaint_model.py``, with neuralgym's trainers):

* v2: mask = random box OR free-form brush strokes (one (1, H, W, 1) mask per step, shared by
  the batch); ``ae_loss = a * mean|x - x1| + a * mean|x - x2|`` over all pixels; the
  SN-PatchGAN sees ``concat([real; completed], 0)`` with the mask (and the edge) as extra
  channels; hinge losses; ``g_loss = gan_loss_alpha * (-mean D(completed)) + ae_loss``.
* v1: mask = random box; local patch = the box BEFORE shrinking (``height x width``);
  spatially discounted local L1 (``l1_loss``), hole-excluding ``ae_loss``; WGAN losses of a
  local and a global critic; gradient penalty per critic at ``real + alpha (fake - real)``
  (one alpha per sample) with the hole mask weighting the squared gradient;
  ``g_loss = gan_loss_alpha * (global_wgan_loss_alpha * g_global + g_local)
  + l1_loss_alpha * l1_loss + ae_loss_alpha * ae_loss``; ``pretrain_coarse_network`` trains
  x1 alone without GAN terms and without discriminator steps (``d_steps == 0``).

Conventions: images (B, H, W, 3) float32 BGR in [-1, 1]; masks (1, H, W, 1) float32, 1 = hole.
Guided v2 takes ``(images, edges)`` with edges (B, H, W, 1) in {0, 1} (already binarised with
``edge_threshold`` by the data pipeline).

Spectral norm: every call of the SN-PatchGAN advances its ``u`` (as the original, whose D
step and G step each evaluate their own copy of D once per iteration). ``d_loss`` and
``g_loss`` each call the discriminator exactly once.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from deepfill_tf.errors import ConfigError, InputError
from deepfill_tf.families.deepfill.static_views import StaticViews
from deepfill_tf.losses.adversarial import (
    hinge_loss,
    random_interpolates,
    slope_penalty,
    wgan_loss,
)
from deepfill_tf.losses.reconstruction import (
    spatial_discounting_mask,
    v1_ae_loss,
    v1_l1_loss,
    v2_ae_loss,
)
from deepfill_tf.masks import BoxParams, random_box_mask_tf, random_mask_tf
from deepfill_tf.models.deepfill_generator import DeepFillV1Generator, DeepFillV2Generator
from deepfill_tf.models.discriminators import SNPatchGANDiscriminator, WGANLocalGlobalCritics
from deepfill_tf.ops.resize import resize_bilinear_align_corners, resize_nearest_align_corners
from deepfill_tf.training.summaries import bgr_to_display
from deepfill_tf.training.task import AdversarialTask

__all__ = ["DeepFillV1Task", "DeepFillV2Task", "make_task", "original_adam"]


def original_adam(config) -> keras.optimizers.Adam:
    """The original's optimiser: ONE Adam for G and D (``lr``, ``beta1``, ``beta2``, TF1's
    epsilon 1e-8, not Keras' 1e-7). Built on both networks' variables by the loop, its
    ``iterations`` counter (the bias correction) advances on D and G steps alike, as the
    original's shared ``beta1_power`` / ``beta2_power``."""
    return keras.optimizers.Adam(
        learning_rate=config.lr,
        beta_1=config.beta1,
        beta_2=config.beta2,
        epsilon=1e-8,  # tf.compat.v1.train.AdamOptimizer's default
        name="adam",
    )


class _DeepFillTask(AdversarialTask):
    """Shared plumbing of both versions; see ``DeepFillV1Task`` / ``DeepFillV2Task``."""

    _flow_resize = staticmethod(resize_bilinear_align_corners)

    def __init__(self, config, generator: keras.Model, discriminator: keras.Model):
        super().__init__(config)
        self.generator = generator
        self.discriminator = discriminator
        self.height, self.width = int(config.img_shapes[0]), int(config.img_shapes[1])
        self.d_steps = int(config.d_steps)
        self.box = BoxParams(
            height=config.height,
            width=config.width,
            max_delta_height=config.max_delta_height,
            max_delta_width=config.max_delta_width,
            vertical_margin=config.vertical_margin,
            horizontal_margin=config.horizontal_margin,
        )
        self.guided = bool(getattr(config, "guided", False))  # v2 only
        built_guided = bool(getattr(generator, "guided", False))
        if built_guided != self.guided:
            raise ConfigError(
                f"config guided={self.guided} but the generator was built with"
                f" guided={built_guided}"
            )
        if not generator.built:
            generator.build_for(self.height, self.width)

    def make_optimizer(self) -> keras.optimizers.Adam:
        return original_adam(self.config)

    def dataset_options(self) -> dict:
        if not self.guided:
            return {}
        return {"guided": True, "edge_threshold": self.config.edge_threshold}

    def display(self, grid) -> tf.Tensor:
        """BGR [-1, 1] grids (``visuals``) as RGB [0, 1]."""
        return bgr_to_display(grid)

    def static_views(self):
        return StaticViews(self.config, self.generator)

    # ------------------------------------------------------------------ helpers

    def _unpack(self, images):
        """(images (B, H, W, 3), edges (B, H, W, 1) or None) from the loop's batch."""
        if isinstance(images, (tuple, list)):
            if not self.guided:
                raise InputError("got (images, edges) batches but the config is not guided")
            images, edges = images
            return tf.convert_to_tensor(images, tf.float32), tf.convert_to_tensor(edges, tf.float32)
        if self.guided:
            raise InputError("guided training needs (images, edges) batches")
        return tf.convert_to_tensor(images, tf.float32), None

    def _inpaint(self, images, edges, mask):
        """Generator forward as the training graph: dict of x1, x2, flow, incomplete."""
        gen_in = images if edges is None else tf.concat([images, edges], axis=-1)
        x1, x2, flow = self.generator(gen_in, mask)
        return {"x1": x1, "x2": x2, "flow": flow, "incomplete": images * (1.0 - mask)}

    def _predicted(self, out):
        return out["x2"]

    def visuals(self, images, random) -> tf.Tensor:
        """(B, H, 4W, 3) BGR in [-1, 1]: raw | incomplete (+ edge if guided) | completed |
        attention flow (upsampled x4 to H x W as the original summary)."""
        images, edges = self._unpack(images)
        mask = _hole_mask(random)
        out = self._inpaint(images, edges, mask)
        complete = self._predicted(out) * mask + out["incomplete"] * (1.0 - mask)
        incomplete = out["incomplete"]
        if edges is not None:
            incomplete = incomplete + edges * mask
        flow = self._flow_resize(out["flow"], size=(self.height, self.width))
        return tf.concat([images, incomplete, complete, tf.cast(flow, images.dtype)], axis=2)


class DeepFillV2Task(_DeepFillTask):
    """DeepFill v2 (gated convolution + SN-PatchGAN) training losses.

    Args:
        config: ``TrainConfig`` with ``model='deepfill_v2'``.
        generator: ``DeepFillV2Generator`` (guided iff ``config.guided``).
        discriminator: ``SNPatchGANDiscriminator`` taking 3 (+1 mask if ``gan_with_mask``)
            (+1 edge if guided) channels.

    Random parts of a step (``sample_random``): ``{"mask": (1, H, W, 1)}``, the union of a
    random box (``height x width`` shrunk by random deltas) and a free-form brush mask.
    """

    def __init__(self, config, generator, discriminator):
        if config.model != "deepfill_v2":
            raise ConfigError(f"DeepFillV2Task needs model 'deepfill_v2', got {config.model!r}")
        super().__init__(config, generator, discriminator)
        self.d_channels = 3 + int(config.gan_with_mask) + int(self.guided)
        if not discriminator.built:
            discriminator.build((None, self.height, self.width, self.d_channels))

    def sample_random(self, seed) -> dict[str, tf.Tensor]:
        """``{"mask": float32 (1, H, W, 1)}``: box OR brush strokes, stateless from ``seed``
        (shape-[2] int), so it runs inside ``tf.function`` and gives the same mask for the same
        seed on every replica."""
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        mask = random_mask_tf("both", seed, (self.height, self.width), box=self.box)
        return {"mask": mask}

    def _discriminate(self, images, edges, mask, completed, fake_only=False):
        """D scores (pos (B, N) or None, neg (B, N)) on ``[real; completed]`` + mask/edge."""
        batch = tf.shape(images)[0]
        halves = [completed] if fake_only else [images, completed]
        n = len(halves)
        extra = []
        if self.config.gan_with_mask:
            extra.append(tf.broadcast_to(mask, [batch, self.height, self.width, 1]))
        if edges is not None:
            extra.append(edges * mask)  # the original conditions D on the edges in the hole
        inputs = tf.concat(
            [tf.concat(halves, axis=0)] + [tf.concat([e] * n, axis=0) for e in extra], axis=-1
        )
        scores = self.discriminator(inputs)  # (n*B, N); advances the SN u once
        if fake_only:
            return None, scores
        pos, neg = tf.split(scores, 2, axis=0)
        return pos, neg

    def d_loss(self, images, random) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Hinge discriminator loss on ``[real; completed]`` (generator outputs are constants
        here). Returns (d_loss, {"d_loss"})."""
        images, edges = self._unpack(images)
        mask = _hole_mask(random)
        out = self._inpaint(images, edges, mask)
        completed = tf.stop_gradient(out["x2"] * mask + out["incomplete"] * (1.0 - mask))
        pos, neg = self._discriminate(images, edges, mask, completed)
        _, d = hinge_loss(pos, neg)
        return d, {"d_loss": d}

    def g_loss(self, images, random) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """``gan_loss_alpha * (-mean D(completed)) + ae_loss`` (ae term if ``config.ae_loss``).

        D sees only the completed half here: its scores per sample do not depend on the other
        samples, so ``-mean D(completed)`` and its gradients equal the original's, which
        evaluated ``D([real; completed])`` and kept the second half (u advances once either
        way). Returns (g_loss, {"g_loss", "ae_loss", "gan_loss"}).
        """
        images, edges = self._unpack(images)
        mask = _hole_mask(random)
        out = self._inpaint(images, edges, mask)
        ae = v2_ae_loss(images, out["x1"], out["x2"], self.config.l1_loss_alpha)
        completed = out["x2"] * mask + out["incomplete"] * (1.0 - mask)
        _, neg = self._discriminate(images, edges, mask, completed, fake_only=True)
        gan = -tf.reduce_mean(neg)
        total = self.config.gan_loss_alpha * gan
        if self.config.ae_loss:
            total = total + ae
        return total, {"g_loss": total, "ae_loss": ae, "gan_loss": gan}


class DeepFillV1Task(_DeepFillTask):
    """DeepFill v1 (contextual attention + WGAN-GP local/global critics) training losses.

    Args:
        config: ``TrainConfig`` with ``model='deepfill_v1'`` (``gan_with_mask`` False).
        generator: ``DeepFillV1Generator``.
        discriminator: ``WGANLocalGlobalCritics`` with ``image_size = img_shapes[:2]`` and
            ``local_size = (height, width)``.

    Random parts of a step (``sample_random``): ``mask`` (1, H, W, 1) (box shrunk by random
    deltas), ``bbox`` int32 [4] (top, left, height, width) of the box BEFORE shrinking (the
    local patch), ``alpha_local`` / ``alpha_global`` float32 (batch_size, 1) in [0, 1), the
    gradient-penalty interpolation factors of the GLOBAL batch (``config.batch_size``); under
    ``tf.distribute`` replica r uses rows ``[r*B, (r+1)*B)`` (mod batch_size), so every sample
    of the global batch gets its own factor.
    """

    _flow_resize = staticmethod(resize_nearest_align_corners)  # v1's summary: nearest

    def __init__(self, config, generator, discriminator):
        if config.model != "deepfill_v1":
            raise ConfigError(f"DeepFillV1Task needs model 'deepfill_v1', got {config.model!r}")
        if config.gan_with_mask:
            # v1 would append the mask to the global critic's batch only, while its gradient
            # penalty feeds 3-channel interpolates: the original cannot run this either.
            raise ConfigError("key 'gan_with_mask' must be false for deepfill_v1")
        super().__init__(config, generator, discriminator)
        self.pretrain = bool(config.pretrain_coarse_network)
        if self.pretrain:
            self.d_steps = 0  # the original adds no discriminator trainer when pretraining
        local = (int(config.height), int(config.width))
        sizes = (tuple(discriminator.image_size), tuple(discriminator.local_size))
        if sizes != ((self.height, self.width), local):
            raise ConfigError(
                f"the critics are built for images {sizes[0]} and patches {sizes[1]}, the config"
                f" trains {(self.height, self.width)} images with {local} boxes"
            )
        if not discriminator.built:
            discriminator.build()
        self.local_size = local
        self.discount = tf.constant(
            spatial_discounting_mask(
                *local, config.spatial_discounting_gamma, config.discounted_mask
            )
        )  # (1, h, w, 1)

    def sample_random(self, seed) -> dict[str, tf.Tensor]:
        """Box mask, its bbox and the two per-sample penalty factors, stateless from ``seed``
        (shape-[2] int)."""
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        box_seed, local_seed, global_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, num=3)
        )
        box = self.box
        bbox, mask = random_box_mask_tf(
            box_seed,
            (self.height, self.width),
            box.height,
            box.width,
            box.max_delta_height,
            box.max_delta_width,
            box.vertical_margin,
            box.horizontal_margin,
        )
        rows = [int(self.config.batch_size), 1]
        return {
            "mask": mask,
            "bbox": bbox,
            "alpha_local": tf.random.stateless_uniform(rows, local_seed),
            "alpha_global": tf.random.stateless_uniform(rows, global_seed),
        }

    def _predicted(self, out):
        return out["x1"] if self.pretrain else out["x2"]

    def _local(self, x, bbox):
        """Crop the (top, left) box of static size ``local_size``: (B, h, w, C)."""
        bbox = tf.cast(bbox, tf.int32)
        begin = tf.stack([0, bbox[0], bbox[1], 0])
        return tf.slice(x, begin, [-1, *self.local_size, -1])

    def d_loss(self, images, random) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """WGAN critic loss + gradient penalty. Returns (d_loss, metrics {"d_loss",
        "local_d_loss", "global_d_loss", "gp_loss", "gp_penalty_local", "gp_penalty_global"})."""
        cfg = self.config
        images, _ = self._unpack(images)
        mask, bbox = _hole_mask(random), random["bbox"]
        out = self._inpaint(images, None, mask)
        completed = self._predicted(out) * mask + out["incomplete"] * (1.0 - mask)
        completed = tf.stop_gradient(completed)
        local_real, local_fake = self._local(images, bbox), self._local(completed, bbox)
        d_local, d_global = self.discriminator(
            tf.concat([local_real, local_fake], axis=0), tf.concat([images, completed], axis=0)
        )
        _, d_loss_local = wgan_loss(*tf.split(d_local, 2, axis=0))
        _, d_loss_global = wgan_loss(*tf.split(d_global, 2, axis=0))

        batch = tf.shape(images)[0]
        interp_local = random_interpolates(
            local_real, local_fake, _replica_rows(random["alpha_local"], batch)
        )
        interp_global = random_interpolates(
            images, completed, _replica_rows(random["alpha_global"], batch)
        )
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([interp_local, interp_global])
            score_local, score_global = self.discriminator(interp_local, interp_global)
        # The two critics are independent, so one backward pass gives both input gradients.
        grad_local, grad_global = tape.gradient(
            [score_local, score_global], [interp_local, interp_global]
        )
        penalty_local = slope_penalty(grad_local, self._local(mask, bbox))
        penalty_global = slope_penalty(grad_global, mask)
        gp = cfg.wgan_gp_lambda * (penalty_local + penalty_global)
        total = d_loss_global + d_loss_local + gp
        return total, {
            "d_loss": total,
            "local_d_loss": d_loss_local,
            "global_d_loss": d_loss_global,
            "gp_loss": gp,
            "gp_penalty_local": penalty_local,
            "gp_penalty_global": penalty_global,
        }

    def g_loss(self, images, random) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Discounted local L1 + ae loss + WGAN generator loss (no GAN term when pretraining).

        The critics see only the completed images: ``-mean D(completed)`` is all the original
        uses of its ``D([real; completed])`` here. Returns (g_loss, metrics {"g_loss",
        "l1_loss", "ae_loss"} + {"local_g_loss", "global_g_loss"} unless pretraining).
        """
        cfg = self.config
        images, _ = self._unpack(images)
        mask, bbox = _hole_mask(random), random["bbox"]
        out = self._inpaint(images, None, mask)
        x1 = out["x1"]
        x2 = None if self.pretrain else out["x2"]
        l1 = v1_l1_loss(
            self._local(images, bbox),
            self._local(x1, bbox),
            None if x2 is None else self._local(x2, bbox),
            self.discount,
            cfg.coarse_l1_alpha,
        )
        ae = v1_ae_loss(images, x1, x2, mask, cfg.coarse_l1_alpha)
        metrics = {"l1_loss": l1, "ae_loss": ae}
        if self.pretrain:
            total = tf.zeros([], tf.float32)
        else:
            completed = self._predicted(out) * mask + out["incomplete"] * (1.0 - mask)
            d_local, d_global = self.discriminator(self._local(completed, bbox), completed)
            g_local, g_global = -tf.reduce_mean(d_local), -tf.reduce_mean(d_global)
            total = cfg.gan_loss_alpha * (cfg.global_wgan_loss_alpha * g_global + g_local)
            metrics.update(local_g_loss=g_local, global_g_loss=g_global)
        total = total + cfg.l1_loss_alpha * l1
        if cfg.ae_loss:
            total = total + cfg.ae_loss_alpha * ae
        metrics["g_loss"] = total
        return total, metrics


def _hole_mask(random) -> tf.Tensor:
    """``random["mask"]`` as float32 (1, H, W, 1) (or (B, H, W, 1)), 1 = hole."""
    return tf.cast(random["mask"], tf.float32)


def _replica_rows(values: tf.Tensor, batch) -> tf.Tensor:
    """This replica's ``batch`` rows of per-sample ``values`` drawn for the global batch.

    Outside ``tf.distribute`` (or with one replica) the first ``batch`` rows; in replica r of
    n, rows ``(r * batch + i) mod len(values)``.
    """
    n_rows = tf.shape(values)[0]
    start = 0
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        start = tf.cast(context.replica_id_in_sync_group, tf.int32) * batch
    index = (start + tf.range(batch)) % n_rows
    return tf.gather(values, index)


def make_task(config, generator=None, discriminator=None) -> DeepFillV1Task | DeepFillV2Task:
    """The task of ``config.model``, building any model not given from the config.

    Published widths come from the config (``cnum``, ``disc_cnum``); the v1 critics are made
    for ``img_shapes[:2]`` images and ``(height, width)`` local patches. Call it inside the
    distribution strategy's scope so the variables are created there.

    Returns:
        ``DeepFillV1Task`` or ``DeepFillV2Task`` with built models.
    """
    image_size = (int(config.img_shapes[0]), int(config.img_shapes[1]))
    if config.model == "deepfill_v1":
        if generator is None:
            generator = DeepFillV1Generator(cnum=config.cnum)
        if discriminator is None:
            discriminator = WGANLocalGlobalCritics(
                cnum=config.disc_cnum,
                image_size=image_size,
                local_size=(config.height, config.width),
            )
        return DeepFillV1Task(config, generator, discriminator)
    if config.model == "deepfill_v2":
        if generator is None:
            generator = DeepFillV2Generator(cnum=config.cnum, guided=config.guided)
        if discriminator is None:
            discriminator = SNPatchGANDiscriminator(cnum=config.disc_cnum)
        return DeepFillV2Task(config, generator, discriminator)
    raise ConfigError(f"no training task for model {config.model!r}")
