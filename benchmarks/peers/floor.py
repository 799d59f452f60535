"""The floor: a bare trio loop that spawns the probe at each planned instant.

    python benchmarks/peers/floor.py PLAN.json RESULTS.json

No cluster, no lock, no store, no actor: it sleeps until the next planned instant and
spawns every command due then with a plain ``subprocess.Popen`` (vfork + exec) right in
the loop, which is the fastest a Python process can start children. Whatever lateness
it shows is the machine's (timer wake-up, process creation on 2 cores), so the
scheduler is judged by its ratio to this. Children are collected by one small task
each: stdout read through trio, exit seen on a pidfd, so collecting costs no thread.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import defaultdict

import trio

from peer_common import EXIT_MARGIN_MS, Plan, Recorder, wall_ms

PERIOD_MS = 1000


def instants(plan: Plan, from_ms: int) -> list[tuple[int, list[str]]]:
    """(planned ms, jobs due then) from ``from_ms`` until ``plan.stop_ms``, in order."""
    due: dict[int, list[str]] = defaultdict(list)
    first = from_ms - from_ms % PERIOD_MS + PERIOD_MS
    for second in range(first, plan.stop_ms + 1, PERIOD_MS):
        for name, phase_ms in plan.jobs:
            planned = second + (phase_ms if plan.mode == "spread" else 0)
            if from_ms < planned <= plan.stop_ms:
                due[planned].append(name)
    return sorted(due.items())


async def collect(proc: subprocess.Popen, read_fd: int, job: str, planned_ms: int,
                  start_ms: int, recorder: Recorder) -> None:
    output = bytearray()
    async with trio.lowlevel.FdStream(read_fd) as stream:
        while chunk := await stream.receive_some(4096):
            output += chunk
    pidfd = os.pidfd_open(proc.pid)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    proc.wait()
    recorder.add(job, planned_ms, start_ms, bytes(output))


def spawn(plan: Plan, planned_ms: int, run_id: str) -> tuple[subprocess.Popen, int]:
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen([plan.bash, "-c", plan.command], stdin=subprocess.DEVNULL,
                                stdout=write_fd, stderr=subprocess.DEVNULL,
                                env=plan.probe_env(planned_ms, run_id), start_new_session=True)
    finally:
        os.close(write_fd)
    return proc, read_fd


async def run(plan: Plan, recorder: Recorder) -> None:
    run_ids = itertools.count()
    async with trio.open_nursery() as nursery:
        for planned_ms, jobs in instants(plan, wall_ms()):
            await trio.sleep(max(0.0, (planned_ms - wall_ms()) / 1000))
            for job in jobs:
                proc, read_fd = spawn(plan, planned_ms, f"floor-{next(run_ids)}")
                start_ms = wall_ms()
                nursery.start_soon(collect, proc, read_fd, job, planned_ms, start_ms, recorder)
        await trio.sleep(EXIT_MARGIN_MS / 1000)
        nursery.cancel_scope.cancel()


def main() -> None:
    plan_path, out_path = sys.argv[1:3]
    plan = Plan.load(plan_path)
    recorder = Recorder("floor")
    recorder.dump_on_sigterm(out_path)
    trio.run(run, plan, recorder)
    recorder.dump(out_path)


if __name__ == "__main__":
    main()
