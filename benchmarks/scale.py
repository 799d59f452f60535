"""Plan-table scale: 1k, 10k, 100k jobs on one worker; and the shard model (issue 14).

    python -m benchmarks.scale [--sizes 1000,10000,100000] [--firing 100] [--seconds 10]
    python -m benchmarks.scale --model [--fleets 2,4,8,100] [--slots 256] [--replicas 2]
    python -m benchmarks.scale --fleet 2,4,8 [--jobs 100000] [--firing 20] [--seconds 20]
                               [--quiet 10] [--shards S:R] [--no-converge] [--tag NAME]

For each size N, N jobs are written to a private etcd: ``--firing`` of them fire every
second (spread evenly), the rest are yearly jobs that stay in the plan table without
firing in the window. One worker then starts and we measure:

    load_s        worker start -> plan table fully loaded. Measured by a run-now request
                  written before the worker starts: the JobWatcher hands triggers over only
                  after the job snapshot, and the Scheduler handles them in order, so the
                  sentinel's child starts only once all N jobs are planned.
    rss_mb        the worker's resident memory at the end of the window
    cpu_ms/fire   the worker's CPU over the window / runs in the window; it must stay
                  flat as N grows (O(log n) per fire: the target is within 1.5x of 1k)
    plan_us/fire  the same question asked of the PlanTable alone, in-process: CPU per
                  fire of ``pop_due`` with N entries (no I/O, no noise from spawning)

Targets (issue 5): 100k jobs load in <= 10 s, RSS <= 300 MB, CPU per fire at 100k
within 1.5x of that at 1k.

``--model`` starts no server and no worker: for each fleet size W it prints what
placing jobs by slots (``cluster.slots``) would give, from the real slot tables: slots
and jobs planned per worker, slots moved by a join and a leave, watch events and etcd
requests per fire today and with slots (``benchmarks/_shard_model.py`` says where in
the code each count comes from). A model, not a measurement.

``--fleet W1,W2,..`` measures those counts (issue 14, target 4): for each fleet size W
a private etcd and W real workers, ``--jobs`` jobs of which ``--firing`` fire every
second (spread) and the rest are yearly; after they loaded, a quiet window (nothing
fires: the background per second) and a firing window. Per fire, from etcd's own
counters (its /metrics): requests, raft writes, watch events sent to the workers and
watch responses, the background taken off; fires run, duplicates and missed from the
run store (and the workers' spill files), with the missed ones listed; per worker RSS,
peak RSS (VmHWM), plan table and (if the worker exports it) jobs planned.
``--shards S:R`` writes ``<p>shards`` before the workers start (workers that do not
obey it yet ignore it), and the windows wait for the plans to converge on their share
(``--no-converge``: not). ``benchmarks/_fleet_counts.py`` has the details. Results:
``benchmarks/results/scale-fleet[-TAG].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.slots import DEFAULT_REPLICAS, DEFAULT_SLOTS
from cluster.spec import JobSpec
from worker.scheduler.plan import PlanTable

from . import _fleet_counts, _shard_model
from ._load import Load, put_jobs
from ._machine import machine_info, machine_line
from ._progress import Progress
from ._records import observed, read_records
from ._report import RESULTS_DIR, write_json, write_text
from ._servers import etcd_server, scratch_dir
from ._timing import sleep_until_ms, wall_ms
from ._workers import Fleet

SENTINEL = "scale-sentinel"
IDLE_CRON = "0 0 1 1 *"  # yearly: planned, never due in the window
LOAD_TIMEOUT_S = 180.0
PLAN_FIRES = 20_000  # fires timed in the in-process PlanTable measure


@dataclass
class SizeResult:
    jobs: int
    register_s: float
    load_s: float | None
    rss_mb: float
    runs: int
    cpu_s: float
    plan_us_per_fire: float

    @property
    def cpu_ms_per_fire(self) -> float | None:
        return self.cpu_s * 1000 / self.runs if self.runs else None

    def to_json(self) -> dict[str, object]:
        return {"jobs": self.jobs, "register_s": round(self.register_s, 2),
                "load_s": None if self.load_s is None else round(self.load_s, 2),
                "rss_mb": round(self.rss_mb, 1), "runs": self.runs,
                "cpu_s": round(self.cpu_s, 2),
                "cpu_ms_per_fire": None if self.cpu_ms_per_fire is None
                else round(self.cpu_ms_per_fire, 3),
                "plan_us_per_fire": round(self.plan_us_per_fire, 2)}


def specs_for(size: int, firing: int, anchor_ms: int) -> list[dict[str, object]]:
    load = Load("spread", firing, anchor_ms)
    specs = [load.spec(i) for i in range(firing)]
    specs += [{"name": f"idle-{i:06d}", "command": "true", "cronExpr": IDLE_CRON}
              for i in range(size - firing)]
    sentinel = "echo ${EPOCHREALTIME//[!0-9]/}"  # the child's start, in microseconds
    specs.append({"name": SENTINEL, "command": sentinel, "cronExpr": "@yearly"})
    return specs


def plan_us_per_fire(size: int, firing: int) -> float:
    """CPU per fire of PlanTable.pop_due with ``size`` entries, ``firing`` of them due."""
    now_ms = 1_700_000_000_000
    table = PlanTable()
    for spec in specs_for(size, firing, now_ms - 60_000):
        table.upsert(JobSpec.from_json(spec), now_ms)
    fired = 0
    started = time.process_time()
    while fired < PLAN_FIRES:
        now_ms += 10
        fired += sum(1 for _ in table.pop_due(now_ms, 5000))
    return (time.process_time() - started) * 1e6 / fired


async def wait_sentinel(db_url: str, since_ms: int, fleet: Fleet) -> int | None:
    """Epoch ms at which the sentinel's child started (None if it never ran)."""
    with trio.move_on_after(LOAD_TIMEOUT_S):
        while True:
            fleet.check_alive()
            for record in await read_records(db_url, since_ms=since_ms, job_prefix=SENTINEL):
                if record.output.strip().isdigit():
                    return int(record.output.strip()) // 1000
            await trio.sleep(0.5)
    return None


