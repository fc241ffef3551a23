"""Build the right generator for a checkpoint and load its weights, for any family.

A checkpoint is one of:

* a ``deepfill-tf train`` run directory (its latest ``ckpt-N``) or one of its prefixes: the
  run's ``config.yml`` names the family and the generator's options;
* a file in a family's own format (``Family.checkpoint_suffixes``, e.g. Torch7 ``.t7``);
* an original TF1 checkpoint (folder or prefix): every family is asked whether the variables
  hold its generator (``Family.detect``).
"""

from __future__ import annotations

import os

from deepfill_tf.config import load_config
from deepfill_tf.convert.run_checkpoint import (
    read_run_checkpoint,
    resolve_run_checkpoint,
    run_config_path,
)
from deepfill_tf.convert.tf1_checkpoint import load_tf1_checkpoint, read_tf1_checkpoint
from deepfill_tf.errors import CheckpointError
from deepfill_tf.inference.inpainter import Inpainter
from deepfill_tf.registry import ModelSpec, detect_spec, families, get_family


def check_requested_model(spec: ModelSpec, requested: str) -> None:
    """Raise a CheckpointError if ``--model`` names another family than the checkpoint holds."""
    if requested == "auto":
        return
    if get_family(requested).name != spec.family:
        raise CheckpointError(
            f"checkpoint holds a {spec.label} generator, not {requested}"
            f" (leave out --model, or use --model {spec.family})"
        )


def load_generator(checkpoint: str, model: str = "auto"):
    """Read ``checkpoint``, find its family, build the generator, assign every variable strictly.

    Args:
      checkpoint: see the module docstring.
      model: ``"auto"`` or the family the checkpoint must hold.

    Returns:
      (generator, ModelSpec)

    Raises:
      CheckpointError: unreadable checkpoint, no known generator, another family than the
        requested one, or variables missing / unexpected / mis-shaped.
    """
    checkpoint = os.fspath(checkpoint)
    if model != "auto":
        get_family(model)  # an unknown name fails here, naming the known ones
    run_prefix = resolve_run_checkpoint(checkpoint)
    if run_prefix is not None:
        return _load_run_generator(run_prefix, model)
    for family in families():
        if family.checkpoint_suffixes and checkpoint.endswith(family.checkpoint_suffixes):
            generator, spec = family.load_checkpoint(checkpoint)
            check_requested_model(spec, model)
            return generator, spec
    variables = read_tf1_checkpoint(checkpoint)
    spec = detect_spec(variables)
    check_requested_model(spec, model)
    generator = get_family(spec.family).build_generator(spec)
    load_tf1_checkpoint(generator, checkpoint, source=variables)
    return generator, spec


def _load_run_generator(prefix: str, model: str):
    """The generator of one of our training checkpoints (``log_dir/ckpt-N``).

    The run's ``config.yml`` says which generator to build; the variables, stored under their
    TF1 names, are assigned with the same strict check as an original checkpoint (every
    variable found, none left over, same shapes).
    """
    variables = read_run_checkpoint(prefix, parts=("generator",))
    variables.pop("global_step", None)
    config_path = run_config_path(prefix)
    if os.path.isfile(config_path):
        config = load_config(config_path)
        family = get_family(config.model)
        spec = family.spec_from_config(config)
        detected = family.detect(variables)
        if detected is not None and detected != spec:
            raise CheckpointError(
                f"{prefix} holds a {detected.label} generator with {_sizes(detected)}, but"
                f" {config_path} describes a {spec.label} with {_sizes(spec)}"
            )
    else:
        spec = detect_spec(variables)  # a prefix copied without its run directory
    check_requested_model(spec, model)
    generator = get_family(spec.family).build_generator(spec)
    load_tf1_checkpoint(generator, prefix, source=variables)
    return generator, spec


def _sizes(spec: ModelSpec) -> str:
    return ", ".join(f"{k} {v}" for k, v in spec.options.items() if not isinstance(v, bool))


def load_inpainter(checkpoint: str, model: str = "auto", **options):
    """Load ``checkpoint`` (``load_generator``) and return its family's inpainter.

    ``options`` are the family's inference options (e.g. ``original_postprocess=True``).
    The result is called as ``inpainter(image, hole_mask, **extras)`` (see ``Inpainter``).
    """
    generator, spec = load_generator(checkpoint, model)
    family = get_family(spec.family)
    own = family.make_inpainter(generator, spec, **options)
    return own or Inpainter(generator, family=family, spec=spec, **options)
