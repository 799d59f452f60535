"""`Setting`, one row of the table, and turning what a source gives into its value.

A setting has one of six kinds (str, int, float, bool, strs, labels), maybe optional.
The same kind rules every source: JSON values of a file (`from_json`), text of the
environment and of flags (`from_text`), and Python values given to `Config(...)`
(`coerce`, then `type_reason`). A value that will not convert is a BadValue naming
the setting and the source it came from.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._checks import Check
from ._errors import BadValue, Source
from ._labels import Labels

Kind = Literal["str", "int", "float", "bool", "strs", "labels"]


@dataclass(frozen=True)
class Setting:
    """One row of the table, compiled from a Config field and its metadata."""

    name: str
    kind: Kind
    optional: bool
    default: object
    help: str
    flag: str
    env: str
    seed_keys: tuple[str, ...]
    seed_ms: bool
    check: Check | None
    used_by: frozenset[str]
    metavar: str
    secret: bool


def coerce(setting: Setting, value: object) -> object:
    """Friendly forms accepted by Config(...): a list for a tuple, a dict for Labels."""
    if setting.kind == "strs" and isinstance(value, list):
        return tuple(value)
    if setting.kind == "labels" and isinstance(value, Mapping) \
            and not isinstance(value, Labels):
        return Labels(value)
    if setting.kind == "float" and type(value) is int:
        return float(value)
    return value


def type_reason(setting: Setting, value: object) -> str | None:
    """Why `value` is not of the setting's Python type (None if it is)."""
    if value is None:
        return None if setting.optional else "must be set (null/empty is not allowed)"
    if _IS_KIND[setting.kind](value):
        return None
    return f"expected {_EXPECTED[setting.kind]}, got {type(value).__name__}"


_IS_KIND: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, float) and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "strs": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
    "labels": lambda v: isinstance(v, Labels)
    and all(isinstance(x, str) for x in (*v.keys(), *v.values())),
}


_EXPECTED = {"str": "a string", "int": "an integer", "float": "a finite number",
             "bool": "true or false", "strs": "a list of strings",
             "labels": "an object of string values"}


def from_json(setting: Setting, raw: object, source: Source, ms: bool = False) -> object:
    """A JSON value of the file -> the field's Python value (`ms`: a seed key that
    counts milliseconds, for a field in seconds)."""
    if raw is None and setting.optional:
        return None
    value: object = raw
    if setting.kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
        value = float(raw) if abs(raw) < 2**1000 else math.inf  # float() would overflow
    elif setting.kind == "strs" and isinstance(raw, list):
        value = tuple(raw)
    elif setting.kind == "labels" and isinstance(raw, dict):
        value = Labels(raw)
    if type_reason(setting, value):
        unit = " of milliseconds" if ms else ""
        raise BadValue(setting.name, source,
                       f"expected {_EXPECTED[setting.kind]}{unit}, got {json_type(raw)}")
    if ms:
        value = typing.cast(float, value) / 1000
    return value


def json_type(raw: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(raw), type(raw).__name__)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def from_text(setting: Setting, text: str, source: Source) -> object:
    """An environment or flag string -> the field's Python value."""
    stripped = text.strip()
    if setting.optional and not stripped:
        return None
    try:
        match setting.kind:
            case "str":
                return text
            case "int":
                return int(stripped)
            case "float":
                value = float(stripped)
                if not math.isfinite(value):
                    raise ValueError
                return value
            case "bool":
                if stripped.lower() in _TRUE | _FALSE:
                    return stripped.lower() in _TRUE
                raise ValueError
            case "strs":
                return tuple(p.strip() for p in text.split(",") if p.strip())
            case _:
                return _labels_from_text(text)
    except ValueError:
        got = "" if setting.secret else f", got {text!r}"
        raise BadValue(setting.name, source,
                       f"expected {_TEXT_EXPECTED[setting.kind]}{got}") from None


_TEXT_EXPECTED = {"int": "an integer", "float": "a finite number",
                  "bool": "one of true/false/yes/no/on/off/1/0",
                  "labels": "k=v pairs separated by commas"}


def _labels_from_text(text: str) -> Labels:
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() in pairs:
            raise ValueError
        pairs[key.strip()] = value.strip()
    return Labels(pairs)


def checked(setting: Setting, value: object, source: Source) -> object:
    """`value` if it passes the setting's range check; else BadValue with the reason."""
    if setting.check and (reason := setting.check(value)):
        raise BadValue(setting.name, source, reason)
    return value
