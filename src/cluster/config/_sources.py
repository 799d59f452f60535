"""The sources of settings, each turned into a layer, and their merge into a Config.

Lowest precedence first, each one overriding only what it actually sets: the
defaults declared on `Config`, a JSON file, `SCHEDULER_<FIELD_UPPER>` environment
variables, command-line flags. A file may use our snake_case names or the seed's
camelCase keys (matched case-insensitively, as Go's encoding/json does); the seed
splits its MySQL address over four keys, which combine into `db_url`.
"""

from __future__ import annotations

import difflib
import os
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import BadValue, DuplicateKey, Reject, Source, UnknownKey
from ._file import read_config_file
from ._secrets import read_secret_files
from ._kinds import Setting, checked, from_json, from_text, json_type
from ._settings import BY_NAME, ENV_PREFIX, SETTINGS, Config, Layer, validate

CONFIG_ENV = "SCHEDULER_CONFIG"
# Test fixtures own SCHEDULER_TEST_*; a worker started under pytest must not choke on them.
_IGNORED_ENV_PREFIXES = ("SCHEDULER_TEST_",)
_RESERVED_ENV = frozenset({CONFIG_ENV})

_BY_ENV = {s.env: s for s in SETTINGS}
_BY_SEED_KEY = {key.lower(): s for s in SETTINGS for key in s.seed_keys}
# The seed splits its MySQL address over four keys; they combine into db_url.
_DB_PARTS = ("dbUri", "dbName", "dbUsername", "dbPassword")
_DB_PARTS_BY_LOWER = {key.lower(): key for key in _DB_PARTS}
_FILE_KEYS = [s.name for s in SETTINGS] + [k for s in SETTINGS for k in s.seed_keys] \
    + list(_DB_PARTS)


def load_config(*, path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None,
                flags: Mapping[str, str] | None = None) -> Config:
    """defaults < file at `path` < `env` (os.environ if None) < `flags` (field -> text)."""
    layers: list[Layer] = []
    if path is not None:
        where = os.fspath(path)
        layers.append(file_layer(read_config_file(where), where))
    layers.append(_env_layer(os.environ if env is None else env))
    layers.append(_flag_layer(flags or {}))
    return build(layers)


def build(layers: Iterable[Layer]) -> Config:
    merged: Layer = {s.name: (s.default, Source("default", s.name)) for s in SETTINGS}
    for layer in layers:  # lowest precedence first
        merged.update(layer)
    read_secret_files(merged)
    validate(merged)
    fields: dict[str, Any] = {name: value for name, (value, _) in merged.items()}
    return Config(**fields)


def suggest(key: str, known: Iterable[str]) -> str | None:
    """The known name closest to a mistyped `key`, for the error's hint."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if not close:  # case slips ("APIPORT", "Api_Port") deserve a hint too
        lowered = {k.lower(): k for k in known}
        close = [lowered[m] for m in difflib.get_close_matches(key.lower(), list(lowered), n=1)]
    return close[0] if close else None


def _put(layer: Layer, name: str, value: object, source: Source) -> None:
    if name in layer:
        raise DuplicateKey(name, layer[name][1], source)
    layer[name] = (value, source)


def _convert(source: Source, convert: Callable[..., object], setting: Setting,
             *args: Any) -> object:
    """`convert(setting, *args)`, with a rejection turned into BadValue(field, source)."""
    try:
        return convert(setting, *args)
    except Reject as exc:
        raise BadValue(setting.name, source, str(exc)) from None


# ---------------------------------------------------------------- the file


def file_layer(data: Mapping[str, object], where: str) -> Layer:
    layer: Layer = {}
    db_parts: dict[str, tuple[str, object]] = {}
    for key, raw in data.items():
        source = Source("file", key, where)
        if key.lower() in _DB_PARTS_BY_LOWER:
            _put_db_part(db_parts, _DB_PARTS_BY_LOWER[key.lower()], key, raw, where)
            continue
        setting, ms = _file_key(key, source)
        _put(layer, setting.name, _convert(source, from_json, setting, raw, ms), source)
    if db_parts:  # a duplicate is the clearer error, so check it before the parts
        _put(layer, "db_url", None, Source("file", next(iter(db_parts.values()))[0], where))
        layer["db_url"] = _db_url_from_seed(db_parts, where)
    return layer


def _file_key(key: str, source: Source) -> tuple[Setting, bool]:
    """Our exact snake_case name, else a seed key matched case-insensitively (as Go)."""
    if key in BY_NAME:
        return BY_NAME[key], False
    if setting := _BY_SEED_KEY.get(key.lower()):
        return setting, setting.seed_ms
    raise UnknownKey(source, suggest(key, _FILE_KEYS))


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
    _convert(source, checked, BY_NAME["db_url"], url)
    return url, source


# ---------------------------------------------------------------- environment and flags


def _env_layer(env: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or var in _RESERVED_ENV \
                or var.startswith(_IGNORED_ENV_PREFIXES):
            continue
        source = Source("env", var)
        setting = _BY_ENV.get(var)
        if setting is None:
            raise UnknownKey(source, suggest(var, [*_BY_ENV, CONFIG_ENV]))
        layer[setting.name] = (_convert(source, from_text, setting, text), source)
    return layer


def _flag_layer(flags: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for name, text in flags.items():
        setting = BY_NAME.get(name)
        if setting is None:
            raise UnknownKey(Source("flag", name), suggest(name, BY_NAME))
        source = Source("flag", setting.flag)
        layer[name] = (_convert(source, from_text, setting, text), source)
    return layer
