"""``python -m master``: run the Scheduler master until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from cluster.config import (
    ConfigError,
    add_config_flags,
    config_from_cli,
    fields_for,
    secret_flag_warnings,
)

from cluster.etcd import EtcdAccessError
from cluster.etcd_access import check_etcd

from .app import run_master
from .auth import ExposureRefused, check_exposure
from .server import CannotListen, check_listen

DESCRIPTION = """\
Run the Scheduler master: the JSON REST API under /api/v1 (jobs, runs, workers, cron
preview), the seed-compatible endpoints (/job/save, /job/list, ...), /healthz,
/metrics, /openapi.json and the web UI at /. Jobs live in etcd; run history is read
from the run store (MySQL, or SQLite when no database is given). The master may be
down without stopping any job: workers do not need it.

Every endpoint except /healthz and the UI's files requires
"Authorization: Bearer <token>" when --token is set; without a token the master
listens only on a loopback address. It starts, and serves jobs, while the database is
down (run queries answer 503 until it is back).

Settings come from defaults, then the JSON file (--config; the seed's master.json keys
are accepted), then SCHEDULER_* environment variables, then these flags.
SIGTERM/SIGINT: stop accepting connections, let requests in flight finish, stop;
a second signal stops at once.

etcd with TLS and auth: --etcd-ca (TLS on), --etcd-cert/--etcd-key (a client
certificate), --etcd-user with its password in SCHEDULER_ETCD_PASSWORD or
--etcd-password-file (never as a flag).

Exit status: 0 after a signal; 2 for a configuration error, or etcd refusing the
credentials, TLS or prefix at start-up (one line on stderr; an etcd that does not
answer is waited for); 1 if it cannot listen.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m master", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(parser, fields_for("master"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_cli(args)
        check_exposure(config)
        etcd_note = trio.run(check_etcd, config)  # before logging: a refusal is one line
    except (ConfigError, ExposureRefused, EtcdAccessError) as exc:
        print(f"master: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    master_fields = set(fields_for("master"))
    settings = {k: v for k, v in config.redacted().items() if k in master_fields}
    for warning in secret_flag_warnings(args):
        logging.getLogger("master").warning("%s", warning)
    logging.getLogger("master").info("settings: %s", settings)
    if etcd_note is not None:
        logging.getLogger("master").warning("%s", etcd_note)
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
