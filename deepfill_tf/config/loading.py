"""Strict YAML in, ``TrainConfig`` out; ``--set key=value`` overrides; atomic save.

``load_config`` reads our configs (``model`` required; the shared keys and the family's
section keys flat, or the section nested under the family's name) and files of other
dialects through *config translators*: packages that declare an entry point in the group
``deepfill_tf.config_translators`` (``neuralgym_compat`` does, for the ORIGINAL
generative_inpainting ``inpaint.yml`` files). Nothing here imports a translator by name, so
the translators sit on top of the package. Every problem is a one-line ``ConfigError``
naming the file (or the ``--set``) and the key.

A translator is an object with ``detect(data: dict) -> bool`` and
``translate(data: dict, source: str, overrides: Sequence[str]) -> TrainConfig``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import yaml

from deepfill_tf.config.schema import base_type, field_types, suggest
from deepfill_tf.config.train_config import TrainConfig, shared_keys, unknown_key_message
from deepfill_tf.errors import ConfigError
from deepfill_tf.fileio import write_atomic
from deepfill_tf.registry import Family, families, get_family

TRANSLATOR_GROUP = "deepfill_tf.config_translators"

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


def known_keys(family: Family | None = None) -> dict[str, Any]:
    """Key -> type hint of every key a config of ``family`` may hold (shared + section);
    without a family, the keys of every registered family."""
    keys = {"model": str, **shared_keys()}
    for f in [family] if family is not None else families():
        if f.config_section is not None:
            keys.update(field_types(f.config_section))
    return keys


def _key_type(text: str, key: str, family: Family) -> Any:
    keys = known_keys(family)
    if key not in keys:
        raise ConfigError(f"--set {text!r}: unknown key {key!r}{suggest(key, keys)}")
    return base_type(keys[key])


def apply_overrides_to_dict(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Our config as a flat dict (with ``model``) + ``--set`` overrides -> new dict."""
    data = dict(data)
    family = _family_of(data, "--set")
    for text in overrides:
        key, value, raw = parse_override(text)
        data[key] = string_if_text(value, raw, _key_type(text, key, family) is str)
    return data


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """A ``TrainConfig`` with ``--set`` overrides applied and re-validated.

    The family's published defaults were resolved when ``config`` was made, so ``model``
    cannot be changed here (change it in the file's dict before construction instead).
    """
    changes = {}
    family = get_family(config.model)
    for text in overrides:
        key, value, raw = parse_override(text)
        kind = _key_type(text, key, family)
        if key == "model" and value != config.model:
            raise ConfigError(
                f"--set {text!r}: the model is fixed by the config file ({config.model})"
            )
        changes[key] = string_if_text(value, raw, kind is str)
    if not changes:
        return config
    try:
        return config.replace(**changes)
    except ConfigError as e:
        raise ConfigError(f"--set: {e}") from None


def _family_of(data: dict[str, Any], source: str) -> Family:
    names = ", ".join(f.name for f in families() if f.trainable)
    if "model" not in data:
        raise ConfigError(f"{source}: missing key 'model' (one of {names})")
    try:
        return get_family(data["model"])
    except ConfigError:
        raise ConfigError(
            f"{source}: key 'model' must be one of {names}, got {data['model']!r}"
        ) from None


def flatten(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Our config dict with the section nested under the family's name -> flat dict."""
    family = _family_of(data, source)
    flat = {}
    for key, value in data.items():
        if key in (family.name, *family.aliases) and isinstance(value, dict):
            for inner, inner_value in value.items():
                if inner in flat:
                    raise ConfigError(f"{source}: key {inner!r} is given twice")
                flat[inner] = inner_value
        elif key in flat:
            raise ConfigError(f"{source}: key {key!r} is given twice")
        else:
            flat[key] = value
    return flat


def config_from_dict(data: dict[str, Any], source: str) -> TrainConfig:
    """Strictly build a ``TrainConfig`` from our dict (flat or nested); errors name ``source``."""
    data = flatten(data, source)
    family = _family_of(data, source)
    keys = known_keys(family)
    unknown = [k for k in data if k not in keys]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{source}: {unknown_key_message(key, family, keys)}")
    try:
        return TrainConfig(**data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


@functools.cache
def translators() -> tuple[Any, ...]:
    """The config translators installed (entry points of ``TRANSLATOR_GROUP``)."""
    found = []
    for entry in importlib.metadata.entry_points(group=TRANSLATOR_GROUP):
        found.append(entry.load())
    return tuple(found)


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
            shared keys or the family's section keys. A translated file (e.g. an original
            ``inpaint.yml``) takes the keys its translator documents.

    Returns:
        The validated, frozen ``TrainConfig``.

    Raises:
        ConfigError: missing/invalid file, unknown key, wrong type or value.
    """
    path = find_config(path)
    data = read_yaml_mapping(path)
    if "model" not in data:
        for translator in translators():
            if translator.detect(data):
                return translator.translate(data, str(path), overrides)
    source = str(path) + "".join(f" --set {o}" for o in overrides)
    data = flatten(data, str(path))
    return config_from_dict(apply_overrides_to_dict(data, overrides), source)


class _ConfigDumper(yaml.SafeDumper):
    """Mappings in block style (one key per line, the section indented under its name),
    lists such as ``img_shapes`` in flow style (``[256, 256, 3]``)."""


_ConfigDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)


def save_config(config: TrainConfig, path: str | os.PathLike) -> pathlib.Path:
    """Write the resolved config as YAML (atomically: temp file + rename); returns the path.

    ``load_config(save_config(c, p)) == c``. Parent folders are created.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Resolved deepfill_tf training config: the shared keys, then the family's section.\n"
        "# Load it with deepfill_tf.config.load_config or `deepfill-tf train --config`.\n"
        + yaml.dump(config.to_dict(), Dumper=_ConfigDumper, sort_keys=False)
    )
    write_atomic(path, text)
    return path
