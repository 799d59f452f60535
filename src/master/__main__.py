"""``python -m master``: run the Scheduler master until SIGINT/SIGTERM."""

from __future__ import annotations

import functools
import sys

import trio

from cluster.config import ConfigError, config_from_cli, fields_for
from cluster.etcd import EtcdAccessError
from cluster.etcd_access import check_etcd
from cluster.shard_settings import ShardSettingsError
from cluster.private_files import (
    CannotMakeDirectory,
    UnsafeDirectory,
    ensure_private_dir,
    restrict_umask,
)
from cluster.startup import parse_process_args, start_logging
from cluster.store import StoreTlsError, check_tls_files
from cluster.tokens import TokensFileError

from .alerts import AlertsFileError, load_alerts_file
from .app import run_master
from .auth import ExposureRefused, check_exposure, load_auth
from .server import CannotListen, check_listen

DESCRIPTION = """\
Run the Scheduler master: the JSON REST API under /api/v1 (jobs, runs, workers, cron
preview), the seed-compatible endpoints (/job/save, /job/list, ...), /healthz,
/metrics, /openapi.json and the web UI at /. Jobs live in etcd; run history is read
from the run store (MySQL, or SQLite when no database is given). The master may be
down without stopping any job: workers do not need it.

Every endpoint except /healthz and the UI's files requires
"Authorization: Bearer <token>" once a token is configured: the admin token
(SCHEDULER_API_TOKEN or --token-file; its audit name is "admin") and/or named tokens
with roles read, operate or admin in --tokens-file (lines "name role sha256-hex",
written by "schedctl token add"; read at start, then again within a second of any
change, no restart needed; an invalid edit is ignored with a warning). Without
any token the master listens only on a loopback address. Every change (job put,
delete, pause, resume, run now, kill) is written with an audit entry naming its token:
GET /api/v1/audit. It starts, and serves jobs, while the database is down (run
queries answer 503 until it is back; audit entries wait in etcd).
/healthz tells anyone only "ok" or "unavailable", and a caller with a valid token
which dependency failed.

Against web pages (DNS rebinding, cross-site forms), token or not: a request whose
Host is not a name the master serves (its --host, localhost when on loopback or on
0.0.0.0, the names in --allowed-hosts, the host of --public-url; any port) is refused
with 421, and a write (not GET/HEAD/OPTIONS) that a browser sent from a page of
another origin is refused with 403. Behind a proxy, set --public-url.

Settings come from defaults, then the JSON file (--config; the seed's master.json keys
are accepted), then SCHEDULER_* environment variables, then these flags.
SIGTERM/SIGINT: stop accepting connections, let requests in flight finish, stop;
a second signal stops at once.

Files: with no --db, run history is the SQLite file runs.db in the state directory
(--state-dir; default $XDG_STATE_HOME/scheduler, or /var/lib/scheduler as root),
created mode 0700 if missing; the master refuses to start if it is not owned by its
user or others can write it. Everything it creates is private (umask 077). The web UI
is the one installed with the package, never one found in the working directory.

etcd with TLS and auth: --etcd-ca (TLS on), --etcd-cert/--etcd-key (a client
certificate), --etcd-user with its password in SCHEDULER_ETCD_PASSWORD or
--etcd-password-file (never as a flag).

Alerts: channels and the default policy come from --alerts-file (a JSON file read at
start; its channels are put into etcd) and /api/v1/alert-channels; the master sends
alerts too, so they go out while no worker lives.

Shards (DESIGN §6b): --shard-slots S (with --shard-replicas R, default 2) turns
them on for the cluster, by writing S and R into etcd if it holds none yet; a
cluster's shards never change after (a setting that contradicts them: exit 2).

Exit status: 0 after a signal; 2 for a configuration error, an unsafe
state directory or a bad tokens file, a shard setting that contradicts the
cluster's, or etcd refusing the
credentials, TLS or prefix at start-up, or a bad --alerts-file (one line on stderr; an etcd that does not
answer is waited for); 1 if it cannot listen.
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_process_args("master", DESCRIPTION, argv)
    # Before anything is created: runs.db and its -wal/-shm (job output) must be 0600
    # from their creation; the master starts no other process, so no umask to give back.
    restrict_umask()
    try:
        config = config_from_cli(args)
        check_exposure(config)
        check_tls_files(config.db)
        if config.state_dir or config.db_url is None:
            ensure_private_dir(config.state_path, "state directory")
        load_auth(config)  # a bad tokens file stops us here, in one line
        if config.alerts_file is not None:
            load_alerts_file(config.alerts_file)  # so does a bad alerts file
        # Before logging: a refusal is one line. With --shard-slots, turn shards on
        # (or check them) on the same client.
        etcd_note = trio.run(functools.partial(check_etcd, config,
                                               shards=bool(config.shard_slots),
                                               initialise=True))
    except (ConfigError, ExposureRefused, StoreTlsError, UnsafeDirectory,
            CannotMakeDirectory, TokensFileError, EtcdAccessError, AlertsFileError,
            ShardSettingsError) as exc:
        print(f"master: {exc}", file=sys.stderr)
        return 2
    master_fields = set(fields_for("master"))
    settings = {k: v for k, v in config.redacted().items() if k in master_fields}
    start_logging("master", config, args, settings, etcd_note)
    try:
        check_listen(config.api_host, config.api_port)
        if config.metrics_port is not None:
            check_listen(config.api_host, config.metrics_port)
    except CannotListen as exc:
        print(f"master: {exc}", file=sys.stderr)
        return 1
    trio.run(run_master, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
