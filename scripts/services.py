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
* as a module (``EtcdServer``, ``MariaDBServer``) from the pytest fixtures, which start
  private instances for fault tests; ``EtcdServer(..., tls=EtcdTls(...))`` serves https
  with client certificates required, and ``enable_auth`` turns on etcd's users and roles
  (the certificates themselves are made by the tests: this script has no crypto).

Standard library only: it must run before the project's venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
MYSQL_USER = "scheduler"
MYSQL_PASSWORD = "scheduler-test"  # throw-away instance on loopback only


class ServiceError(RuntimeError):
    """A server did not start or stop as asked; the message says which and why."""


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening TCP socket on ``port``.

    Why: ``free_port`` cannot reserve the port, so another server started at the same
    moment (a concurrent test run) may take it; a health check on the port would then
    reach that server and call ours healthy while ours is failing to bind (seen: a
    "frozen" private etcd that still answered)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    sockets = set()
    for fd in fds:
        try:
            sockets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile (the listing's own fd, for one)
            pass
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port \
                    and f"socket:[{inode}]" in sockets:
                return True
    return False


def _clean_env() -> dict[str, str]:
    # etcd reads every ETCD_* variable as a flag: never let the caller's leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}


def _wait_until(predicate, timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServiceError(f"{what} not ready after {timeout_s:.0f} s\n{tail}")


def _stop_pid(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL. A pid that is gone is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


@dataclass(frozen=True)
class EtcdTls:
    """TLS on etcd's client port: its certificate and key, the CA client certificates
    must chain to (``--client-cert-auth``), and a client certificate this script uses
    itself (health checks, ``etcdctl``; name it ``root`` to administer etcd once auth
    is on). Peers stay plain: one member, on loopback."""

    cert_file: Path
    key_file: Path
    trusted_ca_file: Path
    client_cert_file: Path
    client_key_file: Path


@dataclass
class EtcdServer:
    """One single-member etcd on loopback, its data kept in ``data_dir``.

    Auto-compaction is on, as in production: every fire writes, and watchers must
    cope with compaction. ``auth_token_ttl_s``: how long an idle auth token lives
    (etcd's default is 300 s; tests of re-authentication make it short).
    """

    base_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    compaction_retention: str = "1000"
    tls: EtcdTls | None = None
    auth_token_ttl_s: int | None = None
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    @property
    def data_dir(self) -> Path:
        return Path(self.base_dir) / "etcd"

    @property
    def log_path(self) -> Path:
        return Path(self.base_dir) / "etcd.log"

    def command(self) -> list[str]:
        client = self.client_url
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        return [
            _need("etcd"),
            "--name", "scheduler-test",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"scheduler-test={peer}",
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", self.compaction_retention,
            "--log-outputs", "stderr",
            *self._tls_flags(),
            *(["--auth-token-ttl", str(self.auth_token_ttl_s)]
              if self.auth_token_ttl_s is not None else []),
        ]

    def _tls_flags(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--cert-file", str(self.tls.cert_file), "--key-file", str(self.tls.key_file),
                "--trusted-ca-file", str(self.tls.trusted_ca_file), "--client-cert-auth"]

    def start(self, timeout_s: float = 30.0) -> "EtcdServer":
        Path(self.base_dir).mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.data_dir.chmod(0o700)  # etcd refuses a group- or world-readable dir
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=log, env=_clean_env(),
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _wait_until(self.healthy, timeout_s, f"etcd on {self.endpoint}", self.log_path)
        return self

    def healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceError(
                f"etcd exited with {self.process.returncode}\n"
                + self.log_path.read_text(errors="replace")[-2000:]
            )
        if self.process is not None and not listens_on(self.process.pid, self.client_port):
            return False  # not ours yet: whatever answers on the port is someone else
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1,
                                        context=self._ssl_context()) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls.trusted_ca_file))
        context.load_cert_chain(str(self.tls.client_cert_file), str(self.tls.client_key_file))
        return context

    def etcdctl(self, *args: str, stdin: str = "") -> str:
        """Run ``etcdctl`` against this server, with TLS when it has it. Once auth is
        on, it acts as the user its client certificate names (its CN): give it one for
        ``root``. Passwords go through ``stdin``, never on the command line."""
        cmd = [_need("etcdctl"), f"--endpoints={self.client_url}"]
        if self.tls is not None:
            cmd += [f"--cacert={self.tls.trusted_ca_file}",
                    f"--cert={self.tls.client_cert_file}", f"--key={self.tls.client_key_file}"]
        done = subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True,
                              env={**_clean_env(), "ETCDCTL_API": "3"}, timeout=30)
        if done.returncode != 0:
            raise ServiceError(f"etcdctl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def enable_auth(self, root_password: str, users: dict[str, tuple[str, str]]) -> None:
        """Create ``root``, one role per user granted readwrite on its prefix only
        (``users``: name -> (password, prefix)), then turn authentication on."""
        self.etcdctl("user", "add", "root", "--interactive=false", stdin=root_password + "\n")
        for name, (password, prefix) in users.items():
            self.etcdctl("role", "add", name)
            self.etcdctl("role", "grant-permission", name, "--prefix=true", "readwrite",
                         prefix)
            self.etcdctl("user", "add", name, "--interactive=false", stdin=password + "\n")
            self.etcdctl("user", "grant-role", name, name)
        self.etcdctl("auth", "enable")

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests. The data dir survives for a restart."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            _stop_pid(self.process.pid)
            self.process.wait()


@dataclass(frozen=True)
class MariaDBTls:
    """TLS for a MariaDB: its certificate and key, the CA of the clients' certificates,
    and whether TCP clients must use TLS (``require_secure_transport``; the unix
    socket, which set-up uses, counts as secure and stays open)."""

    ca: Path
    cert: Path
    key: Path
    require: bool = True

    def flags(self) -> list[str]:
        return [f"--ssl-ca={self.ca}", f"--ssl-cert={self.cert}", f"--ssl-key={self.key}",
                f"--require-secure-transport={'ON' if self.require else 'OFF'}"]


@dataclass
class MariaDBServer:
    """One MariaDB on loopback with a TCP user that may create databases.

    MariaDB's root user authenticates over the unix socket only, so the TCP user is
    created through the socket right after the first start. With ``tls`` it serves
    TLS (Debian's build links OpenSSL) and, by default, refuses plain TCP clients.
    """

    base_dir: Path
    port: int = field(default_factory=free_port)
    tls: MariaDBTls | None = None
    process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.base_dir) / "mariadb"

    @property
    def socket_path(self) -> Path:
        return Path(self.base_dir) / "mariadb.sock"

    @property
    def log_path(self) -> Path:
        return Path(self.base_dir) / "mariadb.log"

    def url(self, database: str = "scheduler") -> str:
        return f"mysql://{MYSQL_USER}:{MYSQL_PASSWORD}@{LOOPBACK}:{self.port}/{database}"

    def start(self, timeout_s: float = 60.0) -> "MariaDBServer":
        Path(self.base_dir).mkdir(parents=True, exist_ok=True)
        first_start = not (self.data_dir / "mysql").exists()
        if first_start:
            self._install()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._server_command(), stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _wait_until(self._accepting, timeout_s, f"MariaDB on port {self.port}", self.log_path)
        if first_start:
            self._create_user()
        return self

    def _install(self) -> None:
        cmd = [
            _need("mariadb-install-db", "mysql_install_db"), "--no-defaults",
            f"--datadir={self.data_dir}", "--user=root",
            "--auth-root-authentication-method=socket", "--skip-test-db",
        ]
        with open(self.log_path, "ab") as log:
            done = subprocess.run(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ServiceError(f"mariadb-install-db failed; see {self.log_path}")

    def _server_command(self) -> list[str]:
        return [
            _need("mariadbd", "mysqld"), "--no-defaults",
            f"--datadir={self.data_dir}", f"--socket={self.socket_path}",
            f"--port={self.port}", f"--bind-address={LOOPBACK}", "--user=root",
            f"--pid-file={Path(self.base_dir) / 'mariadb.pid'}",
            "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=128M",
            # Throw-away data: trade durability for speed.
            "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
            *(self.tls.flags() if self.tls else []),
        ]

    def _accepting(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceError(
                f"mariadbd exited with {self.process.returncode}\n"
                + self.log_path.read_text(errors="replace")[-2000:]
            )
        if not self.socket_path.exists():
            return False
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1):
                return True
        except OSError:
            return False

    def _create_user(self) -> None:
        sql = (
            f"CREATE USER IF NOT EXISTS '{MYSQL_USER}'@'{LOOPBACK}' "
            f"IDENTIFIED BY '{MYSQL_PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{MYSQL_USER}'@'{LOOPBACK}';"
            "CREATE DATABASE IF NOT EXISTS scheduler;"
        )
        self.sql(sql)

    def sql(self, statement: str) -> str:
        """Run SQL as root over the socket (for set-up and test inspection)."""
        done = subprocess.run(
            [_need("mariadb", "mysql"), "--no-defaults", f"--socket={self.socket_path}",
             "-uroot", "--batch", "--skip-column-names", "-e", statement],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise ServiceError(f"SQL failed: {done.stderr.strip()}")
        return done.stdout

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            _stop_pid(self.process.pid, grace_s=30.0)
            self.process.wait()


def mysql_cli(url: str, statement: str) -> str:
    """Run SQL over TCP with the mariadb client as the URL's user (tests, benchmarks)."""
    u = urllib.parse.urlsplit(url)
    done = subprocess.run(
        [_need("mariadb", "mysql"), "--no-defaults", "-h", u.hostname or LOOPBACK,
         "-P", str(u.port or 3306), "-u", urllib.parse.unquote(u.username or ""),
         f"-p{urllib.parse.unquote(u.password or '')}",
         "--batch", "--skip-column-names", "-e", statement],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30,
    )
    if done.returncode != 0:
        raise ServiceError(f"mariadb: {done.stderr.strip()}")
    return done.stdout


def _need(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
        if path:
            return path
    raise ServiceError(
        f"{names[0]} not found: install Debian's "
        + ("etcd-server" if names[0] == "etcd" else "mariadb-server")
    )


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
            _stop_pid(int(state[key]), grace_s=30.0)
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
