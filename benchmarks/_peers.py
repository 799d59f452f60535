"""Running a peer system (``benchmarks/peers/*.py``) over one window and summarizing it.

A peer is one or more processes given the same plan file; each writes its runs to a
results file of its own when it exits. The harness samples their CPU at the window's
edges (psutil), so that start-up and the exit margin are not charged to them, exactly
as for our workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import trio

from ._load import Load, job_name
from ._progress import Progress
from ._stats import Observed, SystemResult, summarize
from ._timing import sleep_until_ms, wall_ms

PEERS_DIR = Path(__file__).resolve().parent / "peers"
EXIT_TIMEOUT_S = 60.0
TERMINATE_TIMEOUT_S = 15.0


class PeerFailed(RuntimeError):
    """A peer process exited with an error or wrote no results; the message has its log."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"peer {name} failed: {detail}")


@dataclass(frozen=True)
class Window:
    """The measuring window [start_ms, end_ms); peers fire from launch until end_ms."""

    start_ms: int
    end_ms: int

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000


def write_plan(path: Path, load: Load, command: str, window: Window) -> Path:
    jobs = [[job_name(i), (load.anchor_ms + load.offset_ms(i)) % 1000] for i in range(load.jobs)]
    plan = {"mode": load.mode, "command": command, "bash": "/bin/bash", "jobs": jobs,
            "anchor_ms": load.anchor_ms, "stop_ms": window.end_ms - 1}
    path.write_text(json.dumps(plan))
    return path


def peer_command(script: str, *, python: str = sys.executable) -> list[str]:
    return [python, str(PEERS_DIR / script)]


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


async def run_peer(name: str, commands: list[list[str]], plan_path: Path, window: Window,
                   workdir: Path, progress: Progress, *,
                   extra: dict[str, object] | None = None) -> SystemResult:
    """Start one process per command (plan and results paths appended), measure, summarize."""
    outs = [workdir / f"{name}-{i}.json" for i in range(len(commands))]
    logs = [workdir / f"{name}-{i}.log" for i in range(len(commands))]
    procs: list[subprocess.Popen] = []
    for cmd, out, log_path in zip(commands, outs, logs):
        with open(log_path, "ab") as log:
            procs.append(subprocess.Popen([*cmd, str(plan_path), str(out)], stdout=log,
                                          stderr=log, stdin=subprocess.DEVNULL,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1"}))
    try:
        ps = [psutil.Process(p.pid) for p in procs]
        cpu_s = await _measure_window(name, procs, ps, window, progress)
        await _wait_exit(name, procs, logs, window)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    runs = _load_results(name, outs, logs)
    return summarize(name, runs, _due_from_plan(plan_path, window), start_ms=window.start_ms,
                     end_ms=window.end_ms, cpu_s=cpu_s, extra=extra)


async def _measure_window(name: str, procs: list[subprocess.Popen], ps: list[psutil.Process],
                          window: Window, progress: Progress) -> float:
    while wall_ms() < window.start_ms:
        progress.update(f"{name}: warming up")
        await sleep_until_ms(min(window.start_ms, wall_ms() + 500))
    cpu_start = _cpu(ps)
    while (now := wall_ms()) < window.end_ms:
        for p in procs:
            if p.poll() is not None:
                raise PeerFailed(name, f"exited early with {p.returncode}")
        progress.step(name, (now - window.start_ms) / 1000, window.seconds)
        await sleep_until_ms(min(window.end_ms, now + 1000))
    return _cpu(ps) - cpu_start


async def _wait_exit(name: str, procs: list[subprocess.Popen], logs: list[Path],
                     window: Window) -> None:
    """Wait for the peers to write their results; a saturated one that cannot wind
    down in time is terminated (it writes what it recorded: the rest count as missed)."""
    if not await _all_exited(procs, EXIT_TIMEOUT_S):
        print(f"{name}: still running {EXIT_TIMEOUT_S:.0f} s after the window (saturated): "
              "terminating it", file=sys.stderr)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        if not await _all_exited(procs, TERMINATE_TIMEOUT_S):
            raise PeerFailed(name, "did not write its results when terminated")
    for p, log in zip(procs, logs):
        if p.returncode != 0:
            raise PeerFailed(name, f"exit code {p.returncode}\n{log.read_text()[-3000:]}")


async def _all_exited(procs: list[subprocess.Popen], timeout_s: float) -> bool:
    with trio.move_on_after(timeout_s):
        while any(p.poll() is None for p in procs):
            await trio.sleep(0.1)
    return all(p.poll() is not None for p in procs)


def _load_results(name: str, outs: list[Path], logs: list[Path]) -> list[Observed]:
    runs: list[Observed] = []
    for out, log in zip(outs, logs):
        if not out.exists():
            raise PeerFailed(name, f"no results file {out}\n{log.read_text()[-3000:]}")
        data = json.loads(out.read_text())
        runs += [Observed(job, planned, start, child, data["node"])
                 for job, planned, start, child in data["runs"]]
    return runs


def _due_from_plan(plan_path: Path, window: Window) -> list[tuple[int, str]]:
    plan = json.loads(plan_path.read_text())
    load = Load(plan["mode"], len(plan["jobs"]), plan["anchor_ms"])
    return load.fires(window.start_ms, window.end_ms)
