"""One typed, frozen configuration shared by the master and the worker.

Why one object: both processes talk to the same etcd prefix and the same run store, so
the settings they share must be spelled, defaulted and validated once. Each process
reads only the fields it needs; `fields_for("master")` / `fields_for("worker")` say
which flags each command line offers.

Sources, lowest precedence first (each one overrides only what it actually sets):

1. the defaults declared on `Config` (no database configured -> a SQLite file);
2. a JSON file (`--config PATH` or `$SCHEDULER_CONFIG`): our snake_case field names,
   or the seed's camelCase keys (`apiPort`, `etcdDialTimeout` in ms, `dbUri` + `dbName`
   + `dbUsername` + `dbPassword`, ...), matched case-insensitively as Go's encoding/json
   does (so `apiReadTimeOut` works), with `//` line comments allowed outside strings so
   the seed's example files load as printed;
3. environment variables `SCHEDULER_<FIELD_UPPER>` (never `ETCD_*`: etcd reads those);
   `SCHEDULER_TEST_*` and `SCHEDULER_CONFIG` are reserved and ignored here;
4. command-line flags, registered with `default=argparse.SUPPRESS` so that only flags
   actually given override anything.

All of it is driven by one table: the `dataclasses.field` metadata on `Config`
(help, flag, seed keys, check) plus its type hints, compiled into `SETTINGS`.
Relative paths (`webapp_dir`, `spill_dir`, a relative SQLite file) are relative to the
process's working directory, as in the seed.

Errors (every message names the setting and where it came from; the command lines
print `str(error)` and exit 2, never a traceback):

    ConfigError
     ├── ConfigFileError       the file is missing, unreadable, not JSON, not an object
     ├── UnknownKey            a file key / SCHEDULER_* variable / flag name we do not
     │                         know, with the closest known name (difflib)
     ├── DuplicateKey          one setting given twice in one source
     ├── BadValue              wrong type or out of range
     ├── InconsistentValues    valid values that contradict each other
     ├── BadDbUrl              parse_db_url: wrong scheme or shape
     └── BadEndpoint           parse_endpoint: not host:port
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import os
import re
import types
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CONFIG_ENV", "ENV_PREFIX", "SETTINGS", "BadDbUrl", "BadEndpoint", "BadValue",
    "Config", "ConfigError", "ConfigFileError", "DbUrl", "DuplicateKey",
    "InconsistentValues", "Labels", "MysqlUrl", "Setting", "Source", "SqliteUrl",
    "UnknownKey", "add_config_flags", "config_from_cli", "fields_for", "load_config",
    "parse_db_url", "parse_endpoint", "read_config_file", "strip_line_comments",
]

ENV_PREFIX = "SCHEDULER_"
CONFIG_ENV = "SCHEDULER_CONFIG"
# Test fixtures own SCHEDULER_TEST_*; a worker started under pytest must not choke on them.
_IGNORED_ENV_PREFIXES = ("SCHEDULER_TEST_",)
_RESERVED_ENV = frozenset({CONFIG_ENV})

Role = Literal["master", "worker"]
_BOTH: frozenset[str] = frozenset({"master", "worker"})
_MASTER: frozenset[str] = frozenset({"master"})
_WORKER: frozenset[str] = frozenset({"worker"})


# ---------------------------------------------------------------- sources and errors


@dataclass(frozen=True)
class Source:
    """Where one value came from, in the words the user typed it."""

    kind: Literal["default", "file", "env", "flag", "code"]
    key: str  # as written there: "apiPort", "SCHEDULER_API_PORT", "--port", "api_port"
    path: str | None = None  # the file, for kind == "file"

    def __str__(self) -> str:
        match self.kind:
            case "file":
                return f'key "{self.key}" in {self.path}'
            case "env":
                return f"environment variable {self.key}"
            case "flag":
                return f"flag {self.key}"
            case "code":
                return f"Config({self.key}=...)"
            case _:
                return f"the default of {self.key}"


class ConfigError(Exception):
    """Base of all configuration errors; `str(error)` is a complete user-facing sentence."""


class ConfigFileError(ConfigError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"config file {path}: {reason}")


class UnknownKey(ConfigError):
    def __init__(self, source: Source, suggestion: str | None) -> None:
        self.source, self.suggestion = source, suggestion
        hint = f' (did you mean "{suggestion}"?)' if suggestion else ""
        super().__init__(f"unknown setting: {source}{hint}")


class DuplicateKey(ConfigError):
    def __init__(self, field: str, first: Source, second: Source) -> None:
        self.field, self.first, self.second = field, first, second
        where = str(first) if first == second else f"{first} and {second}"
        super().__init__(f"{field} is given twice: {where}; keep one")


class BadValue(ConfigError):
    def __init__(self, field: str, source: Source, reason: str) -> None:
        self.field, self.source, self.reason = field, source, reason
        super().__init__(f"bad value for {field} ({source}): {reason}")


class InconsistentValues(ConfigError):
    def __init__(self, reason: str, sources: Mapping[str, Source]) -> None:
        self.reason, self.sources = reason, dict(sources)
        origins = "; ".join(f"{name} from {src}" for name, src in sources.items())
        super().__init__(f"inconsistent settings: {reason} ({origins})")


class BadDbUrl(ConfigError):
    _SHAPES = ("mysql://user:pass@host:port/dbname, sqlite:///relative/path.db "
               "or sqlite:////absolute/path.db")

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = _redact_url(url), f"{reason}; expected {self._SHAPES}"
        super().__init__(f"bad database URL {self.url!r}: {self.reason}")


class BadEndpoint(ConfigError):
    def __init__(self, text: str) -> None:
        self.text = text
        self.reason = f"{text!r} is not host:port (IPv6 as [addr]:port, port 1..65535)"
        super().__init__(f"bad etcd endpoint: {self.reason}")


class _Reject(Exception):
    """Internal: a value failed conversion or a check; the caller adds field and source."""


# ---------------------------------------------------------------- value types


class Labels(Mapping[str, str]):
    """A worker's labels: an immutable, hashable str -> str mapping (so Config hashes)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"Labels({self._items!r})"


