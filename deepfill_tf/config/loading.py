"""Strict YAML in, ``TrainConfig`` out; ``--set key=value`` overrides; atomic save.

``load_config`` reads our configs (flat YAML, every key a ``TrainConfig`` field, ``model``
required) and the ORIGINAL ``inpaint.yml`` files of generative_inpainting v1.0.0 (upper-case
keys) and v2.0.0 (lower-case keys), which it hands to ``neuralgym_compat`` for translation.
Every problem is a one-line ``ConfigError`` naming the file (or the ``--set``) and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from deepfill_tf.config.train_config import TrainConfig, field_base_type, field_types
from deepfill_tf.errors import ConfigError

# configs/ at the repository root (present in a clone / editable install).
CONFIGS_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} (lines {seen[key]} and {line})")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a YAML file whose top level is a mapping with string keys (duplicates rejected)."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (SafeLoader subclass)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of key: value")
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{path}: key {key!r} is not a string")
    return data


def suggest(key: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known key, or ``""``."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_override(text: str) -> tuple[str, Any, str]:
    """Split one ``--set key=value`` into ``(key, value, raw_value)``.

    The value is parsed with ``yaml.safe_load`` (``4`` -> int, ``[64,64,3]`` -> list,
    ``true`` -> bool); an empty value is the empty string. ``raw_value`` is the text after
    ``=``, which callers use for string-valued keys (``--set log_dir=2024-01-01``).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value")
    if raw.strip() == "":
        return key, "", raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"--set {text!r}: invalid value: {problem}") from None
    return key, value, raw


def string_if_text(value: Any, raw: str, text_wanted: bool) -> Any:
    """For string-valued keys keep the raw text when YAML made a date/number/bool of it."""
    if text_wanted and value is not None and not isinstance(value, str):
        return raw.strip()
    return value


def apply_overrides_to_dict(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Our config as a dict + ``--set`` overrides (our field names) -> new dict."""
    data = dict(data)
    for text in overrides:
        key, value, raw = parse_override(text)
        if key not in field_types():
            raise ConfigError(f"--set {text!r}: unknown key {key!r}{suggest(key, field_types())}")
        data[key] = string_if_text(value, raw, field_base_type(key) is str)
    return data


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """A ``TrainConfig`` with ``--set`` overrides (our field names) applied and re-validated.

    Model-dependent fields were resolved when ``config`` was made, so ``model`` cannot be
    changed here (change it in the file's dict before construction instead).
    """
    changes = {}
    for text in overrides:
        key, value, raw = parse_override(text)
        if key not in field_types():
            raise ConfigError(f"--set {text!r}: unknown key {key!r}{suggest(key, field_types())}")
        if key == "model" and value != config.model:
            raise ConfigError(
                f"--set {text!r}: the model is fixed by the config file ({config.model})"
            )
        changes[key] = string_if_text(value, raw, field_base_type(key) is str)
    if not changes:
        return config
    try:
        return dataclasses.replace(config, **changes)
    except ConfigError as e:
        raise ConfigError(f"--set: {e}") from None


def config_from_dict(data: dict[str, Any], source: str) -> TrainConfig:
    """Strictly build a ``TrainConfig`` from our flat dict; errors name ``source``."""
    unknown = [k for k in data if k not in field_types()]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{source}: unknown key {key!r}{suggest(key, field_types())}")
    if "model" not in data:
        raise ConfigError(f"{source}: missing key 'model' (deepfill_v1 or deepfill_v2)")
    try:
        return TrainConfig(**data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def find_config(name_or_path: str | os.PathLike) -> pathlib.Path:
    """A config path as given, or a shipped config by bare name (``'deepfill_v2_tiny'``)."""
    path = pathlib.Path(name_or_path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    shipped = CONFIGS_DIR / f"{path.name}.yml"
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in CONFIGS_DIR.glob("*.yml"))
    raise ConfigError(
        f"config file not found: {name_or_path} (shipped configs: {', '.join(names) or 'none'})"
    )


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a training config (ours or an original ``inpaint.yml``) and apply ``--set``s.

    Args:
        path: a YAML file, or the bare name of a shipped config (``configs/<name>.yml``).
        overrides: ``"key=value"`` strings, value parsed as YAML. For our files the keys are
            ``TrainConfig`` fields. For an original ``inpaint.yml`` a key may be one of the
            original's (``MAX_ITERS`` in v1 files, ``max_iters``/``dataset`` in v2 files,
            ``DATA_FLIST.places2`` for a nested entry), applied before translation, or one of
            our fields, applied after it (so ours win).

    Returns:
        The validated, frozen ``TrainConfig``.

    Raises:
        ConfigError: missing/invalid file, unknown key, wrong type or value.
    """
    path = find_config(path)
    data = read_yaml_mapping(path)
    from neuralgym_compat.inpaint_yml import detect_dialect, translate_inpaint_dict

    if detect_dialect(data) is not None:
        return translate_inpaint_dict(data, str(path), overrides)
    source = str(path) + "".join(f" --set {o}" for o in overrides)
    return config_from_dict(apply_overrides_to_dict(data, overrides), source)


def save_config(config: TrainConfig, path: str | os.PathLike) -> pathlib.Path:
    """Write the resolved config as YAML (atomically: temp file + rename); returns the path.

    ``load_config(save_config(c, p)) == c``. Parent folders are created.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Resolved deepfill_tf training config (every field of TrainConfig).\n"
        "# Load it with deepfill_tf.config.load_config or `deepfill-tf train --config`.\n"
        + yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path
