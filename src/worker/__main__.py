"""``python -m worker``: run one Scheduler worker until SIGINT/SIGTERM."""

from __future__ import annotations

import functools
import sys

import trio

from cluster.config import Config, ConfigError, config_from_cli
from cluster.etcd import EtcdAccessError
from cluster.etcd_access import check_etcd
from cluster.private_files import (
    CannotMakeDirectory,
    UnsafeDirectory,
    ensure_private_dir,
    restrict_umask,
)
from cluster.startup import parse_process_args, start_logging
from cluster.shard_settings import ShardSettingsError
from cluster.store import StoreTlsError, check_tls_files

from .app import run_worker
from .executor.orphan_access import (
    GatewayRefused,
    PasswordFileError,
    check_gateway,
    write_password_file,
)
from .executor.run_as import JobUsers, RunAsError
from .fd_limit import raise_fd_limit
from .log_sink.spill import SpillError, check_own_files

DESCRIPTION = """\
Run a Scheduler worker: it watches the jobs in etcd, fires each one exactly once per
scheduled time across the fleet, runs it with bash in its own process group, and
records every run in the run store (MySQL, or SQLite when no database is given).

Settings come from defaults, then the JSON file (--config; the seed's worker.json keys
are accepted), then SCHEDULER_* environment variables, then these flags.
SIGTERM/SIGINT: stop firing, let running jobs finish up to --shutdown-grace-s, flush
the run records, leave the cluster; a second signal stops at once.

Files: the state directory (--state-dir; default $XDG_STATE_HOME/scheduler, or
/var/lib/scheduler as root) holds runs.db when no --db is given and spill/, the spill
directory (--spill-dir). Both are created mode 0700 if missing. The worker refuses to
start if the state directory is not owned by its user or others can write it, or if
the spill directory is not owned by its user with mode exactly 0700 (or, with --id,
if its spill file there is a symlink or not its own). Spill files of other worker ids
are replayed only if they are regular files of its user. Everything the worker
creates is private (umask 077); jobs get the umask the worker started with.
It raises its open-file soft limit to what --capacity needs (up to the hard limit).

etcd with TLS and auth: --etcd-ca (TLS on), --etcd-cert/--etcd-key (a client
certificate, with no Common Name when etcd also has auth on), --etcd-user with its
password in SCHEDULER_ETCD_PASSWORD or --etcd-password-file (never as a flag).

Shards (DESIGN §6b): when the cluster's etcd holds shard settings (the master's
--shard-slots), the worker plans only the jobs it serves; its own --shard-slots and
--shard-replicas, if given, must agree with them. On SIGTERM it hands its slots over
first (about a second).

Exit status: 0 after a signal; 2 for a configuration error, an unsafe directory, a
shard setting that contradicts the cluster's, or etcd refusing the
credentials, TLS or prefix at start-up (one line on stderr). An etcd that does not
answer at start-up is waited for.
"""


def prepare_dirs(config: Config) -> None:
    """Create the state and spill directories (0700) or refuse unsafe ones: a spill
    directory another user can write lets them forge the run records we replay."""
    if config.state_dir or config.db_url is None or config.spill_dir is None:
        ensure_private_dir(config.state_path, "state directory")
    ensure_private_dir(config.spill_path, "spill directory", exact=True)
    if config.worker_id:  # a default id is new: no file of its name can be there yet
        check_own_files(config.spill_path, config.worker_id)


def main(argv: list[str] | None = None) -> int:
    args = parse_process_args("worker", DESCRIPTION, argv)
    # Before anything is created (spill files, runs.db and its -wal/-shm): private from
    # their creation. Jobs get the original umask back (worker.executor.spawn).
    restrict_umask()
    try:
        config = config_from_cli(args)
        check_tls_files(config.db)
        users = JobUsers.from_config(config)
        prepare_dirs(config)
        etcd_note = check_etcd_access(config)
    except (ConfigError, StoreTlsError, RunAsError, UnsafeDirectory, CannotMakeDirectory,
            SpillError, EtcdAccessError, GatewayRefused, PasswordFileError,
            ShardSettingsError) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    start_logging("worker", config, args, config.redacted(), etcd_note)
    raise_fd_limit(config)
    trio.run(functools.partial(run_worker, config, users=users))
    return 0


def check_etcd_access(config: Config) -> str | None:
    """Before anything starts (and before logging, so a refusal is the only line):
    the password file for orphan runs, then etcd as the worker and as an orphan would
    reach it. Returns a note when etcd does not answer yet."""
    write_password_file(config)
    # One client: access, then the shard settings (a contradiction: one line).
    note = trio.run(functools.partial(check_etcd, config, shards=True))
    secured = config.etcd_ca_file or config.etcd_cert_file or config.etcd_user
    if note is None and secured:  # where the gateway's rules can differ from gRPC's
        check_gateway(config)
    return note


if __name__ == "__main__":
    sys.exit(main())
