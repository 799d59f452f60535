"""`Config`: the settings' fields (`_fields`) with their validation, the values derived
from them, and the ways to load one.

`Config(...)` validates what it is given (errors name `Config(field=...)`);
`load_config` and `Config.from_mapping` merge the sources (`_file`, `_sources`) first,
so that an error names the file key, variable or flag the bad value came from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import Source
from ._fields import ConfigFields
from ._file import file_layer, read_config_file
from ._kinds import coerce
from ._labels import Labels
from ._paths import default_state_dir, installed_webapp_dir
from ._sources import env_layer, flag_layer, merge
from ._table import SETTINGS, Layer, validate
from ._urls import DbUrl, MysqlUrl, SqliteUrl, parse_db_url, parse_endpoint


def load_config(*, path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None,
                flags: Mapping[str, str] | None = None) -> Config:
    """defaults < file at `path` < `env` (os.environ if None) < `flags` (field -> text)."""
    layers: list[Layer] = []
    if path is not None:
        where = os.fspath(path)
        layers.append(file_layer(read_config_file(where), where))
    layers.append(env_layer(os.environ if env is None else env))
    layers.append(flag_layer(flags or {}))
    return Config(**merge(layers))


@dataclass(frozen=True, repr=False)
class Config(ConfigFields):
    """Every setting of the master and the worker; validated on construction.

    Build it with `load_config` / `config_from_cli`; `Config(...)` and
    `dataclasses.replace` also validate (handy in tests). `repr` hides secrets.
    """

    def __post_init__(self) -> None:
        # Invariant: labels are a Labels and sequences are tuples, so Config stays frozen.
        for setting in SETTINGS:
            value = coerce(setting, getattr(self, setting.name))
            object.__setattr__(self, setting.name, value)
        validate({s.name: (getattr(self, s.name), Source("code", s.name)) for s in SETTINGS})

    @property
    def state_path(self) -> Path:
        """`state_dir`, or the user's default state directory (never the working dir)."""
        return Path(self.state_dir) if self.state_dir else default_state_dir()

    @property
    def db(self) -> DbUrl:
        """The run store: `db_url` parsed (checked on construction) with the settings
        applied over it, or SQLite's runs.db in the state directory when no URL is set.

        Over a MySQL URL: `db_password` replaces its password and `db_ca_file` its
        `ssl-ca`; the identity check stays on unless the URL's `ssl-verify-identity` or
        `db_verify_identity` turns it off (both default to on, so off is always asked
        for). File paths are made absolute against the working directory.
        """
        if self.db_url is None:
            return SqliteUrl(str(self.state_path / "runs.db"))
        url = parse_db_url(self.db_url)
        if not isinstance(url, MysqlUrl):
            return url
        ca_file = self.db_ca_file or url.ca_file
        return dataclasses.replace(
            url, password=url.password if self.db_password is None else self.db_password,
            ca_file=_absolute(ca_file), cert_file=_absolute(url.cert_file),
            key_file=_absolute(url.key_file),
            verify_identity=url.verify_identity and self.db_verify_identity)

    @property
    def spill_path(self) -> Path:
        """`spill_dir` made absolute, or spill/ in the state directory."""
        return Path(self.spill_dir).absolute() if self.spill_dir else self.state_path / "spill"

    @property
    def webapp_path(self) -> Path:
        """`webapp_dir` made absolute, or the web UI installed with the package."""
        return Path(self.webapp_dir).absolute() if self.webapp_dir else installed_webapp_dir()

    @property
    def etcd_hosts(self) -> tuple[tuple[str, int], ...]:
        return tuple(parse_endpoint(e) for e in self.etcd_endpoints)

    def redacted(self) -> dict[str, object]:
        """All settings with secrets hidden: what a process logs at start-up."""
        out: dict[str, object] = {}
        for s in SETTINGS:
            value = getattr(self, s.name)
            if s.name == "db_url" and value is not None:
                value = self.db.redacted()
            elif s.secret and value is not None:
                value = "***"
            out[s.name] = dict(value) if isinstance(value, Labels) else value
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.redacted().items())
        return f"Config({body})"

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, origin: str = "<mapping>") -> Config:
        """Build from file-shaped data (snake_case or seed keys) over the defaults."""
        return cls(**merge([file_layer(data, origin)]))


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).absolute())
