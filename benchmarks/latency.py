"""Fire lateness of the cluster beside APScheduler 3, a bare spawn loop and APScheduler 4.

    python -m benchmarks.latency --workers 2 --jobs 100 --seconds 60 --mode spread \\
        --store sqlite --json /tmp/latency.json [--peers aps4] [--capacity N]

For each load (``--jobs`` takes a comma list for a sweep: 100,200,500,1000) it runs,
one after the other on the same machine and with the same probe command:

    scheduler     N worker processes, private etcd, the run store (SQLite or MariaDB)
    apscheduler   APScheduler 3 AsyncIOScheduler, one process, no locking
    floor         a bare trio loop spawning the probe at the planned instants
    apscheduler4  (``--peers aps4``) APScheduler 4 on N nodes, PostgreSQL + Redis

and reports lateness (child spawned - planned: p50/p90/p99/max), the child's own
lateness, duplicates, misses, per-node share and CPU seconds inside the window. Judge
ours by the child's lateness: its workers spawn a fire's process ahead of time and bash
starts the command at the planned instant, so our record lateness reads 0 whenever a
fire was claimed in time. A
system *saturates* at a load where it misses fires or its p99 passes one period (1 s):
it no longer keeps up. ``--json`` gets ``{system: {runs, duplicates, misses, p50_ms,
p90_ms, p99_ms, max_ms, ...}}`` (for a sweep, keyed by ``jobs=M`` first); the full
results, a Markdown table and a CDF plot go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import trio

from ._load import MODES, PROBE_COMMAND, Load
from ._machine import machine_info, machine_line
from ._ours import ClusterSetup, run_scheduler
from ._peers import Window, peer_command, run_peer, write_plan
from ._progress import Progress
from ._report import (
    RESULTS_DIR,
    console_table,
    markdown_table,
    plot_cdf,
    write_json,
    write_text,
)
from ._servers import etcd_server, scratch_dir, store_url
from ._stats import SystemResult
from ._timing import next_second_ms, wall_ms

PERIOD_MS = 1000
PEER_WARMUP_S = 2
SYSTEMS = ("scheduler", "apscheduler", "floor", "apscheduler4")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2, help="worker processes (and aps4 nodes)")
    p.add_argument("--jobs", default="100", help="jobs, each firing every second; a comma "
                   "list runs a sweep (default 100)")
    p.add_argument("--seconds", type=int, default=15, help="measuring window per system")
    p.add_argument("--mode", choices=MODES, default="spread")
    p.add_argument("--store", choices=("sqlite", "mysql"), default="sqlite")
    p.add_argument("--json", type=Path, help="write {system: figures} here too")
    p.add_argument("--peers", default="aps3,floor",
                   help="peers to run beside ours: aps3, floor, aps4 (comma list); "
                        "'aps4' alone adds it to the default two")
    p.add_argument("--capacity", type=int, help="worker --capacity (default: the worker's)")
    p.add_argument("--worker-arg", action="append", default=[],
                   help="extra flag for every worker, e.g. --worker-arg=--claim-step-s=0.02")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the first worker over the window (raw stacks in results/)")
    p.add_argument("--before-src", type=Path,
                   help="a source tree (its src/ dir) of an older worker: measured too, as "
                        "'scheduler-before', in the same run (before/after figures)")
    p.add_argument("--diag", action="store_true",
                   help="run the workers as benchmarks.diag_worker: their logs end with "
                        "the trio task steps that held the loop longest")
    p.add_argument("--before-label", default="scheduler-before",
                   help="the system name for --before-src (e.g. scheduler-lead)")
    p.add_argument("--tag", default="", help="suffix of the results files")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    args.loads = [int(x) for x in args.jobs.split(",") if x.strip()]
    peers = {x.strip() for x in args.peers.split(",") if x.strip()}
    args.peer_set = peers | {"aps3", "floor"} if peers == {"aps4"} else peers
    return args


def results_stem(args: argparse.Namespace) -> str:
    jobs = "-".join(str(j) for j in args.loads)
    tag = f"-{args.tag}" if args.tag else ""
    return f"latency-{args.mode}-{args.store}-w{args.workers}-j{jobs}-s{args.seconds}{tag}"


async def run_load(args: argparse.Namespace, setup: ClusterSetup, jobs: int, workdir: Path,
                   aps4: "object | None") -> list[SystemResult]:
    progress = Progress(f"latency {args.mode} {jobs} jobs")
    anchor_ms = (wall_ms() // PERIOD_MS - 60) * PERIOD_MS  # whole second, well past
    load = Load(args.mode, jobs, anchor_ms)
    results = [await run_scheduler(setup, load, args.seconds, progress)]
    if args.before_src:
        before = dataclasses.replace(setup, source_dir=args.before_src.resolve(),
                                     system=args.before_label, profile_path=None)
        results.append(await run_scheduler(before, load, args.seconds, progress))
    peers = [("apscheduler", "aps3", [peer_command("aps3.py")]),
             ("floor", "floor", [peer_command("floor.py")])]
    for name, key, commands in peers:
        if key in args.peer_set:
            results.append(await _run_peer(name, commands, load, args, workdir, progress))
    if aps4 is not None:
        results.append(await aps4.run(load, args, workdir, progress))  # type: ignore[attr-defined]
    progress.done(f"done: {', '.join(r.system for r in results)}")
    return results


async def _run_peer(name: str, commands: list[list[str]], load: Load,
                    args: argparse.Namespace, workdir: Path, progress: Progress) -> SystemResult:
    start_ms = next_second_ms(wall_ms(), plus_s=PEER_WARMUP_S)
    window = Window(start_ms, start_ms + args.seconds * 1000)
    plan = write_plan(workdir / f"plan-{name}.json", load, PROBE_COMMAND, window)
    return await run_peer(name, commands, plan, window, workdir, progress)


def saturation(by_load: dict[int, list[SystemResult]]) -> dict[str, int | None]:
    """The first load (jobs = fires/s) at which each system missed fires or p99 > 1 s."""
    first: dict[str, int | None] = {}
    for jobs in sorted(by_load):
        for r in by_load[jobs]:
            first.setdefault(r.system, None)
            behind = r.misses > 0 or (r.lateness.p99_ms or 0) > PERIOD_MS
            if behind and first[r.system] is None:
                first[r.system] = jobs
    return first


def write_outputs(args: argparse.Namespace, meta: dict[str, object],
                  by_load: dict[int, list[SystemResult]]) -> None:
    stem = results_stem(args)
    full = {"meta": meta, "loads": {str(j): {r.system: r.to_json() for r in rs}
                                    for j, rs in by_load.items()},
            "saturates_at_jobs": saturation(by_load)}
    write_json(RESULTS_DIR / f"{stem}.json", full)
    md = [f"# Latency: {args.mode}, {args.workers} workers, store {args.store}, "
          f"{args.seconds} s per system", "", f"Machine: {machine_line(meta)}", "",
          f"Command: `{meta['command']}`", ""]
    for jobs, results in by_load.items():
        md += [f"## {jobs} jobs = {jobs} fires/s", "", markdown_table(results), ""]
        plot_cdf(RESULTS_DIR / f"{stem}-j{jobs}.png",
                 f"{args.mode}: {jobs} fires/s, {args.workers} workers", results)
    if len(by_load) > 1:
        md += ["## Saturation (first load with misses or p99 > 1 s)", ""]
        md += [f"- {s}: {j if j is not None else 'not reached'}"
               for s, j in saturation(by_load).items()]
    write_text(RESULTS_DIR / f"{stem}.md", "\n".join(md))
    if args.json:
        systems = {j: {r.system: r.to_json() for r in rs} for j, rs in by_load.items()}
        single = len(systems) == 1
        write_json(args.json, next(iter(systems.values())) if single
                   else {f"jobs={j}": v for j, v in systems.items()})


async def main_async(args: argparse.Namespace) -> dict[int, list[SystemResult]]:
    meta = machine_info("benchmarks.latency")
    by_load: dict[int, list[SystemResult]] = {}
    with scratch_dir("latency", keep=args.keep) as base:
        worker_args = list(args.worker_arg)
        if args.capacity:
            worker_args += ["--capacity", str(args.capacity)]
        with etcd_server(base) as etcd, store_url(args.store, base) as db_url:
            aps4 = None
            if "aps4" in args.peer_set:
                from ._aps4 import Aps4Peer

                aps4 = Aps4Peer.prepare(base, args.workers)
            try:
                for jobs in args.loads:
                    setup = ClusterSetup(etcd.endpoint, etcd.process.pid, db_url,
                                         base / f"cluster-{jobs}", args.workers,
                                         worker_args=worker_args,
                                         worker_module="benchmarks.diag_worker" if args.diag
                                         else "worker",
                                         profile_path=RESULTS_DIR / f"{results_stem(args)}-j{jobs}"
                                         ".pyspy.txt" if args.profile else None)
                    setup.workdir.mkdir(parents=True, exist_ok=True)
                    by_load[jobs] = await run_load(args, setup, jobs, setup.workdir, aps4)
                    print(f"\n== {args.mode}: {jobs} jobs = {jobs} fires/s, "
                          f"{args.workers} workers, {args.seconds} s ==")
                    print(console_table(by_load[jobs]), flush=True)
            finally:
                if aps4 is not None:
                    aps4.close()
    write_outputs(args, meta, by_load)
    return by_load


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    by_load = trio.run(main_async, args)
    if len(by_load) > 1:
        print("\nsaturates at (jobs = fires/s):", saturation(by_load))
    print(f"\nresults: {RESULTS_DIR / results_stem(args)}.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
