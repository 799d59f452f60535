"""Worker processes (``python -m worker``) for a benchmark, and what they cost.

Each worker gets its own id, spill directory and log file; ``cpu_s()`` and ``rss_mb()``
read the process itself (threads included, the jobs it spawns excluded), so that a
benchmark can charge the scheduler for its own CPU, not for the commands it runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import trio

from cluster.etcd import Etcd
from cluster.keyspace import Keyspace

from ._servers import ROOT

# Quiet by default: a log line per fire would be part of what is measured.
DEFAULT_WORKER_ARGS = ("--log-level", "WARNING")


class WorkerDied(RuntimeError):
    """A worker process exited while the benchmark needed it; the message has its log."""

    def __init__(self, worker_id: str, code: int | None, log_tail: str) -> None:
        super().__init__(f"worker {worker_id} exited with {code}\n{log_tail}")


@dataclass
class Worker:
    worker_id: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # on top of ours
    module: str = "worker"  # or benchmarks.diag_worker, the same worker instrumented
    process: subprocess.Popen | None = None
    _ps: psutil.Process | None = None

    def start(self) -> "Worker":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
            )
        self._ps = psutil.Process(self.process.pid)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.process.returncode if self.process else None
            raise WorkerDied(self.worker_id, code, self.log_tail())

    def cpu_s(self) -> float:
        """User + system CPU seconds of the worker process so far (0 once it is gone)."""
        try:
            times = self._ps.cpu_times()  # type: ignore[union-attr]
        except (psutil.NoSuchProcess, AttributeError):
            return 0.0
        return times.user + times.system

    def rss_mb(self) -> float:
        try:
            return self._ps.memory_info().rss / 2**20  # type: ignore[union-attr]
        except (psutil.NoSuchProcess, AttributeError):
            return 0.0

    def terminate(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM and wait (graceful: the LogSink flushes); SIGKILL after ``timeout_s``.

        One SIGTERM: a worker takes a second one as "stop at once" (``Fleet.stop``)."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float) -> int | None:
        """Its exit status, waiting up to ``timeout_s`` for it; SIGKILL past that."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            print(f"worker {self.worker_id} did not stop in {timeout_s:.0f} s: SIGKILL",
                  file=sys.stderr, flush=True)
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a machine failure, as far as the cluster can tell."""
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class Fleet:
    """N workers sharing an etcd prefix and a run store."""

    etcd_endpoint: str
    prefix: str
    db_url: str
    base_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    module: str = "worker"
    workers: list[Worker] = field(default_factory=list)

    def add(self, worker_id: str, *more_args: str) -> Worker:
        spill = self.base_dir / "spill" / worker_id
        spill.mkdir(mode=0o700, parents=True, exist_ok=True)
        args = [
            "--etcd", self.etcd_endpoint, "--prefix", self.prefix, "--db", self.db_url,
            "--id", worker_id, "--spill-dir", str(spill),
            *DEFAULT_WORKER_ARGS, *self.extra_args, *more_args,
        ]
        worker = Worker(worker_id, args, self.base_dir / f"{worker_id}.log", self.env,
                        self.module).start()
        self.workers.append(worker)
        return worker

    def start(self, n: int, *, id_prefix: str = "w") -> list[Worker]:
        return [self.add(f"{id_prefix}{i}") for i in range(n)]

    def cpu_s(self) -> dict[str, float]:
        return {w.worker_id: w.cpu_s() for w in self.workers}

    def check_alive(self) -> None:
        for worker in self.workers:
            worker.check_alive()

    def stop(self, timeout_s: float = 60.0) -> dict[str, int | None]:
        """SIGTERM every worker once, all first (they drain in parallel), then wait for
        them, SIGKILL for any still running ``timeout_s`` after the signals; returns each
        worker's exit status.

        Once only: a second SIGTERM tells a worker to stop at once
        (``actors.run_until_signalled``), cutting short the runs it holds for their
        instant or runs, whose records and ``running`` keys are then left behind with its
        session lease. (This used to signal, then ``terminate()`` each worker, which
        signalled again every worker still stopping when the wait reached it.)
        """
        for worker in self.workers:
            if worker.alive():
                worker.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        return {worker.worker_id: worker.wait(max(0.0, deadline - time.monotonic()))
                for worker in self.workers}


async def wait_registered(etcd: Etcd, ks: Keyspace, ids: set[str], fleet: Fleet,
                          timeout_s: float = 60.0) -> None:
    """Until every worker in ``ids`` has its key under ``workers/`` (i.e. is running)."""
    with trio.fail_after(timeout_s):
        while True:
            fleet.check_alive()
            snapshot = await etcd.get_prefix(ks.workers_prefix)
            present = {ks.parse_worker(kv.key) for kv in snapshot.kvs}
            if ids <= present:
                return
            await trio.sleep(0.1)
