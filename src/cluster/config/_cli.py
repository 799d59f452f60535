"""Command lines: one flag per setting, and the Config they and the other sources give.

Flags are registered with `default=argparse.SUPPRESS`, so that only flags actually
given override anything; `fields_for(role)` says which flags each command offers.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping

from ._config import Config, load_config
from ._errors import Source, UnknownKey
from ._kinds import Setting
from ._labels import Labels
from ._secrets import secrets_in_flags
from ._sources import CONFIG_ENV
from ._table import BY_NAME, SETTINGS, Role


def fields_for(role: Role) -> tuple[str, ...]:
    """Names of the settings a master or a worker uses (and offers as flags)."""
    return tuple(s.name for s in SETTINGS if role in s.used_by)


def _default_text(setting: Setting) -> str:
    value = setting.default
    if value is None or (isinstance(value, Labels) and not value):
        return "unset"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _flag_help(setting: Setting) -> str:
    text = f"{setting.help} [default: {_default_text(setting)}; env {setting.env}]"
    return text.replace("%", "%%")  # argparse formats help with %


def add_config_flags(parser: argparse.ArgumentParser,
                     fields: Iterable[str] | None = None) -> None:
    """Register --config and one flag per setting in `fields` (all if None).

    Flags default to argparse.SUPPRESS: an absent flag leaves no attribute, so
    config_from_cli overrides exactly the settings given on the command line.
    """
    names = [s.name for s in SETTINGS] if fields is None else list(fields)
    for name in names:
        if name not in BY_NAME:
            raise UnknownKey(Source("code", name), BY_NAME)
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", dest="config", metavar="PATH", default=argparse.SUPPRESS,
                       help=f"JSON config file (seed keys and // comments accepted) "
                            f"[env {CONFIG_ENV}]")
    for name in names:
        s = BY_NAME[name]
        group.add_argument(s.flag, dest=s.name, metavar=s.metavar,
                           default=argparse.SUPPRESS, help=_flag_help(s))


def config_from_cli(args: argparse.Namespace, *,
                    config_path: str | os.PathLike[str] | None = None,
                    env: Mapping[str, str] | None = None) -> Config:
    """The Config for parsed `args`: the file is --config, else $SCHEDULER_CONFIG,
    else `config_path` (None = no file); flags given override env, env the file."""
    env = os.environ if env is None else env
    given = vars(args)
    path = given.get("config") or env.get(CONFIG_ENV) or config_path
    flags = {name: given[name] for name in BY_NAME if name in given}
    return load_config(path=path, env=env, flags=flags)


def secret_flag_warnings(args: argparse.Namespace) -> list[str]:
    """One warning per secret given on the command line, where `ps` shows it."""
    given = vars(args)
    return secrets_in_flags({n: given[n] for n in BY_NAME if n in given})
