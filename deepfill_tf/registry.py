"""The model-family registry: what the rest of the package knows about each model family.

A *family* (DeepFill v1, DeepFill v2, SC-FEGAN, GLCIC, ...) is one ``Family`` object,
declared in its own home ``deepfill_tf/families/<family>/`` and listed once in
``FAMILY_MODULES`` below (or registered at run time with ``register``). Configuration,
checkpoint loading, inference, export, training, the CLI's ``--model`` choices and its
``--help`` texts look families up here; none of them switches on a model-name string.
``docs/families.md`` describes the contract for authors of a new family.

This module is pure Python and imports no TensorFlow, so ``deepfill-tf --help`` stays fast;
a family's heavy parts (networks, losses) are imported inside its methods.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from deepfill_tf.errors import CheckpointError, ConfigError

# One line per built-in family: the module whose import registers it.
FAMILY_MODULES = (
    "deepfill_tf.families.deepfill",
    "deepfill_tf.families.scfegan",
    "deepfill_tf.families.glcic",
    "deepfill_tf.families.context_encoder",
    "deepfill_tf.families.pconv",
)


@dataclasses.dataclass(frozen=True)
class Option:
    """An extra input or option a family's inference takes, surfaced as a CLI flag.

    Args:
        name: Python name (``guide``); the flag is ``--`` + name with ``-`` for ``_``.
        help: one line for ``--help``.
        kind: ``"image"`` (a file read as uint8 RGB, passed to the family as an (H, W, 3)
            array), ``"flag"`` (bool), ``"int"``, ``"float"`` or ``"str"``.
        default: value when not given (``None`` for an absent image).
        required: an ``"image"`` input the model cannot run without.
    """

    name: str
    help: str
    kind: str = "image"
    default: Any = None
    required: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint holds: the family name and the network's constructor options.

    ``options`` are the keyword arguments that ``Family.build_generator`` needs (e.g.
    ``{"cnum": 48, "guided": False}``); they read as attributes (``spec.cnum``).
    """

    family: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        options = self.__dict__.get("options", {})
        if key in options:
            return options[key]
        raise AttributeError(key)

    @property
    def name(self) -> str:
        """The family name (kept for the older ``spec.name`` spelling)."""
        return self.family

    @property
    def label(self) -> str:
        """Human-readable model name, e.g. ``"DeepFill v2 (guided)"``."""
        return get_family(self.family).spec_label(self)

    def describe(self) -> str:
        """Label and size options, e.g. ``"DeepFill v2 (cnum 12)"``."""
        sizes = [f"{k} {v}" for k, v in self.options.items() if not isinstance(v, bool)]
        return self.label + (f" ({', '.join(sizes)})" if sizes else "")


