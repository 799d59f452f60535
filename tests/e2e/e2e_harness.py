"""Workers as real processes, for end-to-end tests: start, signal, kill, read their runs.

Each worker is ``python -m worker`` with its own id, spill directory and log file;
jobs are written straight into etcd as the master would; run records are read back
from the store the workers write to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

import services  # scripts/services.py: on sys.path in tests (tests/conftest.py)

from cluster.etcd import Etcd
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, RunStore

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServiceProcess:
    """``python -m <module> <args>`` (a worker unless told otherwise), logging to a file."""

    worker_id: str
    args: list[str]
    log_path: Path
    module: str = "worker"
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # over os.environ: secrets go here

    def start(self) -> "ServiceProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait: the graceful path. Returns the exit code."""
        assert self.process is not None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker {self.worker_id} ignored SIGTERM for {timeout_s} s\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: a machine failure, as far as the cluster can tell."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass
class Cluster:
    """N workers sharing an etcd prefix and a store."""

    etcd_endpoint: str
    prefix: str
    db_url: str
    base_dir: Path
    extra_args: list[str] = field(default_factory=list)
    workers: list[ServiceProcess] = field(default_factory=list)

    def add_master(self, port: int, token: str) -> ServiceProcess:
        args = ["--etcd", self.etcd_endpoint, "--prefix", self.prefix, "--db", self.db_url,
                "--port", str(port)]
        master = ServiceProcess("master", args, self.base_dir / "master.log", "master",
                                env={"SCHEDULER_API_TOKEN": token}).start()
        self.workers.append(master)  # stopped with the others
        return master

    def add_worker(self, worker_id: str, *more_args: str,
                   env: dict[str, str] | None = None) -> ServiceProcess:
        spill = self.base_dir / "spill"
        spill.mkdir(mode=0o700, parents=True, exist_ok=True)
        args = [
            "--etcd", self.etcd_endpoint, "--prefix", self.prefix, "--db", self.db_url,
            "--id", worker_id, "--spill-dir", str(spill), *self.extra_args, *more_args,
        ]
        worker = ServiceProcess(worker_id, args, self.base_dir / f"{worker_id}.log",
                                env=env or {}).start()
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.terminate()

    def logs(self) -> str:
        return "\n".join(f"--- {w.worker_id}\n{w.log_tail()}" for w in self.workers)


async def wait_registered(etcd: Etcd, ks: Keyspace, ids: set[str], timeout_s: float = 30.0) -> None:
    with trio.fail_after(timeout_s):
        while True:
            snapshot = await etcd.get_prefix(ks.workers_prefix)
            present = {ks.parse_worker(kv.key) for kv in snapshot.kvs}
            if ids <= present:
                return
            await trio.sleep(0.1)


async def start_workers(cluster: Cluster, etcd: Etcd, ks: Keyspace, ids: list[str]) -> None:
    """One worker per id, each registered before this returns."""
    for worker_id in ids:
        cluster.add_worker(worker_id)
    await wait_registered(etcd, ks, set(ids))


async def put_job(etcd: Etcd, ks: Keyspace, name: str, command: str, cron: str, **extra) -> None:
    spec = {"name": name, "command": command, "cronExpr": cron, **extra}
    await etcd.put(ks.job(name), json.dumps(spec))


async def put_every_second(etcd: Etcd, ks: Keyspace, names: list[str], command: str) -> int:
    """Jobs firing every second (concurrency allow); returns the first whole second
    from which every worker surely plans them all."""
    for name in names:
        await put_job(etcd, ks, name, command, "* * * * * *", concurrency="allow")
    return (wall_ms() // 1000 + 2) * 1000


@dataclass(frozen=True)
class FireCheck:
    """Fires of jobs due every second within a window, against their records."""

    missed: list[tuple[str, int]]  # due, no record
    repeated: list[tuple[str, int]]  # more than one record
    unexpected: set[tuple[str, int]]  # a record, not due


def check_fires(records: list[RunRecord], names: list[str], start_ms: int,
                end_ms: int) -> FireCheck:
    per_fire = Counter((r.job_name, r.plan_time) for r in records)
    due = {(name, t) for name in names for t in range(start_ms, end_ms, 1000)}
    return FireCheck(missed=sorted(due - set(per_fire)),
                     repeated=[k for k, n in per_fire.items() if n > 1],
                     unexpected=set(per_fire) - due)


async def all_records(store: RunStore, job_prefix: str = "") -> list[RunRecord]:
    """Every run record in the store (paging through all of it)."""
    out: list[RunRecord] = []
    cursor = None
    while True:
        page = await store.query(cursor=cursor, limit=1000)
        out.extend(r for r in page.records if r.job_name.startswith(job_prefix))
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def duplicates(records: list[RunRecord]) -> dict[tuple[str, int, int], int]:
    counts = Counter((r.job_name, r.plan_time, r.attempt) for r in records)
    return {k: n for k, n in counts.items() if n > 1}


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid`` (read from /proc), zombies excluded."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def pids_with_cmdline(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


async def wait_healthy(url: str, master: ServiceProcess, timeout_s: float = 30.0) -> None:
    """Until ``url``/healthz answers 200; fails at once, with its log, if the master died."""
    async with httpx.AsyncClient(base_url=url) as client:
        with trio.fail_after(timeout_s):
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert master.alive(), master.log_tail()
                await trio.sleep(0.2)


async def start_fleet(cluster: Cluster, etcd: Etcd, ks: Keyspace, metrics_ports: dict[str, int],
                      master_port: int, token: str) -> ServiceProcess:
    """Workers (each with its metrics port) and a master; returns once every worker is
    registered and the master healthy."""
    for worker_id, port in metrics_ports.items():
        cluster.add_worker(worker_id, "--metrics-port", str(port))
    master = cluster.add_master(master_port, token)
    await wait_registered(etcd, ks, set(metrics_ports))
    await wait_healthy(f"http://127.0.0.1:{master_port}", master)
    return master


class Timeline:
    """What happened when, in seconds from the start of the test (``at``: a
    ``trio.current_time()`` other than now), in order of time."""

    def __init__(self) -> None:
        self.t0 = trio.current_time()
        self.lines: list[str] = []

    def note(self, what: str, at: float | None = None) -> float:
        at = (trio.current_time() if at is None else at) - self.t0
        self.lines.append(f"{at:7.2f} s  {what}")
        return at

    def __str__(self) -> str:
        return "\n".join(sorted(self.lines, key=lambda line: float(line.split()[0])))


async def serve_master(cluster: Cluster, token: str, worker_id: str) -> str:
    """A master (on a free port) and one worker; the master's URL once it is healthy."""
    port = services.free_port()
    master = cluster.add_master(port, token)
    cluster.add_worker(worker_id)
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(url, master)
    return url
