"""Config's fields: every setting with its type, default, help, flag, seed keys and check.

Declared here, apart from what Config does with them, so that the import order has no
circle: the table (`_table.SETTINGS`) is compiled from these fields, the sources
(`_file`, `_sources`) are built on the table, and `Config` (`_config`), which loads
itself from the sources (`from_mapping`), comes last. Each field's
`dataclasses.field` metadata (`_setting`) and its type hint make one table row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import _checks as checks
from ._checks import Check
from ._labels import Labels

_BOTH: frozenset[str] = frozenset({"master", "worker"})
_MASTER: frozenset[str] = frozenset({"master"})
_WORKER: frozenset[str] = frozenset({"worker"})


@dataclass(frozen=True)
class Meta:
    """What a field declares besides its type and default (see `_setting`)."""

    help: str
    flag: str | None
    seed: tuple[str, ...]
    seed_ms: bool
    check: Check | None
    used_by: frozenset[str]
    metavar: str | None
    secret: bool


META = "cluster.config"  # the metadata key of each field
_NO_LABELS = Labels()


def _setting(default: Any, help: str, *, flag: str | None = None,
             seed: tuple[str, ...] = (), seed_ms: bool = False, check: Check | None = None,
             used_by: frozenset[str] = _BOTH, metavar: str | None = None,
             secret: bool = False) -> Any:
    """Declare one field of Config with everything the file/env/flag parsers need."""
    meta = Meta(help, flag, seed, seed_ms, check, used_by, metavar, secret)
    return dataclasses.field(default=default, metadata={META: meta})


@dataclass(frozen=True, repr=False)
class ConfigFields:
    """The fields of `Config` (which adds validation, derived values and loading):
    use Config, never this class."""

    # -- cluster (both)
    etcd_endpoints: tuple[str, ...] = _setting(
        ("127.0.0.1:2379",), "etcd members, comma-separated host:port", flag="--etcd",
        seed=("etcdEndpoints",), check=checks.endpoints, metavar="HOST:PORT,...")
    etcd_dial_timeout_s: float = _setting(
        5.0, "timeout of one attempt to connect to an etcd member (a call moves on to "
        "the next member after it), seconds", seed=("etcdDialTimeout",),
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
        None, "Prometheus metrics port (master: also at /metrics; worker: /metrics and "
        "/healthz on 127.0.0.1); unset = off",
        check=checks.port)
    log_level: str = _setting("INFO", "log level", check=checks.log_level, metavar="LEVEL")
    mailbox_size: int = _setting(1000, "bound of each actor's mailbox",
                                 check=checks.at_least_one)
    shard_slots: int = _setting(
        0, "shards (DESIGN §6b): the slot count S of a sharded cluster; the master "
        "writes it (with --shard-replicas) into etcd if the cluster has none, a worker "
        "refuses to start if it contradicts the cluster's; 0 = no setting of its own "
        "(the master turns nothing on; a worker follows the cluster, whose default is "
        "off: every worker plans every job)", check=checks.shard_slots)
    shard_replicas: int = _setting(
        2, "shards: the workers that serve each slot, R (at least 2: one may die with "
        "no fire late); read only with --shard-slots", check=checks.at_least_one)
    # -- master
    api_host: str = _setting("127.0.0.1", "address the HTTP API listens on", flag="--host",
                             check=checks.non_empty, used_by=_MASTER, metavar="HOST")
    api_port: int = _setting(8070, "HTTP API port (0 = any free port)", flag="--port",
                             seed=("apiPort",), check=checks.port, used_by=_MASTER)
    api_read_timeout_s: float = _setting(
        5.0, "HTTP read timeout, seconds: for a request's head (and an idle connection), "
        "then for its body", seed=("apiReadTimeout",), seed_ms=True,
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
    alerts_file: str | None = _setting(
        None, "JSON file of the alert settings: {repeatS, default: {on, channels}, "
        "channels: {NAME: {...}}}; read at start, its channels put into etcd (replacing "
        "same-named ones); unset = repeat 3600 s, channels from the API only",
        check=checks.non_empty, used_by=_MASTER, metavar="FILE")
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
    max_clock_skew_s: float = _setting(
        1.0, "largest clock skew tolerated, seconds: a worker further than this from the "
        "fleet's median clock claims fires only as a last resort, and the master warns "
        "(log, /healthz, metrics) about a worker this far from its own clock",
        check=checks.positive)
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
        0.2, "claim a scheduled fire of an 'allow' job this long before its time, or "
        "longer while claims and start marks take longer (their recent p95 + 0.1 s, at "
        "most 1 s), with the 'allow' fires due within as long again after (at most 32), or "
        "within 1 s while those are fewer than 8 (claimed together: up to this + 1 s "
        "ahead), or shorter (down to 0.05 s) when this worker claims so many fires that "
        "their held processes would fill half its capacity; the command still starts at "
        "the planned instant, seconds (0: claim at the fire time)",
        check=checks.claim_lead, used_by=_WORKER)
