"""The JSON config file, as we write it and as the seed does, turned into a layer.

The seed's example files carry `//` comments, so they are blanked out (outside JSON
strings, keeping every line and column so parse errors point at the right place).
A key given twice is refused rather than silently keeping the last one. Keys are our
snake_case names or the seed's camelCase keys, matched case-insensitively as Go's
encoding/json does (`apiReadTimeOut` works); seed keys of durations count
milliseconds; the seed splits its MySQL address over four keys, which combine into
`db_url`.
"""

from __future__ import annotations

import json
import os
import re
import typing
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from ._errors import BadValue, ConfigFileError, DuplicateKey, Source, UnknownKey
from ._kinds import Setting, checked, from_json, json_type
from ._table import BY_NAME, SETTINGS, Layer

_BY_SEED_KEY = {key.lower(): s for s in SETTINGS for key in s.seed_keys}
# The seed splits its MySQL address over four keys; they combine into db_url.
_DB_PARTS = ("dbUri", "dbName", "dbUsername", "dbPassword")
_DB_PARTS_BY_LOWER = {key.lower(): key for key in _DB_PARTS}
_FILE_KEYS = [s.name for s in SETTINGS] + [k for s in SETTINGS for k in s.seed_keys] \
    + list(_DB_PARTS)

_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*')


def strip_line_comments(text: str) -> str:
    """Blank out `//` comments outside JSON strings, keeping every line and column."""
    return _STRING_OR_COMMENT.sub(
        lambda m: m[0] if m[0].startswith('"') else " " * len(m[0]), text)


class _DuplicateJsonKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateJsonKey(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def read_config_file(path: str | os.PathLike[str]) -> dict[str, object]:
    """The top-level object of a JSON config file (seed `//` comments allowed)."""
    where = os.fspath(path)
    try:
        text = Path(where).read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, NUL in the path
        raise ConfigFileError(where, f"cannot read it: {exc}") from None
    try:
        data = json.loads(strip_line_comments(text), object_pairs_hook=_no_duplicates,
                          parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(where, f"line {exc.lineno} column {exc.colno}: {exc.msg}") \
            from None
    except _DuplicateJsonKey as exc:
        key = str(exc.args[0])
        source = Source("file", key, where)
        raise DuplicateKey(key, source, source) from None
    except ValueError as exc:
        raise ConfigFileError(where, str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigFileError(where, f"expected a JSON object, got {json_type(data)}")
    return data


def file_layer(data: Mapping[str, object], where: str) -> Layer:
    """The settings of a file's top-level object (`where` names it in errors)."""
    layer: Layer = {}
    db_parts: dict[str, tuple[str, object]] = {}
    for key, raw in data.items():
        source = Source("file", key, where)
        if key.lower() in _DB_PARTS_BY_LOWER:
            _put_db_part(db_parts, _DB_PARTS_BY_LOWER[key.lower()], key, raw, where)
            continue
        setting, ms = _file_key(key, source)
        _put(layer, setting.name, from_json(setting, raw, source, ms), source)
    if db_parts:  # a duplicate is the clearer error, so check it before the parts
        _put(layer, "db_url", None, Source("file", next(iter(db_parts.values()))[0], where))
        layer["db_url"] = _db_url_from_seed(db_parts, where)
    return layer


def _put(layer: Layer, name: str, value: object, source: Source) -> None:
    if name in layer:
        raise DuplicateKey(name, layer[name][1], source)
    layer[name] = (value, source)


def _file_key(key: str, source: Source) -> tuple[Setting, bool]:
    """Our exact snake_case name, else a seed key matched case-insensitively (as Go)."""
    if key in BY_NAME:
        return BY_NAME[key], False
    if setting := _BY_SEED_KEY.get(key.lower()):
        return setting, setting.seed_ms
    raise UnknownKey(source, _FILE_KEYS)


def _put_db_part(parts: dict[str, tuple[str, object]], canonical: str, key: str,
                 raw: object, where: str) -> None:
    if canonical in parts:
        first = Source("file", parts[canonical][0], where)
        raise DuplicateKey("db_url", first, Source("file", key, where))
    if not isinstance(raw, str):
        raise BadValue("db_url", Source("file", key, where),
                       f"expected a string, got {json_type(raw)}")
    parts[canonical] = (key, raw)


def _db_url_from_seed(parts: dict[str, tuple[str, object]], where: str
                      ) -> tuple[str, Source]:
    """dbUri ("host:port") + dbName + dbUsername [+ dbPassword] -> a mysql:// URL."""
    def text(name: str) -> str | None:
        return typing.cast("str | None", parts[name][1]) if name in parts else None

    key_of = {name: parts[name][0] for name in parts}
    source = Source("file", key_of.get("dbUri", next(iter(key_of.values()))), where)
    address, database, user = text("dbUri"), text("dbName"), text("dbUsername")
    if not (address and database and user):
        raise BadValue("db_url", source, "the seed's database keys need dbUri "
                       "(host:port), dbName and dbUsername")
    password = text("dbPassword")
    quote = urllib.parse.quote
    auth = quote(user, safe="") + ("" if password is None else ":" + quote(password, safe=""))
    url = f"mysql://{auth}@{address}/{database}"
    checked(BY_NAME["db_url"], url, source)
    return url, source
