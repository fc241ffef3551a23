"""``TrainConfig``: the keys every family shares plus the family's own section.

A training config names its ``model`` (a registered family, ``deepfill_tf.registry``); the
keys every family trains with (data, batch, learning rate, schedule length, logging) are
fields of ``TrainConfig``; everything else belongs to the family's section, a frozen
dataclass the family declares (``Family.config_section``): DeepFill's mask box and GAN
weights, GLCIC's phase lengths, ... A config reads its keys flat (``config.cnum``), whether
shared or the section's, so a YAML file may be flat or put the section under the family's
name (``deepfill_v2: {cnum: 48}``); ``save_config`` writes the nested form.

Keys whose published value differs between families (``img_shapes``, ``lr``, ``max_iters``,
``train_spe``, ``val_psteps``, ``log_dir``) take the family's ``published_defaults()`` unless
set.
Construction checks every key's type and value and raises a one-line ``ConfigError``
naming the key. Flat keyword arguments are routed to the section:
``TrainConfig(model="deepfill_v2", cnum=8, batch_size=2)``; ``dataclasses.replace`` works
the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from deepfill_tf.config.schema import Section, coerce, field_types, need, suggest
from deepfill_tf.errors import ConfigError
from deepfill_tf.registry import families, get_family

# Shared keys whose default comes from the family (Family.published_defaults).
FAMILY_DEFAULT_KEYS = ("img_shapes", "lr", "max_iters", "train_spe", "val_psteps", "log_dir")


@dataclasses.dataclass(frozen=True, init=False)
class TrainConfig:
    """Training settings: the shared keys below plus ``section`` (the family's keys).

    Model:
        model: a registered family name or alias (stored as the canonical name).
        section: the family's config section (built from the keyword arguments that are
            not shared keys).

    Data:
        train_data, val_data: a ``.flist`` file (one image path per line, as the original),
            a folder of images, a glob pattern, or ``'tfds:NAME[:split]'``. ``val_data`` is
            only read when ``val`` is true.
        img_shapes: ``(H, W, C)`` training image size (H, W multiples of the family's
            ``size_multiple``; C = 3). Images are resized to it (or, with ``random_crop``,
            cropped at a random position from larger images).
        random_flip, random_channel_shuffle: augmentation none of the originals does (off
            by default): mirror left-right with probability 1/2; permute colour channels.
        batch_size: images per step, over all replicas.

    Optimisation:
        lr: learning rate; max_iters: iterations (global steps); seed: random seed.

    Logging and checkpoints:
        log_dir: run directory (checkpoints, summaries, resolved config).
        model_restore: checkpoint (folder or prefix) to start from, ``''`` = none.
        train_spe: steps between checkpoints; val_psteps: steps between summaries.
        val: visualise ``static_view_size`` validation images every ``val_psteps`` steps.
        viz_max_out: images per visual summary. num_gpus: GPUs of an original run (kept for
            information; the distribution strategy decides the devices).
    """

    model: str
    section: Section
    train_data: str = ""
    val_data: str = ""
    img_shapes: tuple[int, int, int] = (256, 256, 3)
    random_crop: bool = False
    random_flip: bool = False
    random_channel_shuffle: bool = False
    batch_size: int = 16
    lr: float = 1e-4
    max_iters: int = 1_000_000
    seed: int = 2018
    log_dir: str = ""
    model_restore: str = ""
    train_spe: int = 10000
    val: bool = False
    val_psteps: int = 1000
    static_view_size: int = 30
    viz_max_out: int = 10
    num_gpus: int = 1

    def __init__(self, model: str, section: Section | None = None, **keys: Any):
        family = get_family(coerce("model", model, str))
        keys = {k: v for k, v in keys.items() if v is not None}  # null = the default
        if family.config_section is None:
            raise ConfigError(
                f"{family.label} has no training configuration (it cannot be trained)"
            )
        shared = shared_keys()
        section_keys = field_types(family.config_section)
        unknown = [k for k in keys if k not in shared and k not in section_keys]
        if unknown:
            raise ConfigError(unknown_key_message(unknown[0], family, (*shared, *section_keys)))
        values = {k: v for k, v in family.published_defaults().items() if k not in keys}
        values.update({k: v for k, v in keys.items() if k in shared})
        own = {k: v for k, v in keys.items() if k in section_keys}
        if section is not None and type(section) is family.config_section:
            own = {**section.to_dict(), **own}
        object.__setattr__(self, "model", family.name)
        object.__setattr__(self, "section", family.config_section(**own))
        for name, hint in shared.items():
            value = values.get(name, _DEFAULTS[name])
            object.__setattr__(self, name, coerce(name, value, hint))
        _validate_shared(self, family)
        self.section.validate(self)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the section's keys read as the config's own.
        section = self.__dict__.get("section")
        if section is not None and name in field_types(type(section)):
            return getattr(section, name)
        raise AttributeError(
            f"{type(self).__name__} of {self.__dict__.get('model')} has no key {name!r}"
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some keys (shared or the section's) changed, validated again."""
        return dataclasses.replace(self, **changes)

    def flat_dict(self) -> dict[str, Any]:
        """Every key, flat (``model``, shared keys, section keys), lists for tuples."""
        out: dict[str, Any] = {"model": self.model}
        for name in shared_keys():
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        out.update(self.section.to_dict())
        return out

    def to_dict(self) -> dict[str, Any]:
        """What ``save_config`` writes: shared keys, then the section under the model name."""
        out = {k: v for k, v in self.flat_dict().items() if k == "model" or k in shared_keys()}
        out[self.model] = self.section.to_dict()
        return out


