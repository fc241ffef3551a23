"""Training configuration: strict YAML into frozen dataclasses (shared keys + the family's
section), ``--set key=value`` overrides, the resolved config saved in the run directory.

``load_config(path, overrides)`` reads our ``configs/*.yml`` and, through installed config
translators (``neuralgym_compat`` for the original ``inpaint.yml``), other dialects;
``save_config`` writes the resolved config into a run directory.
"""

from deepfill_tf.config.loading import (
    CONFIGS_DIR,
    apply_overrides,
    config_from_dict,
    find_config,
    known_keys,
    load_config,
    parse_override,
    read_yaml_mapping,
    save_config,
    string_if_text,
)
from deepfill_tf.config.schema import Section, suggest
from deepfill_tf.config.train_config import TrainConfig

__all__ = [
    "CONFIGS_DIR",
    "Section",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "find_config",
    "known_keys",
    "load_config",
    "parse_override",
    "read_yaml_mapping",
    "save_config",
    "string_if_text",
    "suggest",
]
