"""``TrainConfig``: every setting that training DeepFill v1 / v2 needs, as one frozen dataclass.

Field names are our own lower-case names; most equal the lower-case keys of the original v2
``inpaint.yml`` (and, lower-cased, the upper-case v1 keys), see ``neuralgym_compat`` for the
translation of the original files. The defaults are the published settings of the original
code (generative_inpainting v1.0.0 / v2.0.0 ``inpaint.yml`` + ``train.py``). Settings whose
published value differs between v1 and v2 default to ``None``, which ``__post_init__``
replaces by the published value of ``model`` (table ``PUBLISHED``); a constructed
``TrainConfig`` therefore never holds ``None``.

Constructing a ``TrainConfig`` checks every field's type and value and raises a one-line
``ConfigError`` naming the field. Images are BGR in [-1, 1] and masks 1 = hole throughout
training; this config only carries sizes and hyper-parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from deepfill_tf.errors import ConfigError

MODELS = ("deepfill_v1", "deepfill_v2")

# Published value of each model-dependent field (v1.0.0 / v2.0.0 inpaint.yml and train.py).
PUBLISHED: dict[str, dict[str, Any]] = {
    "deepfill_v1": {
        "cnum": 32,
        "beta2": 0.9,
        "d_steps": 5,  # neuralgym SecondaryTrainer(max_iters=5): 5 critic steps per G step
        "gan": "wgan_gp",
        "gan_loss_alpha": 0.001,
        "l1_loss_alpha": 1.2,
        "gan_with_mask": False,
        "train_spe": 10000,
        "max_iters": 1_000_000,
        "val_psteps": 1000,
        "log_dir": "logs/deepfill_v1",
    },
    "deepfill_v2": {
        "cnum": 48,
        "beta2": 0.999,
        "d_steps": 1,
        "gan": "sngan",
        "gan_loss_alpha": 1.0,
        "l1_loss_alpha": 1.0,
        "gan_with_mask": True,
        "train_spe": 4000,
        "max_iters": 100_000_000,
        "val_psteps": 2000,
        "log_dir": "logs/deepfill_v2",
    },
}

# The only adversarial loss each original implements.
GAN_OF_MODEL = {"deepfill_v1": "wgan_gp", "deepfill_v2": "sngan"}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings of DeepFill v1 / v2 (defaults: the published settings of ``model``).

    Network:
        model: ``'deepfill_v1'`` (contextual attention, WGAN-GP critics) or ``'deepfill_v2'``
            (gated convolution, SN-PatchGAN).
        guided: v2 only: append a sketch/edge channel to the generator and discriminator
            input (the edge image of ``x.jpg`` is ``x_edge.jpg``).
        cnum: generator width (32 v1, 48 v2). v2 needs a multiple of 4 (gated convs halve
            it twice), v1 an even number.
        disc_cnum: discriminator base width (64 in both originals).

    Data:
        train_data, val_data: data source, one string each: a ``.flist`` file (one image
            path per line, as the original), a folder of images, a glob pattern, or
            ``'tfds:NAME[:split]'``. Relative paths are relative to the working directory,
            as in the original. ``val_data`` is only read when ``val`` is true.
        img_shapes: ``(H, W, C)`` training image size; images are resized to it (or, with
            ``random_crop``, cropped from larger images). H and W multiples of 8, C = 3 (BGR).
        random_crop: crop ``img_shapes`` at a random position instead of resizing.
        random_flip, random_channel_shuffle: augmentation the original does not do (both
            off by default): mirror left-right with probability 1/2; permute the colour
            channels at random. For small datasets such as the demo's.
        batch_size: images per step (per replica count is the training loop's business).

    Masks (the original's random box):
        height, width: box size; max_delta_height, max_delta_width: the box shrinks on each
            side by a random ``randint(max_delta // 2 + 1)``; vertical_margin,
            horizontal_margin: minimum distance of the box from the image border.

    Optimisation (one Adam shared by G and D, as the original):
        lr (1e-4), beta1 (0.5), beta2 (0.9 v1 / 0.999 v2), d_steps: discriminator steps per
        generator step (5 v1 / 1 v2), max_iters: generator steps, seed: random seed
        (2018, the original's numpy seed).

    Losses (see reference "Losses and training"):
        gan: ``'wgan_gp'`` (v1) / ``'sngan'`` (v2 hinge); gan_loss_alpha: weight of the
        generator's adversarial loss (0.001 v1 / 1 v2); gan_with_mask: the discriminator
        also sees the mask (False v1 / True v2); l1_loss_alpha: v1 weight of the spatially
        discounted local L1 loss (1.2), v2 weight of each full-image L1 term (1); ae_loss:
        add the reconstruction loss.
        v1 only: wgan_gp_lambda (10), coarse_l1_alpha (1.2, weight of the coarse x1 terms),
        ae_loss_alpha (1.2), global_wgan_loss_alpha (1), spatial_discounting_gamma (0.9),
        discounted_mask (True: use the spatial discounting weights), pretrain_coarse_network
        (False: True trains x1 only, without GAN losses).
        v2 only: edge_threshold (0.6, guided edge binarisation).

    Logging and checkpoints:
        log_dir: run directory (checkpoints, summaries, resolved config).
        model_restore: checkpoint (folder or prefix) to start from, ``''`` = none.
        train_spe: steps between checkpoints / epoch summaries (10000 v1 / 4000 v2).
        val: visualise ``static_view_size`` validation images every ``val_psteps`` steps.
        val_psteps: steps between summaries (1000 v1 / 2000 v2).
        static_view_size: number of static validation images (30).
        viz_max_out: images per visual summary (10).
        num_gpus: GPUs of the original run (kept for information; the distribution
            strategy decides the devices).
    """

    model: str
    # network
    guided: bool = False
    cnum: int | None = None
    disc_cnum: int = 64
    # data
    train_data: str = ""
    val_data: str = ""
    img_shapes: tuple[int, int, int] = (256, 256, 3)
    random_crop: bool = False
    random_flip: bool = False
    random_channel_shuffle: bool = False
    batch_size: int = 16
    # masks
    height: int = 128
    width: int = 128
    max_delta_height: int = 32
    max_delta_width: int = 32
    vertical_margin: int = 0
    horizontal_margin: int = 0
    # optimisation
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float | None = None
    d_steps: int | None = None
    max_iters: int | None = None
    seed: int = 2018
    # losses (both versions)
    gan: str | None = None
    gan_loss_alpha: float | None = None
    gan_with_mask: bool | None = None
    l1_loss_alpha: float | None = None
    ae_loss: bool = True
    # losses (v1 only)
    wgan_gp_lambda: float = 10.0
    coarse_l1_alpha: float = 1.2
    ae_loss_alpha: float = 1.2
    global_wgan_loss_alpha: float = 1.0
    spatial_discounting_gamma: float = 0.9
    discounted_mask: bool = True
    pretrain_coarse_network: bool = False
    # v2 only
    edge_threshold: float = 0.6
    # logging and checkpoints
    log_dir: str | None = None
    model_restore: str = ""
    train_spe: int | None = None
    val: bool = False
    val_psteps: int | None = None
    static_view_size: int = 30
    viz_max_out: int = 10
    num_gpus: int = 1

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"key 'model' must be one of {', '.join(MODELS)}, got {self.model!r}")
        published = PUBLISHED[self.model]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in published:
                value = published[f.name]
            object.__setattr__(self, f.name, _coerce(f.name, value, field_types()[f.name]))
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists instead of tuples), in field order: what ``save_config`` writes."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@functools.cache
def field_types() -> dict[str, Any]:
    """Field name -> type hint of ``TrainConfig`` (``int | None`` etc., evaluated)."""
    return typing.get_type_hints(TrainConfig)


