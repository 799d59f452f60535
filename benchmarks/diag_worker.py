"""``python -m worker`` with a trio instrument that reports long task steps (diagnosis).

    python -m benchmarks.diag_worker <worker flags>      (env BENCH_STEP_MS: threshold, 2;
                                                          BENCH_SWITCH_INTERVAL_MS: GIL switch)

Why: a fire is late when the Scheduler's wake-up waits behind another task's step, or
behind the GIL. This wraps the worker unchanged and, at exit, prints to stderr the
task steps longer than the threshold, grouped by task name: count, total and max ms.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict

import trio

import worker.__main__ as worker_main

THRESHOLD_S = float(os.environ.get("BENCH_STEP_MS", "2")) / 1000


class LongSteps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.started: dict[object, float] = {}
        self.long: dict[str, list[float]] = defaultdict(list)
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.started[task] = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1
        took = time.perf_counter() - self.started.pop(task, time.perf_counter())
        if took >= THRESHOLD_S:
            self.long[task.name.split(" ")[0][:80]].append(took * 1000)

    def report(self) -> None:
        print(f"[diag] {self.steps} task steps; steps >= {THRESHOLD_S * 1000:.1f} ms:",
              file=sys.stderr)
        for name, took in sorted(self.long.items(), key=lambda kv: -sum(kv[1])):
            print(f"[diag] {len(took):6d}  total {sum(took):8.1f} ms  max {max(took):6.1f} ms"
                  f"  {name}", file=sys.stderr)


def time_spawns() -> list[float]:
    """Wrap ``Popen._execute_child`` (fork/exec and the wait for exec) to time each spawn."""
    import subprocess

    took: list[float] = []
    real = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            took.append((time.perf_counter() - started) * 1000)

    subprocess.Popen._execute_child = timed  # type: ignore[attr-defined]
    return took


def main() -> int:
    interval_ms = os.environ.get("BENCH_SWITCH_INTERVAL_MS")
    if interval_ms:  # an experiment: how long the loop waits for the GIL
        sys.setswitchinterval(float(interval_ms) / 1000)
    instrument = LongSteps()
    spawns = time_spawns()
    real_run = trio.run

    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("instruments", []).append(instrument)
        try:
            return real_run(*args, **kwargs)
        finally:
            instrument.report()
            if spawns:
                data = sorted(spawns)
                print(f"[diag] spawns {len(data)}: p50 {data[len(data) // 2]:.2f} ms, "
                      f"p90 {data[int(len(data) * 0.9)]:.2f} ms, max {data[-1]:.2f} ms",
                      file=sys.stderr)

    worker_main.trio.run = run  # type: ignore[attr-defined]
    return worker_main.main()


if __name__ == "__main__":
    sys.exit(main())
