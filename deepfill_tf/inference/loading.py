"""Build the right generator for a checkpoint and load its weights."""

from __future__ import annotations

from deepfill_tf.convert.detect import ModelSpec, check_requested_model, detect_model
from deepfill_tf.convert.tf1_checkpoint import load_tf1_checkpoint, read_tf1_checkpoint
from deepfill_tf.errors import CheckpointError


def build_generator(spec: ModelSpec):
    """A built (unloaded) generator for ``spec``."""
    if spec.name == "deepfill_v1":
        from deepfill_tf.models.deepfill_generator import DeepFillV1Generator

        return DeepFillV1Generator(cnum=spec.cnum).build_for(64, 64)
    if spec.name == "deepfill_v2":
        from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

        return DeepFillV2Generator(cnum=spec.cnum, guided=spec.guided).build_for(64, 64)
    if spec.name == "scfegan":
        from deepfill_tf.models.sc_fegan import SCFEGANGenerator

        model = SCFEGANGenerator(cnum=spec.cnum)
        model.build((1, 128, 128, 9))
        return model
    raise ValueError(f"unknown model {spec.name}")


def load_generator(checkpoint: str, model: str = "auto"):
    """Read ``checkpoint``, detect the model, build it and assign every variable strictly.

    ``checkpoint`` is an original TF1 checkpoint (directory or prefix), or a ``deepfill-tf
    train`` run directory (its latest checkpoint) or one of its ``ckpt-N`` prefixes.

    Returns:
      (generator, ModelSpec)

    Raises:
      CheckpointError: unreadable checkpoint, no known generator, a model other than the
        requested one, or variables missing / unexpected / mis-shaped.
    """
    from deepfill_tf.training.checkpointing import resolve_run_checkpoint

    run_prefix = resolve_run_checkpoint(checkpoint)
    if run_prefix is not None:
        return _load_run_generator(run_prefix, model)
    variables = read_tf1_checkpoint(checkpoint)
    spec = detect_model(variables)
    check_requested_model(spec, model)
    generator = build_generator(spec)
    load_tf1_checkpoint(generator, checkpoint, source=variables)
    return generator, spec


def _load_run_generator(prefix: str, model: str):
    """The generator of one of our training checkpoints (``log_dir/ckpt-N``).

    The run's ``config.yml`` says which generator to build; the variables, stored under their
    TF1 names, are assigned with the same strict check as an original checkpoint (every
    variable found, none left over, same shapes).
    """
    import os

    from deepfill_tf.training.checkpointing import read_run_checkpoint, run_config_path

    variables = read_run_checkpoint(prefix, parts=("generator",))
    variables.pop("global_step", None)
    detected = detect_model(variables)
    config_path = run_config_path(prefix)
    if os.path.isfile(config_path):
        from deepfill_tf.config import load_config

        config = load_config(config_path)
        spec = ModelSpec(config.model, config.cnum, config.guided)
        if spec != detected:
            raise CheckpointError(
                f"{prefix} holds a {detected.label} generator with cnum {detected.cnum}, but"
                f" {config_path} describes a {spec.label} with cnum {spec.cnum}"
            )
    else:
        spec = detected  # a prefix copied without its run directory
    check_requested_model(spec, model)
    generator = build_generator(spec)
    load_tf1_checkpoint(generator, prefix, source=variables)
    return generator, spec