class Family:
    """The contract of a model family. Subclass it in ``deepfill_tf/families/<name>/``.

    Class attributes (declarations):
        name: canonical name, used by ``--model``, a config's ``model:`` key and ``ModelSpec``.
        aliases: other accepted names.
        label: human-readable name (``"DeepFill v2"``).
        summary: one line for ``--help``.
        inputs: extra inference inputs (``Option`` of kind ``"image"``), e.g. a guide.
        options: extra inference options (flags and values), e.g. ``original_postprocess``.
        size_multiple: the network's input sides must be multiples of this; the generic
            pipeline reflect-pads to it and crops back.
        min_side: smallest image side accepted.
        trainable / exportable / tflite: what the family supports.
        config_section: the frozen dataclass of the family's own training keys (or None).
        architecture_keys: section keys that fix the variables' shapes (a run directory
            cannot be resumed with other values).
        checkpoint_suffixes: file suffixes of the family's own checkpoint format (``.t7``);
            ``load_checkpoint`` reads them. TF1 checkpoints are recognised by ``detect``.

    Methods a family implements (the defaults raise or decline):
        ``detect``, ``build_generator``, ``tiny_spec``, ``spec_from_config``, ``predict``
        (and optionally ``composite``, ``make_inpainter``, ``load_checkpoint``),
        ``make_task``, ``published_defaults``.
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    label: str = ""
    summary: str = ""
    inputs: tuple[Option, ...] = ()
    options: tuple[Option, ...] = ()
    size_multiple: int = 8
    min_side: int = 16
    trainable: bool = False
    exportable: bool = False
    tflite: bool = False
    config_section: type | None = None
    architecture_keys: tuple[str, ...] = ()
    checkpoint_suffixes: tuple[str, ...] = ()

    # ---------------------------------------------------------------- checkpoints

    def detect(self, variables: Mapping[str, Any]) -> ModelSpec | None:
        """The spec of this family's generator in TF1-named ``variables``, or None.

        ``variables`` maps TF1 variable names to NumPy arrays (an original TF1 checkpoint,
        or a training run's generator stored under its TF1 names).
        """
        return None

    def load_checkpoint(self, path: str):
        """Load a checkpoint in the family's own format (``checkpoint_suffixes``).

        Returns:
            (generator, ModelSpec).
        """
        raise CheckpointError(f"{self.label} has no checkpoint format of its own ({path})")

    def spec_label(self, spec: ModelSpec) -> str:
        """Label of a spec (the family label unless a family adds variant words)."""
        return self.label

    # ---------------------------------------------------------------- networks

    def build_generator(self, spec: ModelSpec):
        """A built Keras generator for ``spec`` (weights not loaded)."""
        raise NotImplementedError

    def tiny_spec(self) -> ModelSpec:
        """The tiny configuration that tests, smoke runs and docs share."""
        raise NotImplementedError

    def spec_from_config(self, config) -> ModelSpec:
        """The generator spec a training config describes."""
        raise NotImplementedError

    # ---------------------------------------------------------------- inference

    def model_inputs(self, generator) -> tuple[Option, ...]:
        """The extra inputs this generator takes (all of ``inputs`` unless a variant lacks
        some, e.g. an unguided DeepFill v2 takes no guide). An input that is not
        ``required`` may be left out (``predict`` does not get it)."""
        return self.inputs

    def predict(self, generator, image, hole_mask, inputs: Mapping[str, Any]):
        """The network's prediction as pixels (traced inside ``tf.function``).

        Args:
            generator: the family's generator.
            image: (B, H, W, 3) float32 RGB in [0, 255] (whole numbers), H and W multiples of
                ``size_multiple``.
            hole_mask: (B or 1, H, W, 1) float32, 1 = hole.
            inputs: extra inputs by ``Option.name``: images as (B, H, W, 3) float32 RGB in
                [0, 255], padded like ``image``; options as Python values.

        Returns:
            (B, H, W, 3) float32 RGB on the [0, 255] scale (not clipped, not rounded): the
            prediction at every pixel; the pipeline keeps it inside the hole only.
        """
        raise NotImplementedError

    def composite(self, predicted, image, hole, options: Mapping[str, Any]):
        """uint8 RGB output from the prediction (inside ``tf.function``).

        Default: hole pixels ``round(clip(predicted))``, known pixels copied from ``image``.

        Args:
            predicted: (B, H, W, 3) float32 RGB [0, 255] scale; image: (B, H, W, 3) uint8
                RGB; hole: (B, H, W, 3) bool; options: the inference options' values.
        """
        import tensorflow as tf  # lazy: this module must not import TensorFlow

        levels = tf.cast(tf.round(tf.clip_by_value(predicted, 0.0, 255.0)), tf.int32)
        # Select on int32: TFLite's SELECT has no uint8 kernel.
        return tf.cast(tf.where(hole, levels, tf.cast(image, tf.int32)), tf.uint8)

    def make_inpainter(self, generator, spec: ModelSpec, **options):
        """An inpainter of the family's own (host-side steps the generic pipeline lacks,
        e.g. SC-FEGAN's resizing), or None for the generic ``deepfill_tf.inference.Inpainter``.
        It is called as ``inpainter(image, hole_mask, **extras)`` like the generic one."""
        return None

    # ---------------------------------------------------------------- training

    def published_defaults(self) -> dict[str, Any]:
        """Published values of the common training keys (``max_iters``, ``log_dir``, ...)."""
        return {}

    def make_task(self, config):
        """The training task (``deepfill_tf.training.Task``) for ``config``."""
        raise ConfigError(f"{self.label} cannot be trained here")

    def __repr__(self) -> str:
        return f"<Family {self.name}>"


_FAMILIES: dict[str, Family] = {}
_ALIASES: dict[str, str] = {}
_loaded = False


def register(family: Family, *, replace: bool = False) -> Family:
    """Add ``family`` to the registry (its name and aliases); returns it.

    Raises:
        ValueError: the name or an alias is taken (unless ``replace``).
    """
    if not family.name:
        raise ValueError("a family needs a name")
    for key in (family.name, *family.aliases):
        owner = _ALIASES.get(key)
        if owner is not None and owner != family.name and not replace:
            raise ValueError(f"family name {key!r} is taken by {owner!r}")
    if family.name in _FAMILIES and not replace:
        raise ValueError(f"family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    for key in (family.name, *family.aliases):
        _ALIASES[key] = family.name
    return family


def unregister(name: str) -> None:
    """Remove a family (tests that register a throw-away family clean up with this)."""
    family = _FAMILIES.pop(name, None)
    if family is not None:
        for key in (family.name, *family.aliases):
            _ALIASES.pop(key, None)


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in FAMILY_MODULES:
            importlib.import_module(module)


def _builtin_rank(family: Family) -> int:
    module = type(family).__module__
    for rank, name in enumerate(FAMILY_MODULES):
        if module == name or module.startswith(name + "."):
            return rank
    return len(FAMILY_MODULES)


def families() -> Iterator[Family]:
    """Every registered family: built-in ones in ``FAMILY_MODULES`` order (whatever imported
    them first), then those registered at run time, in registration order."""
    _load_builtin()
    return iter(sorted(_FAMILIES.values(), key=_builtin_rank))


def family_names() -> list[str]:
    """Canonical names of every registered family."""
    return [f.name for f in families()]


def get_family(name: str) -> Family:
    """The family called ``name`` (or one of its aliases).

    Raises:
        ConfigError: no such family (the message lists the known ones).
    """
    _load_builtin()
    canonical = _ALIASES.get(name)
    if canonical is None:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(family_names())})")
    return _FAMILIES[canonical]


def family_of(generator) -> Family:
    """The family of a generator: its class attribute ``family`` names it."""
    name = getattr(generator, "family", None)
    if not isinstance(name, str):
        raise ValueError(f"{type(generator).__name__} does not name its family")
    return get_family(name)


def detect_spec(variables: Mapping[str, Any]) -> ModelSpec:
    """Ask every family whether TF1-named ``variables`` hold its generator.

    Raises:
        CheckpointError: no family recognises them (the message lists the top-level scopes).
    """
    for family in families():
        spec = family.detect(variables)
        if spec is not None:
            return spec
    scopes = sorted({k.split("/")[0] for k in variables})
    known = ", ".join(f.label for f in families())
    raise CheckpointError(
        f"checkpoint holds no generator of a known model ({known}); its top-level scopes:"
        f" {', '.join(scopes) or 'none'}"
    )