async def measure_size(size: int, args: argparse.Namespace, etcd_endpoint: str, base: Path,
                       progress: Progress) -> SizeResult:
    prefix = f"/scale-{uuid.uuid4().hex[:8]}/"
    ks = Keyspace(prefix)
    db_url = f"sqlite:///{base / f'runs-{size}.db'}"
    anchor_ms = (wall_ms() // 1000 - 60) * 1000
    fleet = Fleet(etcd_endpoint, prefix, db_url, base / f"size-{size}")
    fleet.base_dir.mkdir(parents=True, exist_ok=True)
    async with open_etcd([etcd_endpoint], timeout_s=30) as etcd:
        progress.update(f"{size} jobs: registering")
        started = time.perf_counter()
        await put_jobs(etcd, ks, specs_for(size, args.firing, anchor_ms))
        register_s = time.perf_counter() - started
        await etcd.put(ks.trigger(SENTINEL, uuid.uuid4().hex), json.dumps({"requestedBy": "bench"}))
        try:
            progress.update(f"{size} jobs: worker loading")
            start_ms = wall_ms()
            worker = fleet.add("s0")
            loaded_ms = await wait_sentinel(db_url, start_ms - 1000, fleet)
            window_start = (max(wall_ms(), loaded_ms or 0) // 1000 + 2) * 1000
            window_end = window_start + args.seconds * 1000
            await sleep_until_ms(window_start)
            cpu_start = worker.cpu_s()
            while (now := wall_ms()) < window_end:
                progress.step(f"{size} jobs", (now - window_start) / 1000, args.seconds,
                              f"RSS {worker.rss_mb():.0f} MB")
                await sleep_until_ms(min(window_end, now + 1000))
            cpu_s, rss_mb = worker.cpu_s() - cpu_start, worker.rss_mb()
            await trio.sleep(2.0)
        finally:
            await trio.to_thread.run_sync(fleet.stop)
        await etcd.delete_prefix(prefix)
    runs = [o for o in observed(await read_records(db_url, since_ms=window_start - 10_000))
            if window_start <= o.planned_ms < window_end and o.job != SENTINEL]
    load_s = None if loaded_ms is None else (loaded_ms - start_ms) / 1000
    return SizeResult(size, register_s, load_s, rss_mb, len(runs), cpu_s,
                      plan_us_per_fire(size, args.firing))


def table(results: list[SizeResult]) -> str:
    head = ("| jobs | register s | load s | RSS MB | runs | worker CPU s | CPU ms/fire "
            "| PlanTable µs/fire |\n|---|---|---|---|---|---|---|---|")
    rows = [f"| {r.jobs} | {r.register_s:.1f} | {r.load_s if r.load_s is None else round(r.load_s, 2)} "
            f"| {r.rss_mb:.0f} | {r.runs} | {r.cpu_s:.2f} | "
            f"{'-' if r.cpu_ms_per_fire is None else f'{r.cpu_ms_per_fire:.2f}'} "
            f"| {r.plan_us_per_fire:.1f} |" for r in results]
    first, last = results[0], results[-1]
    ratio = ""
    if first.cpu_ms_per_fire and last.cpu_ms_per_fire:
        ratio = (f"\n\nCPU per fire at {last.jobs} / at {first.jobs}: "
                 f"{last.cpu_ms_per_fire / first.cpu_ms_per_fire:.2f}x (worker), "
                 f"{last.plan_us_per_fire / first.plan_us_per_fire:.2f}x (PlanTable alone)")
    return "\n".join([head, *rows]) + ratio


async def main_async(args: argparse.Namespace) -> list[SizeResult]:
    progress = Progress("scale")
    results = []
    with scratch_dir("scale", keep=args.keep) as base, etcd_server(base) as etcd:
        for size in args.size_list:
            results.append(await measure_size(size, args, etcd.endpoint, base, progress))
            r = results[-1]
            progress.done(f"{size} jobs: load {r.load_s} s, RSS {r.rss_mb:.0f} MB, "
                          f"{r.runs} runs, CPU/fire {r.cpu_ms_per_fire} ms")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--firing", type=int, help="jobs firing every second "
                        "(default 100; --fleet: 20, a low rate: counts, not CPU)")
    parser.add_argument("--seconds", type=int, help="CPU window per size (default 10); "
                        "--fleet: the firing window per fleet size (default 20)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--model", action="store_true",
                        help="print the shard model (no servers, no workers)")
    parser.add_argument("--fleets", default="2,4,8,100", help="--model: fleet sizes W")
    parser.add_argument("--slots", type=int, default=DEFAULT_SLOTS, help="--model: slots S")
    parser.add_argument("--replicas", type=int, default=DEFAULT_REPLICAS,
                        help="--model: owners per slot R")
    parser.add_argument("--fleet", help="measure per-fire counts for these fleet sizes W, "
                        "e.g. 2,4,8 (issue 14 target 4)")
    parser.add_argument("--jobs", type=int, default=100_000,
                        help="--fleet: jobs in all, --firing of them firing")
    parser.add_argument("--quiet", type=float, default=10.0,
                        help="--fleet: seconds of the quiet window (the background)")
    parser.add_argument("--shards", type=_fleet_counts.parse_shards, metavar="S:R",
                        help="--fleet: write <prefix>shards = S slots, R replicas first")
    parser.add_argument("--no-converge", action="store_true",
                        help="--fleet with --shards: measure once the plans are loaded, "
                        "without waiting for them to shrink to their share")
    parser.add_argument("--tag", default="", help="--fleet: results file suffix")
    args = parser.parse_args(argv)
    if args.model:
        return main_model(args)
    fleet_mode = bool(args.fleet)
    args.firing = args.firing or (20 if fleet_mode else 100)
    args.seconds = args.seconds or (20 if fleet_mode else 10)
    if fleet_mode:
        return main_fleet(parser, args)
    args.size_list = [int(x) for x in args.sizes.split(",")]
    meta = machine_info("benchmarks.scale")
    results = trio.run(main_async, args)
    text = table(results)
    print(text)
    write_json(RESULTS_DIR / "scale.json", {"meta": meta, "sizes": [r.to_json() for r in results]})
    write_text(RESULTS_DIR / "scale.md", f"# Scale\n\nMachine: {machine_line(meta)}\n\n"
               f"Command: `{meta['command']}`\n\n{text}")
    return 0


def main_fleet(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        sizes = [int(x) for x in args.fleet.split(",")]
    except ValueError:
        parser.error(f"--fleet {args.fleet!r}: expected fleet sizes such as 2,4,8")
    if min(sizes) < 1 or args.firing < 1 or args.jobs < args.firing:
        parser.error("--fleet needs W >= 1, --firing >= 1 and --jobs >= --firing")
    meta = machine_info("benchmarks.scale")

    async def run() -> list[_fleet_counts.FleetResult]:
        progress = Progress("scale")
        results = []
        with scratch_dir("scale-fleet", keep=args.keep) as base:
            for workers in sizes:
                r = await _fleet_counts.measure_fleet(workers, args, base / f"w{workers}",
                                                      progress)
                results.append(r)
                progress.done(f"W={workers}: {r.run} runs of {r.due}, {r.duplicates} dup")
        return results

    results = trio.run(run)
    text = _fleet_counts.table(results)
    print(text)
    stem = "scale-fleet" + (f"-{args.tag}" if args.tag else "")
    write_json(RESULTS_DIR / f"{stem}.json",
               {"meta": meta, "fleets": [r.to_json() for r in results]})
    write_text(RESULTS_DIR / f"{stem}.md", f"# Cost per fire against fleet size\n\n"
               f"Machine: {machine_line(meta)}, {meta['date_utc']} UTC\n\n"
               f"Command: `{meta['command']}`\n\n{text}")
    return 0


def main_model(args: argparse.Namespace) -> int:
    fleets = [int(x) for x in args.fleets.split(",")]
    text = _shard_model.table(_shard_model.run(fleets, args.slots, args.replicas))
    print(text)
    meta = machine_info("benchmarks.scale")
    stem = "scale-model" if args.slots == DEFAULT_SLOTS else f"scale-model-s{args.slots}"
    write_text(RESULTS_DIR / f"{stem}.md", f"# Shard model (not measured)\n\n"
               f"Commit {meta['commit']}, {meta['date_utc']} UTC. Command: "
               f"`{meta['command']}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
