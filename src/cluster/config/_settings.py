"""The one table: `Config`, its fields' metadata, and `SETTINGS` compiled from them.

Each field of `Config` declares, in its `dataclasses.field` metadata, its help, flag,
seed keys and check; with the field's type hint that compiles into one `Setting`
row, which drives every source (file, environment, flags) and the validation here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import _checks as checks
from ._checks import Check
from ._errors import BadValue, InconsistentValues, Source
from ._kinds import Setting, coerce, type_reason
from ._labels import Labels
from ._paths import default_state_dir, installed_webapp_dir
from ._urls import DbUrl, MysqlUrl, SqliteUrl, parse_db_url, parse_endpoint

ENV_PREFIX = "SCHEDULER_"

Role = Literal["master", "worker"]
_BOTH: frozenset[str] = frozenset({"master", "worker"})
_MASTER: frozenset[str] = frozenset({"master"})
_WORKER: frozenset[str] = frozenset({"worker"})


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
        seed=("etcdEndpoints",), check=checks.endpoints, metavar="HOST:PORT,...")
    etcd_dial_timeout_s: float = _setting(
        5.0, "timeout to connect to etcd, seconds", seed=("etcdDialTimeout",),
        seed_ms=True, check=checks.positive)
    etcd_request_timeout_s: float = _setting(
        5.0, "timeout of one etcd request, seconds", check=checks.positive)
    prefix: str = _setting("/cron/", "etcd key prefix of this cluster", check=checks.prefix,
                           metavar="PREFIX")
    etcd_ca_file: str | None = _setting(
        None, "CA certificate (PEM) that etcd's server certificate must chain to; "
        "set = TLS to etcd", flag="--etcd-ca", check=checks.non_empty, metavar="PATH")
    etcd_cert_file: str | None = _setting(
        None, "client certificate (PEM) for etcd's --client-cert-auth; with etcd auth "
        "on too, one without a Common Name (etcd's JSON gateway, which a worker's "
        "orphaned runs use, refuses a CN)", flag="--etcd-cert", check=checks.non_empty, metavar="PATH")
    etcd_key_file: str | None = _setting(
        None, "private key (PEM) of --etcd-cert", flag="--etcd-key", check=checks.non_empty,
        metavar="PATH")
    etcd_user: str | None = _setting(
        None, "etcd user (etcd auth enabled); its password from --etcd-password-file or "
        "the environment", check=checks.non_empty, metavar="USER")
    etcd_password: str | None = _setting(
        None, "password of --etcd-user (prefer the environment or --etcd-password-file: "
        "a flag shows in ps)", check=checks.non_empty, secret=True, metavar="PASSWORD")
    etcd_password_file: str | None = _setting(
        None, "file holding the password of --etcd-user", check=checks.non_empty,
        metavar="PATH")
    state_dir: str | None = _setting(
        None, "directory of this process's own files (SQLite run store, spill files); "
        "unset = $XDG_STATE_HOME/scheduler (~/.local/state/scheduler), or "
        "/var/lib/scheduler as root", check=checks.absolute_path, metavar="DIR")
    db_url: str | None = _setting(
        None,
        "run store: mysql://user@host:port/dbname (TLS: ?ssl-ca=PATH, "
        "&ssl-verify-identity=false, &ssl-cert=PATH&ssl-key=PATH) or "
        "sqlite:////absolute/path.db; unset = SQLite file runs.db in the state directory",
        flag="--db", check=checks.db_url, metavar="URL", secret=True)
    db_password: str | None = _setting(
        None, "MySQL password (prefer the environment or --db-password-file: a flag "
        "shows in ps); overrides one in the URL", check=checks.non_empty, secret=True,
        metavar="PASSWORD")
    db_password_file: str | None = _setting(
        None, "file holding the MySQL password", check=checks.non_empty, metavar="PATH")
    db_ca_file: str | None = _setting(
        None, "CA certificate (PEM) the MySQL server's certificate must chain to; "
        "set = TLS to MySQL, verified; overrides the URL's ssl-ca", flag="--db-ca",
        check=checks.non_empty,
        metavar="PATH")
    db_verify_identity: bool = _setting(
        True, "with TLS to MySQL, also check that its certificate names the host; "
        "false here or in the URL (ssl-verify-identity=false) turns the check off",
        metavar="BOOL")
    db_timeout_s: float = _setting(5.0, "timeout of one run-store query, seconds",
                                   check=checks.positive)
    metrics_port: int | None = _setting(
        None, "Prometheus metrics port (master: also at /metrics); unset = off",
        check=checks.port)
    log_level: str = _setting("INFO", "log level", check=checks.log_level, metavar="LEVEL")
    mailbox_size: int = _setting(1000, "bound of each actor's mailbox",
                                 check=checks.at_least_one)
    # -- master
    api_host: str = _setting("127.0.0.1", "address the HTTP API listens on", flag="--host",
                             check=checks.non_empty, used_by=_MASTER, metavar="HOST")
    api_port: int = _setting(8070, "HTTP API port (0 = any free port)", flag="--port",
                             seed=("apiPort",), check=checks.port, used_by=_MASTER)
    api_read_timeout_s: float = _setting(
        5.0, "HTTP read timeout, seconds", seed=("apiReadTimeout",), seed_ms=True,
        check=checks.positive, used_by=_MASTER)
    api_write_timeout_s: float = _setting(
        5.0, "HTTP write timeout, seconds", seed=("apiWriteTimeout",), seed_ms=True,
        check=checks.positive, used_by=_MASTER)
    api_token: str | None = _setting(
        None, "bearer token the API requires, role admin (prefer the environment or "
        "--token-file: a flag shows in ps); unset = no auth (loopback only!)",
        flag="--token", check=checks.token, used_by=_MASTER, secret=True, metavar="TOKEN")
    api_token_file: str | None = _setting(
        None, "file holding the admin bearer token", flag="--token-file",
        check=checks.non_empty, used_by=_MASTER, metavar="PATH")
    tokens_file: str | None = _setting(
        None, "named tokens with roles, one 'name role sha256-hash' per line "
        "(schedctl token add)", check=checks.non_empty, used_by=_MASTER, metavar="PATH")
    allowed_hosts: tuple[str, ...] = _setting(
        (), "extra Host names the API answers to, besides its bind address, localhost "
        "and --public-url's host ('.example.com': it and every subdomain; any port; "
        "DNS-rebinding guard)", check=checks.host_names,
        used_by=_MASTER, metavar="HOST,...")
    public_url: str | None = _setting(
        None, "the URL browsers reach the master at (behind a proxy): its origin is the "
        "one state-changing requests may come from", check=checks.public_url,
        used_by=_MASTER, metavar="URL")
    webapp_dir: str | None = _setting(
        None, "directory of the static web UI; unset = the one installed with the "
        "package", flag="--webapp", seed=("webapp",), check=checks.non_empty,
        used_by=_MASTER, metavar="DIR")
    log_retention_days: int | None = _setting(
        30, "delete run records older than this many days; unset = keep",
        check=checks.at_least_one, used_by=_MASTER)
    log_retention_max_per_job: int | None = _setting(
        None, "keep at most this many run records per job; unset = no limit",
        check=checks.at_least_one, used_by=_MASTER)
    # -- worker
    worker_id: str | None = _setting(
        None, "this worker's unique id; unset = derived from host name and pid",
        flag="--id", check=checks.worker_id, used_by=_WORKER, metavar="ID")
    labels: Labels = _setting(_NO_LABELS, "labels jobs can select on, k=v,k=v",
                              check=checks.labels, used_by=_WORKER, metavar="K=V,...")
    capacity: int = _setting(64, "most runs at once on this worker",
                             check=checks.at_least_one, used_by=_WORKER)
    bash_path: str = _setting("/bin/bash", "shell that runs job commands",
                              seed=("bashPath",), check=checks.non_empty, used_by=_WORKER,
                              metavar="PATH")
    output_cap_bytes: int = _setting(65536, "bytes of stdout/stderr kept per run",
                                     check=checks.at_least_one, used_by=_WORKER)
    kill_grace_s: float = _setting(5.0, "SIGTERM to SIGKILL delay on kill/timeout, seconds",
                                   check=checks.positive, used_by=_WORKER)
    shutdown_grace_s: float = _setting(30.0, "time running jobs get on shutdown, seconds",
                                       check=checks.positive, used_by=_WORKER)
    session_ttl_s: int = _setting(10, "TTL of the worker's etcd session lease, seconds",
                                  check=checks.at_least_one, used_by=_WORKER)
    lock_ttl_s: int = _setting(60, "TTL of fire-claim lock keys, seconds (> max skew)",
                               check=checks.at_least_one, used_by=_WORKER)
    max_clock_skew_s: float = _setting(5.0, "largest clock skew tolerated between workers",
                                       check=checks.positive, used_by=_WORKER)
    log_chan_len: int = _setting(1000, "bound of the log sink's mailbox",
                                 seed=("logChanLen",), check=checks.at_least_one,
                                 used_by=_WORKER)
    job_log_batch_size: int = _setting(100, "run records per store write",
                                       seed=("jobLogBatchSize",), check=checks.at_least_one,
                                       used_by=_WORKER)
    job_log_commit_timeout_s: float = _setting(
        1.0, "longest a run record waits for its batch, seconds",
        seed=("jobLogCommitTimeout",), seed_ms=True, check=checks.positive, used_by=_WORKER)
    sink_memory_records: int = _setting(
        10000, "run records held in memory before spilling to disk",
        check=checks.at_least_one, used_by=_WORKER)
    spill_dir: str | None = _setting(
        None, "where unsaved run records spill (owned by the worker's user, mode 0700); "
        "unset = spill/ in the state directory", check=checks.non_empty,
        used_by=_WORKER, metavar="DIR")
    run_as: str | None = _setting(
        None, "run every job as this user (the worker must be root); unset = the "
        "worker's own user", check=checks.user_name, used_by=_WORKER, metavar="USER")
    allowed_users: tuple[str, ...] = _setting(
        (), "users a job's 'user' field may name (needs root); unset = no job may "
        "choose its user", check=checks.user_names, used_by=_WORKER, metavar="USER,...")
    metrics_max_connections: int = _setting(
        32, "most open connections to the worker's metrics port; more wait",
        check=checks.at_least_one, used_by=_WORKER)
    misfire_grace_s: float = _setting(
        5.0, "a fire later than this is passed over (counted as a misfire), seconds",
        check=checks.positive, used_by=_WORKER)
    claim_step_s: float = _setting(
        0.05, "backoff per rank before a non-preferred worker claims a fire, seconds",
        check=checks.positive, used_by=_WORKER)
    claim_lead_s: float = _setting(
        0.2, "claim a scheduled fire of an 'allow' job this long before its time; the "
        "command still starts at the planned instant, seconds (0: claim at the fire time)",
        check=checks.claim_lead, used_by=_WORKER)

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
        from ._sources import build, file_layer  # _sources builds on this module's table

        return build([file_layer(data, origin)])


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


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).absolute())


SETTINGS: tuple[Setting, ...] = _compile_settings()
BY_NAME = {s.name: s for s in SETTINGS}

# Values by field name, each with where it came from: one source, or all of them merged.
Layer = dict[str, tuple[object, Source]]


def validate(values: Layer) -> None:
    """Type and range of each value, then the rules that tie fields together."""
    for name, (value, source) in values.items():
        setting = BY_NAME[name]
        reason = type_reason(setting, value)
        if reason is None and value is not None and setting.check:
            reason = setting.check(value)
        if reason:
            raise BadValue(name, source, reason)
    _validate_together(values)


def _validate_together(values: Layer) -> None:
    def get(name: str) -> Any:
        return values[name][0]

    def fail(reason: str, *names: str) -> None:
        raise InconsistentValues(reason, {n: values[n][1] for n in names})

    # A lock must outlive the widest skew, or a late worker could re-claim a fire (§6).
    if get("lock_ttl_s") <= get("max_clock_skew_s"):
        fail(f"lock_ttl_s ({get('lock_ttl_s')}) must exceed max_clock_skew_s "
             f"({get('max_clock_skew_s')})", "lock_ttl_s", "max_clock_skew_s")
    # TLS settings for MySQL over another store would be ignored without a word.
    url = None if get("db_url") is None else parse_db_url(get("db_url"))
    if get("db_ca_file") is not None and not isinstance(url, MysqlUrl):
        fail("db_ca_file is set but the run store is not MySQL (db_url)",
             "db_ca_file", "db_url")
    if isinstance(url, MysqlUrl) and url.cert_file and not (url.ca_file
                                                            or get("db_ca_file")):
        fail("db_url's ssl-cert needs a CA to verify the server with (ssl-ca or "
             "db_ca_file): a client certificate goes only to a verified server",
             "db_url", "db_ca_file")
    # etcd's client certificate is a pair; its user needs a password (one without a
    # user is not used).
    if (get("etcd_cert_file") is None) != (get("etcd_key_file") is None):
        fail("etcd_cert_file and etcd_key_file go together: set both or neither",
             "etcd_cert_file", "etcd_key_file")
    if get("etcd_user") is not None and get("etcd_password") is None:
        fail("etcd_user needs its password (SCHEDULER_ETCD_PASSWORD or "
             "etcd_password_file)", "etcd_user", "etcd_password")
    if get("job_log_batch_size") > get("sink_memory_records"):
        fail(f"job_log_batch_size ({get('job_log_batch_size')}) cannot exceed "
             f"sink_memory_records ({get('sink_memory_records')})",
             "job_log_batch_size", "sink_memory_records")
