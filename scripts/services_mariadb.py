"""A private MariaDB on loopback with a TCP user, optionally with TLS; and a TCP client.

Part of ``scripts/services.py`` (see its docstring); standard library only, like it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from services_process import LOOPBACK, ServiceError, free_port, kill, need, raise_if_exited, \
    spawn, stop, wait_until

MYSQL_USER = "scheduler"
MYSQL_PASSWORD = "scheduler-test"  # throw-away instance on loopback only


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
        self.process = spawn(self._server_command(), self.log_path)
        wait_until(self._accepting, timeout_s, f"MariaDB on port {self.port}", self.log_path)
        if first_start:
            self._create_user()
        return self

    def _install(self) -> None:
        cmd = [
            need("mariadb-install-db", "mysql_install_db"), "--no-defaults",
            f"--datadir={self.data_dir}", "--user=root",
            "--auth-root-authentication-method=socket", "--skip-test-db",
        ]
        with open(self.log_path, "ab") as log:
            done = subprocess.run(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ServiceError(f"mariadb-install-db failed; see {self.log_path}")

    def _server_command(self) -> list[str]:
        return [
            need("mariadbd", "mysqld"), "--no-defaults",
            f"--datadir={self.data_dir}", f"--socket={self.socket_path}",
            f"--port={self.port}", f"--bind-address={LOOPBACK}", "--user=root",
            f"--pid-file={Path(self.base_dir) / 'mariadb.pid'}",
            "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=128M",
            # Throw-away data: trade durability for speed.
            "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
            *(self.tls.flags() if self.tls else []),
        ]

    def _accepting(self) -> bool:
        raise_if_exited(self.process, "mariadbd", self.log_path)
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
            [need("mariadb", "mysql"), "--no-defaults", f"--socket={self.socket_path}",
             "-uroot", "--batch", "--skip-column-names", "-e", statement],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise ServiceError(f"SQL failed: {done.stderr.strip()}")
        return done.stdout

    def kill(self) -> None:
        kill(self.process)

    def stop(self) -> None:
        stop(self.process, grace_s=30.0)


def mysql_cli(url: str, statement: str) -> str:
    """Run SQL over TCP with the mariadb client as the URL's user (tests, benchmarks)."""
    u = urllib.parse.urlsplit(url)
    # The password goes in the client's environment, not on its command line (ps).
    env = {**os.environ, "MYSQL_PWD": urllib.parse.unquote(u.password or "")}
    done = subprocess.run(
        [need("mariadb", "mysql"), "--no-defaults", "-h", u.hostname or LOOPBACK,
         "-P", str(u.port or 3306), "-u", urllib.parse.unquote(u.username or ""),
         "--batch", "--skip-column-names", "-e", statement],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, env=env,
    )
    if done.returncode != 0:
        raise ServiceError(f"mariadb: {done.stderr.strip()}")
    return done.stdout