def field_base_type(name: str) -> Any:
    """The non-None type of a field: ``int`` for ``int | None``; ``tuple`` for img_shapes."""
    hint = field_types()[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple
    return args[0] if args else hint


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type hint; return it normalised (float, tuple)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if (
            isinstance(value, list | tuple)
            and len(value) == len(args)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return tuple(value)
        raise ConfigError(
            f"key {name!r} must be a list of {len(args)} integers [H, W, C], got {value!r}"
        )
    if type(None) in args:
        if value is None:  # only before the per-model default is filled in
            raise ConfigError(f"key {name!r} has no value")
        hint = next(a for a in args if a is not type(None))
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML reads `1e-4` (no dot) as a string; accept what float() accepts.
            try:
                return float(value)
            except ValueError:
                pass
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(
        f"key {name!r} must be {_TYPE_WORDS[hint]}, got {type(value).__name__} {value!r}"
    )


def _validate(c: TrainConfig) -> None:
    """Value checks that make the original training code well defined."""

    def need(condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(message)

    want_gan = GAN_OF_MODEL[c.model]
    need(
        c.gan == want_gan,
        f"key 'gan' must be {want_gan!r} for {c.model} (the only loss the original "
        f"implements), got {c.gan!r}",
    )
    need(not (c.guided and c.model != "deepfill_v2"), "key 'guided' needs model deepfill_v2")
    need(
        not (c.pretrain_coarse_network and c.model != "deepfill_v1"),
        "key 'pretrain_coarse_network' needs model deepfill_v1",
    )
    multiple = 4 if c.model == "deepfill_v2" else 2
    need(
        c.cnum > 0 and c.cnum % multiple == 0,
        f"key 'cnum' must be a positive multiple of {multiple} for {c.model}, got {c.cnum}",
    )
    need(c.disc_cnum > 0, f"key 'disc_cnum' must be positive, got {c.disc_cnum}")
    h, w, ch = c.img_shapes
    need(
        h > 0 and w > 0 and h % 8 == 0 and w % 8 == 0,
        f"key 'img_shapes' needs H and W positive multiples of 8, got {list(c.img_shapes)}",
    )
    need(ch == 3, f"key 'img_shapes' needs 3 channels (BGR), got {ch}")
    for size, delta, margin, full, names in (
        (
            c.height,
            c.max_delta_height,
            c.vertical_margin,
            h,
            ("height", "max_delta_height", "vertical_margin"),
        ),
        (
            c.width,
            c.max_delta_width,
            c.horizontal_margin,
            w,
            ("width", "max_delta_width", "horizontal_margin"),
        ),
    ):
        for name, value in zip(names, (size, delta, margin), strict=True):
            least = 1 if name in ("height", "width") else 0
            need(value >= least, f"key {name!r} must be >= {least}, got {value}")
        # the box's top/left is drawn from [margin, full - margin - size): must be non-empty
        need(
            full - margin - size > margin,
            f"the mask box (key {names[0]!r} = {size}, key {names[2]!r} = {margin}) does not "
            f"fit in {full} pixels",
        )
        need(size > 2 * (delta // 2), f"key {names[1]!r} = {delta} shrinks the box to nothing")
    for name in ("batch_size", "max_iters", "train_spe", "val_psteps", "d_steps"):
        need(getattr(c, name) >= 1, f"key {name!r} must be >= 1, got {getattr(c, name)}")
    for name in ("static_view_size", "viz_max_out", "num_gpus", "seed"):
        need(getattr(c, name) >= 0, f"key {name!r} must be >= 0, got {getattr(c, name)}")
    need(c.lr > 0, f"key 'lr' must be positive, got {c.lr}")
    for name in ("beta1", "beta2"):
        need(0 <= getattr(c, name) < 1, f"key {name!r} must be in [0, 1), got {getattr(c, name)}")
    for name in (
        "gan_loss_alpha",
        "l1_loss_alpha",
        "wgan_gp_lambda",
        "coarse_l1_alpha",
        "ae_loss_alpha",
        "global_wgan_loss_alpha",
        "edge_threshold",
    ):
        need(getattr(c, name) >= 0, f"key {name!r} must be >= 0, got {getattr(c, name)}")
    need(
        0 < c.spatial_discounting_gamma <= 1,
        f"key 'spatial_discounting_gamma' must be in (0, 1], got {c.spatial_discounting_gamma}",
    )
    for name in ("train_data", "val_data"):
        source = getattr(c, name)
        need(
            not (source.startswith("tfds:") and not source[5:].split(":")[0]),
            f"key {name!r}: 'tfds:' needs a dataset name (tfds:NAME[:split]), got {source!r}",
        )
    need(not (c.val and not c.val_data), "key 'val' is true but 'val_data' is empty")
    need(bool(c.log_dir), "key 'log_dir' must not be empty")
