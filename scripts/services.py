#!/usr/bin/env python3
"""Throw-away etcd and MariaDB servers on 127.0.0.1 for tests and local runs.

Why a script of our own: the Debian packages start system-wide services on default
ports as the ``mysql`` user; tests need private, disposable instances with their data
in a temporary directory, on non-default loopback ports, that several test runs (and
tests that kill and restart a server on purpose) can hold side by side.

Used two ways:

* as a command, ``python scripts/services.py start --dir DIR`` starts both servers in
  the background, creates a TCP user and prints ``KEY=value`` lines (source them), and
  ``python scripts/services.py stop --dir DIR`` stops what ``start`` started;
* as a module (``EtcdServer``, ``EtcdCluster``, ``MariaDBServer``) from the pytest
  fixtures, which start private instances for fault tests (``EtcdCluster``: three
  members, its leader found, a member killed and restarted); ``EtcdServer(..., tls=EtcdTls(...))`` serves https
  with client certificates required, and ``enable_auth`` turns on etcd's users and roles
  (the certificates themselves are made by the tests: this script has no crypto).

This file is the command line and the one name importers use; the servers live beside
it, one module each: ``services_etcd.py`` (and ``services_etcd_cluster.py``),
``services_mariadb.py`` (and ``mysql_cli``),
and what both share (ports, waiting, stopping, finding binaries) in
``services_process.py``.

Standard library only: it must run before the project's venv exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# scripts/ is not a package: when loaded by file path (benchmarks/_servers.py) the
# modules beside this one are not importable until their directory is on the path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from services_etcd import EtcdServer, EtcdTls  # noqa: E402
from services_etcd_cluster import EtcdCluster  # noqa: E402
from services_mariadb import MYSQL_PASSWORD, MYSQL_USER, MariaDBServer, MariaDBTls, \
    mysql_cli  # noqa: E402
from services_process import LOOPBACK, ServiceError, free_port, listens_on, stop_pid, \
    wait_until  # noqa: E402

__all__ = ["EtcdCluster", "EtcdServer", "EtcdTls", "LOOPBACK", "MYSQL_PASSWORD", "MYSQL_USER",
           "MariaDBServer", "MariaDBTls", "ServiceError", "free_port", "listens_on",
           "mysql_cli", "stop_pid", "wait_until", "main"]


# --- command line -------------------------------------------------------------

STATE_FILE = "services.json"


def cmd_start(args: argparse.Namespace) -> int:
    base = Path(args.dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    state: dict[str, object] = {}
    started: list = []
    try:
        if not args.no_etcd:
            etcd = EtcdServer(base, client_port=args.etcd_port or free_port(),
                              peer_port=free_port()).start()
            started.append(etcd)
            state["etcd_pid"] = etcd.process.pid
            state["SCHEDULER_TEST_ETCD"] = etcd.endpoint
        if not args.no_mysql:
            maria = MariaDBServer(base, port=args.mysql_port or free_port()).start()
            started.append(maria)
            state["mariadb_pid"] = maria.process.pid
            state["SCHEDULER_TEST_MYSQL"] = maria.url()
    except ServiceError as exc:
        for server in reversed(started):
            server.stop()
        print(f"services: {exc}", file=sys.stderr)
        return 1
    (base / STATE_FILE).write_text(json.dumps(state))
    for key, value in state.items():
        if key.startswith("SCHEDULER_"):
            print(f"{key}={value}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    path = Path(args.dir).resolve() / STATE_FILE
    if not path.exists():
        print(f"services: nothing started in {args.dir}", file=sys.stderr)
        return 0
    state = json.loads(path.read_text())
    for key in ("mariadb_pid", "etcd_pid"):  # reverse start order
        if key in state:
            stop_pid(int(state[key]), grace_s=30.0)
    path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start etcd and MariaDB; print KEY=value settings")
    start.add_argument("--dir", required=True, help="directory for data, logs and pids")
    start.add_argument("--etcd-port", type=int, default=0, help="client port (default: free)")
    start.add_argument("--mysql-port", type=int, default=0, help="port (default: free)")
    start.add_argument("--no-etcd", action="store_true", help="do not start etcd")
    start.add_argument("--no-mysql", action="store_true", help="do not start MariaDB")
    start.set_defaults(func=cmd_start)
    stop = sub.add_parser("stop", help="stop what 'start' started in --dir")
    stop.add_argument("--dir", required=True)
    stop.set_defaults(func=cmd_stop)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
