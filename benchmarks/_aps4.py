"""APScheduler 4 as a peer: its own virtualenv, a throw-away PostgreSQL and Redis, N nodes.

Why a separate virtualenv (``benchmarks/.venv-aps4``, git-ignored, made on first use):
APScheduler 4 is a pre-release that shares the ``apscheduler`` import name with the
APScheduler 3 baseline, so the two cannot live in one environment. Why PostgreSQL:
APScheduler 4's SQL data store does not support MariaDB/MySQL for its locking.
Debian's ``postgresql`` and ``redis-server`` are installed with apt if missing, and
started on loopback, on free ports, in the run's scratch directory. PostgreSQL refuses
to run as root, so as root its commands run as the ``postgres`` user.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._load import PROBE_COMMAND, Load
from ._peers import PEERS_DIR, Window, run_peer, write_plan
from ._progress import Progress
from ._servers import ROOT, services
from ._stats import SystemResult
from ._timing import next_second_ms, wall_ms

VENV = ROOT / "benchmarks" / ".venv-aps4"
# sniffio: imported by the SQLAlchemy data store of 4.0.0a6 but not declared by it.
REQUIREMENTS = ("apscheduler[asyncpg,redis,sqlalchemy]>=4.0.0a1", "sniffio")
PG_USER = "bench"
WARMUP_S = 4  # node start-up, schedule creation, first fires


class Aps4Unavailable(RuntimeError):
    """APScheduler 4 or its servers could not be set up; the message says which step."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"APScheduler 4 peer: {step} failed: {detail}")


def _run(cmd: list[str], step: str, **kwargs: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise Aps4Unavailable(step, (done.stderr or done.stdout)[-2000:])
    return done.stdout


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import apscheduler.datastores.sqlalchemy, "
             "apscheduler.eventbrokers.redis, asyncpg"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    _run([sys.executable, "-m", "venv", "--clear", str(VENV)], "venv")
    _run([str(python), "-m", "pip", "install", "-q", "--pre", *REQUIREMENTS], "pip install")
    return python


def _apt_install(package: str) -> None:
    _run(["apt-get", "install", "-y", "-q", package], f"apt-get install {package}",
         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        _apt_install("postgresql")
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise Aps4Unavailable("postgresql", f"{name} not found after apt-get")
    return found[-1]


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresServer:
    base_dir: Path
    port: int = field(default_factory=lambda: services().free_port())
    process: subprocess.Popen | None = None

    def start(self) -> "PostgresServer":
        data = self.base_dir / "pgdata"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base_dir, "postgres", "postgres")
        _run([*_as_postgres(), _pg_bin("initdb"), "-D", str(data), "-U", PG_USER,
              "--auth=trust", "-E", "UTF8"], "initdb")
        log = open(self.base_dir / "postgres.log", "ab")
        self.process = subprocess.Popen(
            [*_as_postgres(), _pg_bin("postgres"), "-D", str(data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.base_dir), "-c", "max_connections=200"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while subprocess.run([_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise Aps4Unavailable("postgres start", (self.base_dir / "postgres.log").read_text()[-2000:])
            time.sleep(0.2)
        return self

    def create_db(self, name: str) -> str:
        _run([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name],
             "createdb")
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run([*_as_postgres(), _pg_bin("pg_ctl"), "-D", str(self.base_dir / "pgdata"),
                        "stop", "-m", "fast", "-w"], capture_output=True, timeout=60)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class RedisServer:
    base_dir: Path
    port: int = field(default_factory=lambda: services().free_port())
    process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            _apt_install("redis-server")
            binary = shutil.which("redis-server")
        if binary is None:
            raise Aps4Unavailable("redis-server", "not found after apt-get")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.base_dir / "redis.log", "ab")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.base_dir)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        services().wait_until(self._accepting, 20, "redis", self.base_dir / "redis.log")
        return self

    def _accepting(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@dataclass
class Aps4Peer:
    python: Path
    postgres: PostgresServer
    redis: RedisServer
    nodes: int

    @classmethod
    def prepare(cls, base: Path, nodes: int) -> "Aps4Peer":
        python = ensure_venv()
        os.chmod(base, 0o755)  # the postgres user must reach its data dir inside
        postgres = PostgresServer(base / "postgres").start()
        try:
            redis = RedisServer(base / "redis").start()
        except BaseException:
            postgres.stop()
            raise
        return cls(python, postgres, redis, nodes)

    def commands(self, db_url: str) -> list[list[str]]:
        script = str(PEERS_DIR / "aps4.py")
        return [[str(self.python), script, "--node", str(i), "--db", db_url,
                 "--redis", self.redis.url, *(["--add-schedules"] if i == 0 else [])]
                for i in range(self.nodes)]

    async def run(self, load: Load, args: argparse.Namespace, workdir: Path,
                  progress: Progress) -> SystemResult:
        db_url = self.postgres.create_db(f"aps4_{load.mode}_{load.jobs}_{wall_ms()}")
        start_ms = next_second_ms(wall_ms(), plus_s=WARMUP_S)
        window = Window(start_ms, start_ms + args.seconds * 1000)
        plan = write_plan(workdir / "plan-apscheduler4.json", load, PROBE_COMMAND, window)
        return await run_peer("apscheduler4", self.commands(db_url), plan, window, workdir,
                              progress, extra={"nodes": self.nodes})

    def close(self) -> None:
        self.redis.stop()
        self.postgres.stop()
