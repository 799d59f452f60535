"""Our system over one window: N ``python -m worker`` processes, M jobs, records from the store.

The jobs are written before the workers start (they load them with their first read),
the window opens on a whole second once every worker is registered and has had
``warmup_s`` to settle, and the workers are stopped gracefully after it, so that the
LogSink flushes every record before the store is read.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace

from ._load import Load, put_jobs
from ._peers import Window
from ._progress import Progress
from ._records import observed, read_records, status_counts
from ._stats import SystemResult, summarize
from ._timing import next_second_ms, sleep_until_ms, wall_ms
from ._workers import Fleet, wait_registered

SETTLE_AFTER_WINDOW_MS = 2000  # the last runs end and their batch is committed


@dataclass(frozen=True)
class ClusterSetup:
    etcd_endpoint: str
    etcd_pid: int | None
    db_url: str
    workdir: Path
    workers: int
    warmup_s: int = 2
    worker_args: list[str] = field(default_factory=list)
    profile_path: Path | None = None  # py-spy the first worker over the window (raw stacks)
    # Another source tree for the workers (PYTHONPATH first): a before/after in one run.
    source_dir: Path | None = None
    system: str = "scheduler"
    worker_module: str = "worker"  # benchmarks.diag_worker: report long trio task steps


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system


async def run_scheduler(setup: ClusterSetup, load: Load, seconds: int,
                        progress: Progress) -> SystemResult:
    """Our cluster under ``load`` for ``seconds``, judged on the records it wrote."""
    prefix = f"/bench-{uuid.uuid4().hex[:10]}/"
    ks = Keyspace(prefix)
    env = {"PYTHONPATH": str(setup.source_dir)} if setup.source_dir else {}
    fleet = Fleet(setup.etcd_endpoint, prefix, setup.db_url, setup.workdir,
                  list(setup.worker_args), env, setup.worker_module)
    async with open_etcd([setup.etcd_endpoint]) as etcd:
        await put_jobs(etcd, ks, [load.spec(i) for i in range(load.jobs)])
        try:
            workers = fleet.start(setup.workers)
            progress.update(f"{setup.system}: starting workers")
            await wait_registered(etcd, ks, {w.worker_id for w in workers}, fleet)
            start_ms = next_second_ms(wall_ms(), plus_s=setup.warmup_s)
            window = Window(start_ms, start_ms + seconds * 1000)
            cpu = await _measure(fleet, setup.etcd_pid, window, progress, setup.profile_path,
                                 setup.system)
            await sleep_until_ms(window.end_ms + SETTLE_AFTER_WINDOW_MS)
            fleet.check_alive()
        finally:
            progress.update(f"{setup.system}: stopping workers (flushing records)")
            await trio.to_thread.run_sync(fleet.stop)
        await etcd.delete_prefix(prefix)
    records = await read_records(setup.db_url, since_ms=window.start_ms - 10_000)
    worker_cpu, etcd_cpu = cpu
    return summarize(
        setup.system, observed(records), load.fires(window.start_ms, window.end_ms),
        start_ms=window.start_ms, end_ms=window.end_ms, cpu_s=sum(worker_cpu.values()),
        extra={"etcd_cpu_s": round(etcd_cpu, 2),
               "worker_cpu_s": {k: round(v, 2) for k, v in worker_cpu.items()},
               "statuses": status_counts([r for r in records
                                          if window.start_ms <= r.plan_time < window.end_ms])},
    )


def _start_profiler(fleet: Fleet, window: Window,
                    path: Path | None) -> subprocess.Popen | None:
    """py-spy on the first worker: 100 Hz, the GIL holder only (where Python CPU goes).

    Non-blocking: a py-spy that pauses the process at each sample makes fires seconds
    late. Its idle detection does not see trio's waits, hence ``--gil``.
    """
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(fleet.workers[0].pid), "--rate", "100",
         "--duration", str(int(window.seconds)), "--format", "raw", "--output", str(path),
         "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


async def _measure(fleet: Fleet, etcd_pid: int | None, window: Window, progress: Progress,
                   profile_path: Path | None, system: str) -> tuple[dict[str, float], float]:
    """CPU seconds of each worker and of etcd inside the window."""
    while wall_ms() < window.start_ms:
        progress.update(f"{system}: warming up")
        await sleep_until_ms(min(window.start_ms, wall_ms() + 500))
    workers_start, etcd_start = fleet.cpu_s(), _cpu_of(etcd_pid)
    profiler = _start_profiler(fleet, window, profile_path)
    while (now := wall_ms()) < window.end_ms:
        fleet.check_alive()
        used = sum(fleet.cpu_s().values()) - sum(workers_start.values())
        progress.step(system, (now - window.start_ms) / 1000, window.seconds,
                      f"workers CPU {used:.1f} s")
        await sleep_until_ms(min(window.end_ms, now + 1000))
    workers_end, etcd_end = fleet.cpu_s(), _cpu_of(etcd_pid)
    if profiler is not None:
        await trio.to_thread.run_sync(profiler.wait)
    return {k: workers_end[k] - workers_start[k] for k in workers_end}, etcd_end - etcd_start
