"""Translate the original generative_inpainting ``inpaint.yml`` into a ``TrainConfig``.

Two dialects, read unchanged (neuralgym's ``ng.Config`` is plain YAML):

* **v1** (branch v1.0.0, DeepFill v1): UPPER-case keys, ``GAN: 'wgan_gp'``.
* **v2** (branch v2.0.0, DeepFill v2): lower-case keys, ``gan: 'sngan'``, cluster keys such
  as ``num_gpus_per_job``.

The model version follows from the dialect (detected from the keys, see ``detect_dialect``);
the GAN type must be the one that version implements. Every key of the original files is
either translated, checked, or accepted and ignored (tables below); any other key is a
``ConfigError`` naming it. Keys missing from the file take the published value.

Translated with a change of form:

* ``DATASET`` + ``DATA_FLIST`` (v1) / ``dataset`` + ``data_flist`` (v2): ``data_flist`` maps a
  dataset name to ``[train_flist, val_flist]``; the entry ``dataset`` names becomes
  ``train_data`` / ``val_data`` (paths as written: relative to the working directory, as the
  original opens them).
* ``LOG_DIR`` (v1): the original writes to ``model_logs/<date>_<host>_<DATASET>_<MASKED|NORMAL>
  _<GAN>_<LOG_DIR>``; we keep that folder name without the date and host parts, so
  the same file gives the same ``log_dir`` every time. ``log_dir`` (v2) is used as written.
* ``MODEL_RESTORE`` (v1): the original restores the newest checkpoint of
  ``model_logs/<MODEL_RESTORE>``; ``model_restore`` becomes that folder (``''`` stays ``''``).
  ``model_restore`` (v2) is such a folder already.
* ``NUM_GPUS`` / ``num_gpus_per_job``: ``num_gpus`` (information only).
* ``PADDING`` / ``padding``: must be ``'SAME'`` (what both published models use).
* ``GRADIENT_CLIP`` (v1): must be false (clipping is not implemented; published: False).

This module never trains: it only translates. ``TRANSLATOR`` is the entry point that
``deepfill_tf.config.load_config`` finds (group ``deepfill_tf.config_translators``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepfill_tf.config import (
    TrainConfig,
    apply_overrides,
    parse_override,
    string_if_text,
    suggest,
)
from deepfill_tf.config import (
    known_keys as config_keys,
)
from deepfill_tf.errors import ConfigError

# v1 key -> our field, same meaning and type.
V1_FIELDS = {
    "RANDOM_CROP": "random_crop",
    "VAL": "val",
    "GAN": "gan",
    "PRETRAIN_COARSE_NETWORK": "pretrain_coarse_network",
    "GAN_LOSS_ALPHA": "gan_loss_alpha",
    "WGAN_GP_LAMBDA": "wgan_gp_lambda",
    "COARSE_L1_ALPHA": "coarse_l1_alpha",
    "L1_LOSS_ALPHA": "l1_loss_alpha",
    "AE_LOSS_ALPHA": "ae_loss_alpha",
    "GAN_WITH_MASK": "gan_with_mask",
    "DISCOUNTED_MASK": "discounted_mask",
    "SPATIAL_DISCOUNTING_GAMMA": "spatial_discounting_gamma",
    "GLOBAL_WGAN_LOSS_ALPHA": "global_wgan_loss_alpha",
    "AE_LOSS": "ae_loss",
    "NUM_GPUS": "num_gpus",
    "TRAIN_SPE": "train_spe",
    "MAX_ITERS": "max_iters",
    "VIZ_MAX_OUT": "viz_max_out",
    "VAL_PSTEPS": "val_psteps",
    "STATIC_VIEW_SIZE": "static_view_size",
    "IMG_SHAPES": "img_shapes",
    "HEIGHT": "height",
    "WIDTH": "width",
    "MAX_DELTA_HEIGHT": "max_delta_height",
    "MAX_DELTA_WIDTH": "max_delta_width",
    "BATCH_SIZE": "batch_size",
    "VERTICAL_MARGIN": "vertical_margin",
    "HORIZONTAL_MARGIN": "horizontal_margin",
}
# v1 keys translated by code (see the module docstring).
V1_SPECIAL = ("DATASET", "DATA_FLIST", "LOG_DIR", "MODEL_RESTORE", "PADDING", "GRADIENT_CLIP")
# v1 keys accepted and ignored -> why.
V1_IGNORED = {
    "GPU_ID": "device choice of the original run; TensorFlow / CUDA_VISIBLE_DEVICES decide",
    "GRADS_SUMMARY": "gradient histograms in TensorBoard only; no effect on training",
    "GRADIENT_CLIP_VALUE": "only read when GRADIENT_CLIP is true (not supported)",
    "L1_LOSS": "present but unused by the original",
    "RANDOM_SEED": "present but unused by the original",
    "GLOBAL_DCGAN_LOSS_ALPHA": "present but unused by the original (no DCGAN loss)",
    "LOAD_VGG_MODEL": "legacy perceptual-loss key, unused",
    "VGG_MODEL_FILE": "legacy perceptual-loss key, unused",
    "FEATURE_LOSS": "legacy perceptual-loss key, unused",
    "FEATURE_LOSS_ALPHA": "legacy perceptual-loss key, unused",
    "GRAMS_LOSS": "legacy style-loss key, unused",
    "GRAMS_LOSS_ALPHA": "legacy style-loss key, unused",
    "TV_LOSS": "legacy total-variation key, unused",
    "TV_LOSS_ALPHA": "legacy total-variation key, unused",
    "PERCEPTUAL_LOSS": "legacy key of pre-release revisions, unused",
    "PERCEPTUAL_LOSS_ALPHA": "legacy key of pre-release revisions, unused",
}

# v2 key -> our field, same meaning and type.
V2_FIELDS = {
    "num_gpus_per_job": "num_gpus",
    "model_restore": "model_restore",
    "random_crop": "random_crop",
    "val": "val",
    "log_dir": "log_dir",
    "gan": "gan",
    "gan_loss_alpha": "gan_loss_alpha",
    "gan_with_mask": "gan_with_mask",
    "train_spe": "train_spe",
    "max_iters": "max_iters",
    "viz_max_out": "viz_max_out",
    "val_psteps": "val_psteps",
    "static_view_size": "static_view_size",
    "img_shapes": "img_shapes",
    "height": "height",
    "width": "width",
    "max_delta_height": "max_delta_height",
    "max_delta_width": "max_delta_width",
    "batch_size": "batch_size",
    "vertical_margin": "vertical_margin",
    "horizontal_margin": "horizontal_margin",
    "ae_loss": "ae_loss",
    "l1_loss_alpha": "l1_loss_alpha",
    "guided": "guided",
    "edge_threshold": "edge_threshold",
}
V2_SPECIAL = ("dataset", "data_flist", "padding")
V2_IGNORED = {
    "num_cpus_per_job": "data-loading threads of the original; tf.data tunes its own",
    "num_hosts_per_job": "cluster scheduler setting, unused by train.py",
    "memory_per_job": "cluster scheduler setting, unused by train.py",
    "gpu_type": "cluster scheduler setting, unused by train.py",
    "name": "run name for the scheduler, unused by train.py",
    "discounted_mask": "present but unused by the v2 code",
    "random_seed": "present but unused by the v2 code",
    "l1_loss": "present but unused by the v2 code",
}

DIALECTS = {
    "v1": {"model": "deepfill_v1", "fields": V1_FIELDS, "special": V1_SPECIAL},
    "v2": {"model": "deepfill_v2", "fields": V2_FIELDS, "special": V2_SPECIAL},
}
V1_KEYS = frozenset(V1_FIELDS) | frozenset(V1_SPECIAL) | frozenset(V1_IGNORED)
V2_KEYS = frozenset(V2_FIELDS) | frozenset(V2_SPECIAL) | frozenset(V2_IGNORED)
# v2 keys that our own configs never have: their presence marks an original v2 file.
V2_MARKERS = V2_KEYS - frozenset(config_keys())


def known_keys(dialect: str) -> frozenset[str]:
    """Every key the original ``dialect`` ('v1' / 'v2') file may hold."""
    return V1_KEYS if dialect == "v1" else V2_KEYS


def detect_dialect(data: dict[str, Any]) -> str | None:
    """``'v1'`` / ``'v2'`` for an original inpaint.yml mapping, ``None`` for our own format.

    Ours has a ``model`` key. Otherwise any v1 (upper-case) key means v1, and any v2 key that
    our format lacks (``num_gpus_per_job``, ``dataset``, ``data_flist``, ``padding``, ...) v2.
    """
    if "model" in data:
        return None
    if any(key in V1_KEYS for key in data):
        return "v1"
    if any(key in V2_MARKERS for key in data):
        return "v2"
    return None


def translate_inpaint_dict(
    data: dict[str, Any], source: str, overrides: Sequence[str] = ()
) -> TrainConfig:
    """Translate the parsed original mapping ``data`` (read from ``source``) + overrides."""
    dialect = detect_dialect(data)
    if dialect is None:
        raise ConfigError(f"{source}: not an original inpaint.yml")
    known = known_keys(dialect)
    data, ours = _apply_original_overrides(data, overrides, known)
    where = f"{source} (original {dialect} inpaint.yml)"
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}{suggest(key, known)}")
    try:
        config = _translate(data, dialect)
    except ConfigError as e:
        raise ConfigError(f"{where}: {_original_names(str(e), dialect)}") from None
    return apply_overrides(config, ours)


def _apply_original_overrides(
    data: dict[str, Any], overrides: Sequence[str], known: frozenset[str]
) -> tuple[dict[str, Any], list[str]]:
    """Apply the ``--set``s whose key is an original key; return the rest (our names)."""
    data = dict(data)
    ours = []
    for text in overrides:
        key, value, raw = parse_override(text)
        path = key.split(".")
        if path[0] not in known:
            if path[0] not in config_keys() and path[0].upper() in known:
                raise ConfigError(
                    f"--set {text!r}: unknown key {path[0]!r}; this file uses {path[0].upper()!r}"
                )
            ours.append(text)
            continue
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
            node[part] = child = dict(child)
            node = child
        node[path[-1]] = string_if_text(value, raw, isinstance(node.get(path[-1]), str))
    return data, ours


def _translate(data: dict[str, Any], dialect: str) -> TrainConfig:
    spec = DIALECTS[dialect]
    v1 = dialect == "v1"
    get = {k.lower() if v1 else k: v for k, v in data.items()}.get
    ours: dict[str, Any] = {"model": spec["model"]}
    for key, field in spec["fields"].items():
        if key in data:
            ours[field] = data[key]
    padding = get("padding", "SAME")
    if padding != "SAME":
        raise ConfigError(f"key 'padding' must be 'SAME' (the published setting), got {padding!r}")
    if v1 and get("gradient_clip", False) is not False:
        raise ConfigError("key 'gradient_clip' must be False (gradient clipping is not supported)")
    ours["train_data"], ours["val_data"] = _data_flists(get("dataset"), get("data_flist"))
    log_dir = _text("log_dir", get("log_dir"))
    restore = _text("model_restore", get("model_restore"))
    if v1:
        config = TrainConfig(**ours)  # resolves GAN / GAN_WITH_MASK for the folder name
        if log_dir is not None:
            mask_tag = "MASKED" if config.gan_with_mask else "NORMAL"
            parts = [get("dataset"), mask_tag, config.gan, log_dir]
            ours["log_dir"] = "model_logs/" + "_".join(parts)
        if restore:
            ours["model_restore"] = f"model_logs/{restore}"
    return TrainConfig(**ours)


def _text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"key {name!r} must be a string, got {type(value).__name__} {value!r}")
    return value


def _data_flists(dataset: Any, data_flist: Any) -> tuple[str, str]:
    """``data_flist[dataset]`` -> (train flist, val flist or '')."""
    if dataset is None or data_flist is None:
        raise ConfigError("keys 'dataset' and 'data_flist' are required")
    if not isinstance(dataset, str):
        raise ConfigError(f"key 'dataset' must be a string, got {dataset!r}")
    if not isinstance(data_flist, dict):
        raise ConfigError("key 'data_flist' must map dataset names to [train_flist, val_flist]")
    if dataset not in data_flist:
        names = ", ".join(map(str, data_flist)) or "none"
        raise ConfigError(f"dataset {dataset!r} is not in data_flist (it has: {names})")
    entry = data_flist[dataset]
    if (
        not isinstance(entry, list)
        or not 1 <= len(entry) <= 2
        or not all(isinstance(p, str) and p for p in entry)
    ):
        raise ConfigError(
            f"data_flist[{dataset!r}] must be [train_flist, val_flist] (strings), got {entry!r}"
        )
    return entry[0], entry[1] if len(entry) == 2 else ""


def _original_names(message: str, dialect: str) -> str:
    """Rename our field names in an error message back to the file's key names."""
    for key, field in DIALECTS[dialect]["fields"].items():
        message = message.replace(f"key {field!r}", f"key {key!r}")
    if dialect == "v1":
        for key in V1_SPECIAL:
            message = message.replace(f"key {key.lower()!r}", f"key {key!r}")
        message = message.replace(
            "keys 'dataset' and 'data_flist'", "keys 'DATASET' and 'DATA_FLIST'"
        )
        message = message.replace("data_flist[", "DATA_FLIST[").replace(
            "in data_flist", "in DATA_FLIST"
        )
    return message


class _Translator:
    """The ``deepfill_tf.config_translators`` entry point: original ``inpaint.yml`` files."""

    @staticmethod
    def detect(data: dict[str, Any]) -> bool:
        return detect_dialect(data) is not None

    @staticmethod
    def translate(data: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> TrainConfig:
        return translate_inpaint_dict(data, source, overrides)


TRANSLATOR = _Translator()