@dataclass(frozen=True)
class MysqlUrl:
    """`mysql://user:pass@host:port/dbname` (or `mariadb://`), user and password
    unquoted; the port defaults to 3306, the password may be absent."""

    host: str
    port: int
    database: str
    user: str
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def url(self) -> str:
        shown = None if self.password is None else urllib.parse.quote(self.password, safe="")
        return self._render(shown)

    def redacted(self) -> str:
        """The URL with the password replaced, for logs and error messages."""
        return self._render(None if self.password is None else "***")

    def _render(self, shown_password: str | None) -> str:
        auth = urllib.parse.quote(self.user, safe="")
        auth += "" if shown_password is None else ":" + shown_password
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{auth}@{host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class SqliteUrl:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`."""

    path: str  # percent-decoded; relative to the working directory unless it starts with "/"

    @property
    def url(self) -> str:
        return "sqlite:///" + urllib.parse.quote(self.path, safe="/:")

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def redacted(self) -> str:
        return self.url


DbUrl = MysqlUrl | SqliteUrl

_DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")


def parse_db_url(url: str) -> DbUrl:
    """Parse a run-store URL; raise BadDbUrl naming what is wrong (password redacted)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise BadDbUrl(url, "no scheme")
    match scheme.lower():  # schemes are case-insensitive (RFC 3986)
        case "mysql" | "mariadb":
            return _parse_mysql_url(url)
        case "sqlite":
            return _parse_sqlite_url(url)
        case _:
            raise BadDbUrl(url, f"unsupported scheme {scheme!r}")


def _parse_mysql_url(url: str) -> MysqlUrl:
    parts = urllib.parse.urlsplit(url)
    if parts.query or parts.fragment:
        raise BadDbUrl(url, "query strings and fragments are not supported")
    try:
        port = parts.port or 3306
    except ValueError:
        raise BadDbUrl(url, "the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise BadDbUrl(url, "no host")
    if not parts.username:
        raise BadDbUrl(url, "no user name")
    database = parts.path.removeprefix("/")
    if not _DB_NAME.match(database):
        raise BadDbUrl(url, f"the database name {database!r} is missing or not [A-Za-z0-9_$-]")
    unquote = urllib.parse.unquote
    return MysqlUrl(
        host=parts.hostname, port=port, database=database, user=unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def _parse_sqlite_url(url: str) -> SqliteUrl:
    if not url.startswith("sqlite:///"):
        raise BadDbUrl(url, "a SQLite URL has no host: three slashes, then the path")
    path = url.removeprefix("sqlite:///")
    if "?" in path or "#" in path:
        raise BadDbUrl(url, "query strings and fragments are not supported")
    path = urllib.parse.unquote(path)  # as the run store does: "my%20runs.db"
    if not path or path.endswith("/"):
        raise BadDbUrl(url, "no file name")
    return SqliteUrl(path)


def _redact_url(url: str) -> str:
    """Hide the password of anything shaped like scheme://user:password@..."""
    return re.sub(r"(://[^/:@]*:).*@", r"\1***@", url)


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


def parse_endpoint(text: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 as `[::1]:2379`, brackets kept); raise BadEndpoint."""
    host, sep, port_text = text.rpartition(":")
    if not (sep and _HOST.match(host) and port_text.isdigit()
            and 1 <= int(port_text) <= 65535):
        raise BadEndpoint(text)
    return host, int(port_text)


# ---------------------------------------------------------------- checks (None = fine)

Check = Callable[[Any], "str | None"]


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port in 0..65535 (0 = any free port)"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be at least 1"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _prefix(value: str) -> str | None:
    if value.startswith("/") and value.endswith("/") and "//" not in value \
            and not any(c.isspace() for c in value):
        return None
    return "must start and end with '/', without '//' or spaces (e.g. /cron/)"


def _endpoints(value: tuple[str, ...]) -> str | None:
    if not value:
        return "needs at least one host:port"
    for text in value:
        try:
            parse_endpoint(text)
        except BadEndpoint as exc:
            return exc.reason
    return None


def _db_url(value: str) -> str | None:
    try:
        parse_db_url(value)
    except BadDbUrl as exc:
        return exc.reason
    return None


# A worker id is the last segment of /cron/workers/<id>: no '/', bounded length.
_WORKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._/-]{0,63}$")


def _worker_id(value: str) -> str | None:
    if _WORKER_ID.match(value):
        return None
    return "must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127} (it is part of etcd keys)"


def _labels(value: Labels) -> str | None:
    for key, label in value.items():
        if not _LABEL_KEY.match(key):
            return f"label key {key!r} must match [A-Za-z0-9][A-Za-z0-9._/-]{{0,62}}"
        if not _LABEL_VALUE.match(label):
            return f"label value {label!r} (of {key!r}) must match [A-Za-z0-9._/-]{{0,63}}"
    return None


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str | None:
    return None if value in _LOG_LEVELS else f"must be one of {', '.join(_LOG_LEVELS)}"


def _token(value: str) -> str | None:
    if value and not any(c.isspace() for c in value):
        return None
    return "must be non-empty, without spaces (unset it to disable auth)"


# ---------------------------------------------------------------- the one table


@dataclass(frozen=True)
class _Meta:
    help: str
    flag: str | None
    seed: tuple[str, ...]
    seed_ms: bool
    check: Check | None
    used_by: frozenset[str]
    metavar: str | None
    secret: bool


_META = "cluster.config"
_NO_LABELS = Labels()


def _setting(default: Any, help: str, *, flag: str | None = None,
             seed: tuple[str, ...] = (), seed_ms: bool = False, check: Check | None = None,
             used_by: frozenset[str] = _BOTH, metavar: str | None = None,
             secret: bool = False) -> Any:
    """Declare one field of Config with everything the file/env/flag parsers need."""
    meta = _Meta(help, flag, seed, seed_ms, check, used_by, metavar, secret)
    return dataclasses.field(default=default, metadata={_META: meta})


@dataclass(frozen=True, repr=False)
class Config:
    """Every setting of the master and the worker; validated on construction.

    Build it with `load_config` / `config_from_cli`; `Config(...)` and
    `dataclasses.replace` also validate (handy in tests). `repr` hides secrets.
    """

    # -- cluster (both)
    etcd_endpoints: tuple[str, ...] = _setting(
        ("127.0.0.1:2379",), "etcd members, comma-separated host:port", flag="--etcd",
        seed=("etcdEndpoints",), check=_endpoints, metavar="HOST:PORT,...")
    etcd_dial_timeout_s: float = _setting(
        5.0, "timeout to connect to etcd, seconds", seed=("etcdDialTimeout",),
        seed_ms=True, check=_positive)
    etcd_request_timeout_s: float = _setting(
        5.0, "timeout of one etcd request, seconds", check=_positive)
    prefix: str = _setting("/cron/", "etcd key prefix of this cluster", check=_prefix,
                           metavar="PREFIX")
    db_url: str = _setting(
        "sqlite:///scheduler-runs.db",
        "run store: mysql://user:pass@host:port/dbname or sqlite:///path.db",
        flag="--db", check=_db_url, metavar="URL", secret=True)
    db_timeout_s: float = _setting(5.0, "timeout of one run-store query, seconds",
                                   check=_positive)
    metrics_port: int | None = _setting(
        None, "Prometheus metrics port (master: also at /metrics); unset = off", check=_port)
    log_level: str = _setting("INFO", "log level", check=_log_level, metavar="LEVEL")
    mailbox_size: int = _setting(1000, "bound of each actor's mailbox", check=_at_least_one)
    # -- master
    api_host: str = _setting("127.0.0.1", "address the HTTP API listens on", flag="--host",
                             check=_non_empty, used_by=_MASTER, metavar="HOST")
    api_port: int = _setting(8070, "HTTP API port (0 = any free port)", flag="--port",
                             seed=("apiPort",), check=_port, used_by=_MASTER)
    api_read_timeout_s: float = _setting(
        5.0, "HTTP read timeout, seconds", seed=("apiReadTimeout",), seed_ms=True,
        check=_positive, used_by=_MASTER)
    api_write_timeout_s: float = _setting(
        5.0, "HTTP write timeout, seconds", seed=("apiWriteTimeout",), seed_ms=True,
        check=_positive, used_by=_MASTER)
    api_token: str | None = _setting(
        None, "bearer token the API requires; unset = no auth (loopback only!)",
        flag="--token", check=_token, used_by=_MASTER, secret=True, metavar="TOKEN")
    webapp_dir: str = _setting("webapp", "directory of the static web UI", flag="--webapp",
                               seed=("webapp",), check=_non_empty, used_by=_MASTER,
                               metavar="DIR")
    log_retention_days: int | None = _setting(
        30, "delete run records older than this many days; unset = keep",
        check=_at_least_one, used_by=_MASTER)
    log_retention_max_per_job: int | None = _setting(
        None, "keep at most this many run records per job; unset = no limit",
        check=_at_least_one, used_by=_MASTER)
    # -- worker
    worker_id: str | None = _setting(
        None, "this worker's unique id; unset = derived from host name and pid",
        flag="--id", check=_worker_id, used_by=_WORKER, metavar="ID")
    labels: Labels = _setting(_NO_LABELS, "labels jobs can select on, k=v,k=v",
                              check=_labels, used_by=_WORKER, metavar="K=V,...")
    capacity: int = _setting(64, "most runs at once on this worker", check=_at_least_one,
                             used_by=_WORKER)
    bash_path: str = _setting("/bin/bash", "shell that runs job commands",
                              seed=("bashPath",), check=_non_empty, used_by=_WORKER,
                              metavar="PATH")
    output_cap_bytes: int = _setting(65536, "bytes of stdout/stderr kept per run",
                                     check=_at_least_one, used_by=_WORKER)
    kill_grace_s: float = _setting(5.0, "SIGTERM to SIGKILL delay on kill/timeout, seconds",
                                   check=_positive, used_by=_WORKER)
    shutdown_grace_s: float = _setting(30.0, "time running jobs get on shutdown, seconds",
                                       check=_positive, used_by=_WORKER)
    session_ttl_s: int = _setting(10, "TTL of the worker's etcd session lease, seconds",
                                  check=_at_least_one, used_by=_WORKER)
    lock_ttl_s: int = _setting(60, "TTL of fire-claim lock keys, seconds (> max skew)",
                               check=_at_least_one, used_by=_WORKER)
    max_clock_skew_s: float = _setting(5.0, "largest clock skew tolerated between workers",
                                       check=_positive, used_by=_WORKER)
    log_chan_len: int = _setting(1000, "bound of the log sink's mailbox",
                                 seed=("logChanLen",), check=_at_least_one, used_by=_WORKER)
    job_log_batch_size: int = _setting(100, "run records per store write",
                                       seed=("jobLogBatchSize",), check=_at_least_one,
                                       used_by=_WORKER)
    job_log_commit_timeout_s: float = _setting(
        1.0, "longest a run record waits for its batch, seconds",
        seed=("jobLogCommitTimeout",), seed_ms=True, check=_positive, used_by=_WORKER)
    sink_memory_records: int = _setting(
        10000, "run records held in memory before spilling to disk",
        check=_at_least_one, used_by=_WORKER)
    spill_dir: str = _setting("scheduler-spill", "where unsaved run records spill",
                              check=_non_empty, used_by=_WORKER, metavar="DIR")
    misfire_grace_s: float = _setting(
        5.0, "a fire later than this is passed over (counted as a misfire), seconds",
        check=_positive, used_by=_WORKER)
    claim_step_s: float = _setting(
        0.05, "backoff per rank before a non-preferred worker claims a fire, seconds",
        check=_positive, used_by=_WORKER)

    def __post_init__(self) -> None:
        # Invariant: labels are a Labels and sequences are tuples, so Config stays frozen.
        for setting in SETTINGS:
            value = _coerce(setting, getattr(self, setting.name))
            object.__setattr__(self, setting.name, value)
        _validate({s.name: (getattr(self, s.name), Source("code", s.name)) for s in SETTINGS})

    @property
    def db(self) -> DbUrl:
        """`db_url`, parsed (always valid: checked on construction)."""
        return parse_db_url(self.db_url)

    @property
    def etcd_hosts(self) -> tuple[tuple[str, int], ...]:
        return tuple(parse_endpoint(e) for e in self.etcd_endpoints)

    def redacted(self) -> dict[str, object]:
        """All settings with secrets hidden: what a process logs at start-up."""
        out: dict[str, object] = {}
        for s in SETTINGS:
            value = getattr(self, s.name)
            if s.name == "db_url":
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
        return _build([_file_layer(data, origin)])


@dataclass(frozen=True)
class Setting:
    """One row of the table, compiled from a Config field and its metadata."""

    name: str
    kind: Literal["str", "int", "float", "bool", "strs", "labels"]
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


_KINDS: dict[object, str] = {str: "str", int: "int", float: "float", bool: "bool",
                             tuple[str, ...]: "strs", Labels: "labels"}
_METAVARS = {"str": "TEXT", "int": "N", "float": "SECONDS", "bool": "BOOL",
             "strs": "A,B,...", "labels": "K=V,..."}


def _compile_settings() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(Config, localns={"Labels": Labels})
    rows = []
    for f in dataclasses.fields(Config):
        meta: _Meta = f.metadata[_META]
        base, optional = _unwrap_optional(hints[f.name])
        kind = _KINDS[base]
        assert not meta.seed_ms or kind == "float", f"{f.name}: ms seed keys need a float"
        rows.append(Setting(
            name=f.name, kind=kind, optional=optional,  # type: ignore[arg-type]
            default=f.default, help=meta.help,
            flag=meta.flag or "--" + f.name.replace("_", "-"),
            env=ENV_PREFIX + f.name.upper(), seed_keys=meta.seed, seed_ms=meta.seed_ms,
            check=meta.check, used_by=meta.used_by,
            metavar=meta.metavar or _METAVARS[kind], secret=meta.secret))
    return tuple(rows)


def _unwrap_optional(hint: object) -> tuple[object, bool]:
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, hint
        return args[0], True
    return hint, False


SETTINGS: tuple[Setting, ...] = _compile_settings()
_BY_NAME = {s.name: s for s in SETTINGS}
_BY_ENV = {s.env: s for s in SETTINGS}
_BY_SEED_KEY = {key.lower(): s for s in SETTINGS for key in s.seed_keys}
# The seed splits its MySQL address over four keys; they combine into db_url.
_DB_PARTS = ("dbUri", "dbName", "dbUsername", "dbPassword")
_DB_PARTS_BY_LOWER = {key.lower(): key for key in _DB_PARTS}
_FILE_KEYS = [s.name for s in SETTINGS] + [k for s in SETTINGS for k in s.seed_keys] \
    + list(_DB_PARTS)


def fields_for(role: Role) -> tuple[str, ...]:
    """Names of the settings a master or a worker uses (and offers as flags)."""
    return tuple(s.name for s in SETTINGS if role in s.used_by)


# ---------------------------------------------------------------- conversions


def _coerce(setting: Setting, value: object) -> object:
    """Friendly forms accepted by Config(...): a list for a tuple, a dict for Labels."""
    if setting.kind == "strs" and isinstance(value, list):
        return tuple(value)
    if setting.kind == "labels" and isinstance(value, Mapping) \
            and not isinstance(value, Labels):
        return Labels(value)
    if setting.kind == "float" and type(value) is int:
        return float(value)
    return value


def _type_reason(setting: Setting, value: object) -> str | None:
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


def _from_json(setting: Setting, raw: object, ms: bool) -> object:
    """A JSON value of the file -> the field's Python value."""
    if raw is None and setting.optional:
        return None
    value: object = raw
    if setting.kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
        value = float(raw) if abs(raw) < 2**1000 else math.inf  # float() would overflow
    elif setting.kind == "strs" and isinstance(raw, list):
        value = tuple(raw)
    elif setting.kind == "labels" and isinstance(raw, dict):
        value = Labels(raw)
    if _type_reason(setting, value):
        unit = " of milliseconds" if ms else ""
        raise _Reject(f"expected {_EXPECTED[setting.kind]}{unit}, got {_json_type(raw)}")
    if ms:
        value = typing.cast(float, value) / 1000
    return value


def _json_type(raw: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(raw), type(raw).__name__)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _from_text(setting: Setting, text: str) -> object:
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
        raise _Reject(f"expected {_TEXT_EXPECTED[setting.kind]}{got}") from None


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


# ---------------------------------------------------------------- sources -> layers

_Layer = dict[str, tuple[object, Source]]


def _put(layer: _Layer, name: str, value: object, source: Source) -> None:
    if name in layer:
        raise DuplicateKey(name, layer[name][1], source)
    layer[name] = (value, source)


def _convert(source: Source, convert: Callable[..., object], setting: Setting,
             *args: Any) -> object:
    """`convert(setting, *args)`, with a rejection turned into BadValue(field, source)."""
    try:
        return convert(setting, *args)
    except _Reject as exc:
        raise BadValue(setting.name, source, str(exc)) from None


def _suggest(key: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if not close:  # case slips ("APIPORT", "Api_Port") deserve a hint too
        lowered = {k.lower(): k for k in known}
        close = [lowered[m] for m in difflib.get_close_matches(key.lower(), list(lowered), n=1)]
    return close[0] if close else None


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
        raise ConfigFileError(where, f"expected a JSON object, got {_json_type(data)}")
    return data


def _file_layer(data: Mapping[str, object], where: str) -> _Layer:
    layer: _Layer = {}
    db_parts: dict[str, tuple[str, object]] = {}
    for key, raw in data.items():
        source = Source("file", key, where)
        if key.lower() in _DB_PARTS_BY_LOWER:
            _put_db_part(db_parts, _DB_PARTS_BY_LOWER[key.lower()], key, raw, where)
            continue
        setting, ms = _file_key(key, source)
        _put(layer, setting.name, _convert(source, _from_json, setting, raw, ms), source)
    if db_parts:  # a duplicate is the clearer error, so check it before the parts
        _put(layer, "db_url", None, Source("file", next(iter(db_parts.values()))[0], where))
        layer["db_url"] = _db_url_from_seed(db_parts, where)
    return layer


def _file_key(key: str, source: Source) -> tuple[Setting, bool]:
    """Our exact snake_case name, else a seed key matched case-insensitively (as Go)."""
    if key in _BY_NAME:
        return _BY_NAME[key], False
    if setting := _BY_SEED_KEY.get(key.lower()):
        return setting, setting.seed_ms
    raise UnknownKey(source, _suggest(key, _FILE_KEYS))


def _put_db_part(parts: dict[str, tuple[str, object]], canonical: str, key: str,
                 raw: object, where: str) -> None:
    if canonical in parts:
        first = Source("file", parts[canonical][0], where)
        raise DuplicateKey("db_url", first, Source("file", key, where))
    if not isinstance(raw, str):
        raise BadValue("db_url", Source("file", key, where),
                       f"expected a string, got {_json_type(raw)}")
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
    _convert(source, _checked, _BY_NAME["db_url"], url)
    return url, source


def _checked(setting: Setting, value: object) -> object:
    if setting.check and (reason := setting.check(value)):
        raise _Reject(reason)
    return value


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or var in _RESERVED_ENV \
                or var.startswith(_IGNORED_ENV_PREFIXES):
            continue
        source = Source("env", var)
        setting = _BY_ENV.get(var)
        if setting is None:
            raise UnknownKey(source, _suggest(var, [*_BY_ENV, CONFIG_ENV]))
        layer[setting.name] = (_convert(source, _from_text, setting, text), source)
    return layer


def _flag_layer(flags: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for name, text in flags.items():
        setting = _BY_NAME.get(name)
        if setting is None:
            raise UnknownKey(Source("flag", name), _suggest(name, _BY_NAME))
        source = Source("flag", setting.flag)
        layer[name] = (_convert(source, _from_text, setting, text), source)
    return layer


# ---------------------------------------------------------------- merge and validate


def _build(layers: Iterable[_Layer]) -> Config:
    merged: _Layer = {s.name: (s.default, Source("default", s.name)) for s in SETTINGS}
    for layer in layers:  # lowest precedence first
        merged.update(layer)
    _validate(merged)
    fields: dict[str, Any] = {name: value for name, (value, _) in merged.items()}
    return Config(**fields)


def _validate(values: _Layer) -> None:
    """Type and range of each value, then the rules that tie fields together."""
    for name, (value, source) in values.items():
        setting = _BY_NAME[name]
        reason = _type_reason(setting, value)
        if reason is None and value is not None and setting.check:
            reason = setting.check(value)
        if reason:
            raise BadValue(name, source, reason)
    _validate_together(values)


def _validate_together(values: _Layer) -> None:
    def get(name: str) -> Any:
        return values[name][0]

    def fail(reason: str, *names: str) -> None:
        raise InconsistentValues(reason, {n: values[n][1] for n in names})

    # A lock must outlive the widest skew, or a late worker could re-claim a fire (§6).
    if get("lock_ttl_s") <= get("max_clock_skew_s"):
        fail(f"lock_ttl_s ({get('lock_ttl_s')}) must exceed max_clock_skew_s "
             f"({get('max_clock_skew_s')})", "lock_ttl_s", "max_clock_skew_s")
    if get("job_log_batch_size") > get("sink_memory_records"):
        fail(f"job_log_batch_size ({get('job_log_batch_size')}) cannot exceed "
             f"sink_memory_records ({get('sink_memory_records')})",
             "job_log_batch_size", "sink_memory_records")


def load_config(*, path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None,
                flags: Mapping[str, str] | None = None) -> Config:
    """defaults < file at `path` < `env` (os.environ if None) < `flags` (field -> text)."""
    layers: list[_Layer] = []
    if path is not None:
        where = os.fspath(path)
        layers.append(_file_layer(read_config_file(where), where))
    layers.append(_env_layer(os.environ if env is None else env))
    layers.append(_flag_layer(flags or {}))
    return _build(layers)


# ---------------------------------------------------------------- command lines


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
        if name not in _BY_NAME:
            raise UnknownKey(Source("code", name), _suggest(name, _BY_NAME))
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", dest="config", metavar="PATH", default=argparse.SUPPRESS,
                       help=f"JSON config file (seed keys and // comments accepted) "
                            f"[env {CONFIG_ENV}]")
    for name in names:
        s = _BY_NAME[name]
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
    flags = {name: given[name] for name in _BY_NAME if name in given}
    return load_config(path=path, env=env, flags=flags)
