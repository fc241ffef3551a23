"""Training configuration: one frozen dataclass fed from strict YAML (ours or the original's).

``load_config(path, overrides)`` reads our ``configs/*.yml`` and the original
generative_inpainting ``inpaint.yml`` files (through ``neuralgym_compat``); ``save_config``
writes the resolved config into a run directory.
"""

from deepfill_tf.config.loading import (
    CONFIGS_DIR,
    apply_overrides,
    config_from_dict,
    find_config,
    load_config,
    parse_override,
    read_yaml_mapping,
    save_config,
)
from deepfill_tf.config.train_config import GAN_OF_MODEL, MODELS, PUBLISHED, TrainConfig

__all__ = [
    "CONFIGS_DIR",
    "GAN_OF_MODEL",
    "MODELS",
    "PUBLISHED",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "find_config",
    "load_config",
    "parse_override",
    "read_yaml_mapping",
    "save_config",
]
