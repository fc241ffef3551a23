"""Training-loss parity with the ORIGINAL ``build_graph_with_losses`` (oracles ``train/``).

The oracle ran the original v1.0.0 / v2.0.0 training graph on a batch of two 128x96 images
with the random parts fed (v2: box mask OR stroke mask; v1: box mask, bbox (64x48 local
patch), per-sample penalty factors) and stored the losses, the L2 norm of d(g_loss)/d(each
generator variable) and d(d_loss)/d(each discriminator variable), and x1 / x2. In that graph
d_loss and g_loss come from ONE discriminator forward that started from the checkpoint's SN
``u``; our task evaluates D once per loss, so ``u`` is reset to the checkpoint between them.

Two levels:
* ``*_from_oracle_outputs``: a stand-in generator returns the oracle's x1 / x2, so every loss
  and every discriminator gradient is checked without the generator (exact here).
* ``*_end_to_end``: the real generator from ``model/``; adds x1 / x2 and the generator
  gradients.

Tolerances (MANIFEST): losses 1e-4 relative (v1 gp_loss, and d_loss which is 94% gp_loss,
1e-3), gradient L2 norms 1e-3 relative, x1 / x2 5e-4 absolute.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.config import TrainConfig
from deepfill_tf.convert import load_tf1_checkpoint, tf1_variable_table
from deepfill_tf.families.deepfill.task import DeepFillV1Task, DeepFillV2Task
from deepfill_tf.inference.loading import load_generator
from deepfill_tf.models.discriminators import SNPatchGANDiscriminator, WGANLocalGlobalCritics

LOSS_RTOL = 1e-4
LOSS_RTOL_V1 = {"gp_loss": 1e-3, "d_loss": 1e-3}  # second-order gradient inside
GRAD_RTOL = 1e-3
GRAD_ATOL = 1e-8  # for the exactly-zero references (v1 dense biases under the WGAN loss)
X_ATOL = 5e-4
LOSS_ORDER = ("ae_loss", "l1_loss", "g_loss", "gp_loss", "d_loss")


class OracleOutputs(keras.Model):
    """Generator stand-in that returns the oracle's x1 / x2 for any input."""

    guided = False

    def __init__(self, x1, x2):
        super().__init__(name="inpaint_net")
        self.x1, self.x2 = tf.constant(x1), tf.constant(x2)
        self.built = True

    def call(self, image, hole_mask):
        return self.x1, self.x2, tf.zeros_like(self.x1[:, ::4, ::4])


def _oracle(root):
    train = json.loads((root / "train" / "train.json").read_text())
    batch = np.load(root / "train" / "batch_bgr_u8.npy")  # (2, 128, 96, 3) uint8 BGR
    x = batch.astype(np.float32) / 127.5 - 1.0  # true division, as the original graph
    return train, x


def _config(version, cnum=None):
    # The oracle's sizes: 128x96 images, box (local patch) H/2 x W/2; the mask deltas are fed.
    extra = {"cnum": cnum} if cnum else {}
    return TrainConfig(
        model=version,
        img_shapes=(128, 96, 3),
        height=64,
        width=48,
        max_delta_height=16,
        max_delta_width=12,
        batch_size=2,
        **extra,
    )


def _task(version, root, generator):
    config = _config(version, getattr(generator, "cnum", None))
    if version == "deepfill_v1":
        disc = WGANLocalGlobalCritics(image_size=(128, 96), local_size=(64, 48))
        disc.build()
        load_tf1_checkpoint(disc, str(root / "disc_ckpt"))
        return DeepFillV1Task(config, generator, disc)
    disc = SNPatchGANDiscriminator()
    disc.build((None, 128, 96, 4))
    load_tf1_checkpoint(disc, str(root / "disc_ckpt"))
    return DeepFillV2Task(config, generator, disc)


def _random(version, root, train):
    if version == "deepfill_v2":
        rect = np.load(root / "train" / "mask_rect.npy")
        strokes = np.load(root / "train" / "mask_strokes.npy")
        return {"mask": np.maximum(rect, strokes)}  # the graph ORs them
    alpha_local, alpha_global = np.asarray(train["alphas"], np.float32)  # rows: local, global
    return {
        "mask": np.load(root / "train" / "mask_rect.npy"),
        "bbox": tf.constant(train["bbox_tlhw"], tf.int32),
        "alpha_local": alpha_local.reshape(2, 1),
        "alpha_global": alpha_global.reshape(2, 1),
    }