_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name not in ("model", "section")
}


def shared_keys() -> dict[str, Any]:
    """Shared key -> type hint (every ``TrainConfig`` field but ``model`` and ``section``)."""
    return {k: v for k, v in field_types(TrainConfig).items() if k not in ("model", "section")}


def unknown_key_message(key: str, family, known) -> str:
    """``unknown key 'x'; did you mean 'y'?``, or, for a key of another family,
    ``key 'guided' is not a deepfill_v1 key (deepfill_v2 has it)``."""

    owners = [
        f.name
        for f in families()
        if f is not family and f.config_section and key in field_types(f.config_section)
    ]
    if owners:
        return f"key {key!r} is not a {family.name} key ({', '.join(owners)} has it)"
    return f"unknown key {key!r}{suggest(key, known) or f' ({family.name} has no such key)'}"


def _validate_shared(c: TrainConfig, family) -> None:
    h, w, ch = c.img_shapes
    m = int(family.size_multiple)
    need(
        h > 0 and w > 0 and h % m == 0 and w % m == 0,
        f"key 'img_shapes' needs H and W positive multiples of {m} for {family.name},"
        f" got {list(c.img_shapes)}",
    )
    need(ch == 3, f"key 'img_shapes' needs 3 channels, got {ch}")
    for name in ("batch_size", "max_iters", "train_spe", "val_psteps"):
        need(getattr(c, name) >= 1, f"key {name!r} must be >= 1, got {getattr(c, name)}")
    for name in ("static_view_size", "viz_max_out", "num_gpus", "seed"):
        need(getattr(c, name) >= 0, f"key {name!r} must be >= 0, got {getattr(c, name)}")
    need(c.lr > 0, f"key 'lr' must be positive, got {c.lr}")
    for name in ("train_data", "val_data"):
        source = getattr(c, name)
        need(
            not (source.startswith("tfds:") and not source[5:].split(":")[0]),
            f"key {name!r}: 'tfds:' needs a dataset name (tfds:NAME[:split]), got {source!r}",
        )
    need(not (c.val and not c.val_data), "key 'val' is true but 'val_data' is empty")
    need(bool(c.log_dir), "key 'log_dir' must not be empty")
