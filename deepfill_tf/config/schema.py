"""Strict typed fields for frozen config dataclasses: coercion and one-line errors.

``Section`` is the base of every family's config section (``Family.config_section``); its
``__post_init__`` checks each field against its type hint (``int``, ``float``, ``bool``,
``str``, ``tuple[int, ...]``) and calls ``validate``. ``TrainConfig`` uses the same checks
for the keys every family shares.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from typing import Any

from deepfill_tf.errors import ConfigError

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> evaluated type hint of dataclass ``cls`` (init fields only)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def base_type(hint: Any) -> Any:
    """The non-None type of a hint: ``int`` for ``int | None``; ``tuple`` for tuples."""
    if typing.get_origin(hint) is tuple:
        return tuple
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a field's type hint; return it normalised (float, tuple).

    Raises:
        ConfigError: ``key 'name' must be ...`` (one line).
    """
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if (
            isinstance(value, list | tuple)
            and len(value) == len(args)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return tuple(value)
        raise ConfigError(f"key {name!r} must be a list of {len(args)} integers, got {value!r}")
    if type(None) in args:
        if value is None:
            return None
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
    word = _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))
    raise ConfigError(f"key {name!r} must be {word}, got {type(value).__name__} {value!r}")


def coerce_fields(instance) -> None:
    """Coerce every field of a frozen dataclass instance in place (``__post_init__`` use)."""
    for name, hint in field_types(type(instance)).items():
        object.__setattr__(instance, name, coerce(name, getattr(instance, name), hint))


def suggest(key: str, known) -> str:
    """``"; did you mean 'x'?"`` for the closest known key, or ``""``."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def need(condition: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``condition``."""
    if not condition:
        raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of a family's config section: typed, frozen, validated on construction.

    Subclasses are frozen dataclasses; ``validate(common)`` may check the section against
    the shared keys (``common`` is the ``TrainConfig`` being built, e.g. its ``img_shapes``).
    """

    def __post_init__(self) -> None:
        coerce_fields(self)

    def validate(self, common) -> None:
        """Cross-checks against the shared keys; raise ``ConfigError`` (one line)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists instead of tuples), in field order."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in ((n, getattr(self, n)) for n in field_types(type(self)))
        }
