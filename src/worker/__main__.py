"""``python -m worker``: run one Scheduler worker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import functools
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
from cluster.store import StoreTlsError, check_tls_files

from .app import run_worker
from .run_as import JobUsers, RunAsError

DESCRIPTION = """\
Run a Scheduler worker: it watches the jobs in etcd, fires each one exactly once per
scheduled time across the fleet, runs it with bash in its own process group, and
records every run in the run store (MySQL, or SQLite when no database is given).

Settings come from defaults, then the JSON file (--config; the seed's worker.json keys
are accepted), then SCHEDULER_* environment variables, then these flags.
SIGTERM/SIGINT: stop firing, let running jobs finish up to --shutdown-grace-s, flush
the run records, leave the cluster; a second signal stops at once.
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
        check_tls_files(config.db)
        users = JobUsers.from_config(config)
    except (ConfigError, StoreTlsError, RunAsError) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for warning in secret_flag_warnings(args):
        logging.getLogger("worker").warning("%s", warning)
    logging.getLogger("worker").info("settings: %s", config.redacted())
    trio.run(functools.partial(run_worker, config, users=users))
    return 0


if __name__ == "__main__":
    sys.exit(main())
