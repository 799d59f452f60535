"""``python -m worker``: run one Scheduler worker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from cluster.config import (
    Config,
    ConfigError,
    add_config_flags,
    config_from_cli,
    fields_for,
    secret_flag_warnings,
)
from cluster.etcd import EtcdAccessError
from cluster.etcd_access import check_etcd

from .app import run_worker
from .orphan_access import GatewayRefused, PasswordFileError, check_gateway, write_password_file

DESCRIPTION = """\
Run a Scheduler worker: it watches the jobs in etcd, fires each one exactly once per
scheduled time across the fleet, runs it with bash in its own process group, and
records every run in the run store (MySQL, or SQLite when no database is given).

Settings come from defaults, then the JSON file (--config; the seed's worker.json keys
are accepted), then SCHEDULER_* environment variables, then these flags.
SIGTERM/SIGINT: stop firing, let running jobs finish up to --shutdown-grace-s, flush
the run records, leave the cluster; a second signal stops at once.

etcd with TLS and auth: --etcd-ca (TLS on), --etcd-cert/--etcd-key (a client
certificate, with no Common Name when etcd also has auth on), --etcd-user with its
password in SCHEDULER_ETCD_PASSWORD or --etcd-password-file (never as a flag).

Exit status: 0 after a signal; 2 for a configuration error, or etcd refusing the
credentials, TLS or prefix at start-up (one line on stderr). An etcd that does not
answer at start-up is waited for.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m worker", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(parser, fields_for("worker"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_cli(args)
        etcd_note = check_etcd_access(config)
    except (ConfigError, EtcdAccessError, GatewayRefused, PasswordFileError) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for warning in secret_flag_warnings(args):
        logging.getLogger("worker").warning("%s", warning)
    logging.getLogger("worker").info("settings: %s", config.redacted())
    if etcd_note is not None:
        logging.getLogger("worker").warning("%s", etcd_note)
    trio.run(run_worker, config)
    return 0


def check_etcd_access(config: Config) -> str | None:
    """Before anything starts (and before logging, so a refusal is the only line):
    the password file for orphan runs, then etcd as the worker and as an orphan would
    reach it. Returns a note when etcd does not answer yet."""
    write_password_file(config)
    note = trio.run(check_etcd, config)
    secured = config.etcd_ca_file or config.etcd_cert_file or config.etcd_user
    if note is None and secured:  # where the gateway's rules can differ from gRPC's
        check_gateway(config)
    return note


if __name__ == "__main__":
    sys.exit(main())
