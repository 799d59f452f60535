"""The environment and the flags, each turned into a layer, and the merge of layers.

Lowest precedence first, each one overriding only what it actually sets: the
defaults declared on `Config`, a JSON file (`_file`), `SCHEDULER_<FIELD_UPPER>`
environment variables, command-line flags. `merge` gives the values `Config` is
built from, validated together, each error naming the source of the bad value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import Source, UnknownKey
from ._kinds import from_text
from ._secrets import read_secret_files
from ._table import BY_NAME, ENV_PREFIX, SETTINGS, Layer, validate

CONFIG_ENV = "SCHEDULER_CONFIG"
# Test fixtures own SCHEDULER_TEST_*; a worker started under pytest must not choke on them.
_IGNORED_ENV_PREFIXES = ("SCHEDULER_TEST_",)
_RESERVED_ENV = frozenset({CONFIG_ENV})

_BY_ENV = {s.env: s for s in SETTINGS}


def merge(layers: Iterable[Layer]) -> dict[str, Any]:
    """The defaults overridden by each layer in turn (lowest precedence first), secrets
    read from their files, all validated: field name -> value."""
    merged: Layer = {s.name: (s.default, Source("default", s.name)) for s in SETTINGS}
    for layer in layers:
        merged.update(layer)
    read_secret_files(merged)
    validate(merged)
    return {name: value for name, (value, _) in merged.items()}


def env_layer(env: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or var in _RESERVED_ENV \
                or var.startswith(_IGNORED_ENV_PREFIXES):
            continue
        source = Source("env", var)
        setting = _BY_ENV.get(var)
        if setting is None:
            raise UnknownKey(source, [*_BY_ENV, CONFIG_ENV])
        layer[setting.name] = (from_text(setting, text, source), source)
    return layer


def flag_layer(flags: Mapping[str, str]) -> Layer:
    """Flags given, by field name (argparse's dest) -> their text."""
    layer: Layer = {}
    for name, text in flags.items():
        setting = BY_NAME.get(name)
        if setting is None:
            raise UnknownKey(Source("flag", name), BY_NAME)
        source = Source("flag", setting.flag)
        layer[name] = (from_text(setting, text, source), source)
    return layer