def _losses_and_grads(task, x, random, with_g_grads):
    """Run d_loss then g_loss, each from the checkpoint's SN u (as the oracle's one D forward)."""
    u0 = [np.asarray(v) for v in task.discriminator.non_trainable_variables]
    with tf.GradientTape() as tape:
        d, d_metrics = task.d_loss(x, random)
    d_grads = tape.gradient(d, task.d_variables)
    for var, value in zip(task.discriminator.non_trainable_variables, u0, strict=True):
        var.assign(value)
    with tf.GradientTape() as tape:
        g, g_metrics = task.g_loss(x, random)
    g_grads = tape.gradient(g, task.g_variables) if with_g_grads else None
    return {**g_metrics, **d_metrics}, g_grads, d_grads


def _check_losses(version, got, want):
    errors = {}
    for name in LOSS_ORDER:
        if name not in want:
            continue
        rtol = LOSS_RTOL_V1.get(name, LOSS_RTOL) if version == "deepfill_v1" else LOSS_RTOL
        rel = abs(float(got[name]) - want[name]) / abs(want[name])
        errors[name] = rel
        assert rel <= rtol, (
            f"{version}: loss {name} diverged first: got {float(got[name]):.7g}, oracle "
            f"{want[name]:.7g}, relative error {rel:.3g} > {rtol} (all so far: {errors})"
        )
    return max(errors.values())


def _check_grads(what, model, variables, grads, want):
    """Compare per-variable gradient L2 norms in the model's variable (forward) order."""
    names = {id(v): n for n, v in tf1_variable_table(model).items()}
    assert sorted(names[id(v)] for v in variables) == sorted(want), f"{what}: variable sets differ"
    worst, worst_name = 0.0, None
    for var, grad in zip(variables, grads, strict=True):
        name = names[id(var)]
        assert grad is not None, f"{what}: no gradient for {name}"
        ref = want[name]["l2"]
        l2 = float(np.linalg.norm(np.asarray(grad, np.float64)))
        err = abs(l2 - ref)
        assert err <= GRAD_RTOL * ref + GRAD_ATOL, (
            f"{what}: first diverging variable {name}: |grad| {l2:.7g} vs oracle {ref:.7g} "
            f"(relative error {err / max(ref, 1e-30):.3g}; max_abs {float(np.abs(grad).max()):.4g}"
            f" vs {want[name]['max_abs']:.4g})"
        )
        rel = err / ref if ref else 0.0
        if rel > worst:
            worst, worst_name = rel, name
    return worst, worst_name


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_losses_and_d_gradients_from_oracle_outputs(oracles, version):
    root = oracles(version)
    train, x = _oracle(root)
    generator = OracleOutputs(
        np.load(root / "train" / "x1.npy"), np.load(root / "train" / "x2.npy")
    )
    task = _task(version, root, generator)
    metrics, _, d_grads = _losses_and_grads(task, x, _random(version, root, train), False)
    loss_err = _check_losses(version, metrics, train["losses"])
    d_err = _check_grads(
        "d(d_loss)/d(d_vars)",
        task.discriminator,
        task.d_variables,
        d_grads,
        train["grad_norms_d_loss_wrt_d_vars"],
    )
    print(f"{version} from oracle x1/x2: max loss rel err {loss_err:.2e}, d-grad L2 {d_err}")


_GENERATORS = {}


def _generator(root, version):
    if version not in _GENERATORS:
        _GENERATORS[version] = load_generator(str(root / "model"))[0]
    return _GENERATORS[version]


@pytest.mark.parametrize("version", ["deepfill_v1", "deepfill_v2"])
def test_training_parity_end_to_end(oracles, version):
    root = oracles(version)
    train, x = _oracle(root)
    task = _task(version, root, _generator(root, version))
    random = _random(version, root, train)

    x1, x2, _ = task.generator(x, random["mask"])
    x_err = {}
    for name, got in (("x1", x1), ("x2", x2)):
        want = np.load(root / "train" / f"{name}.npy")
        diff = np.abs(np.asarray(got, np.float64) - want)
        x_err[name] = float(diff.max())
        first = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
        assert diff.max() <= X_ATOL, (
            f"{version}: {name} max abs err {diff.max():.3g} at {first}, mean {diff.mean():.3g}"
        )

    metrics, g_grads, d_grads = _losses_and_grads(task, x, random, True)
    loss_err = _check_losses(version, metrics, train["losses"])
    g_err = _check_grads(
        "d(g_loss)/d(g_vars)",
        task.generator,
        task.g_variables,
        g_grads,
        train["grad_norms_g_loss_wrt_g_vars"],
    )
    d_err = _check_grads(
        "d(d_loss)/d(d_vars)",
        task.discriminator,
        task.d_variables,
        d_grads,
        train["grad_norms_d_loss_wrt_d_vars"],
    )
    print(
        f"{version} end to end: x1/x2 max abs {x_err}, max loss rel err {loss_err:.2e}, "
        f"g-grad L2 worst {g_err}, d-grad L2 worst {d_err}"
    )
