"""``python -m benchmarks.scale --fleet 2,4,8``: what a fire costs etcd and the fleet,
counted with W real workers (issue 14, target 4).

For each fleet size W, one private etcd and W ``python -m worker`` processes (each with
its metrics port on the loopback) share a prefix and a SQLite run store. The run:

1. ``--jobs`` N jobs minus ``--firing`` are written, all yearly (planned, never due
   in the window); with ``--shards S:R``, ``<p>shards`` is written first, so that
   workers that obey it find it at their start (workers that do not ignore it).
2. The W workers start; loaded = registered, and each worker's plan-table gauge
   (``scheduler_worker_jobs``) above 0 and unchanged over two scrapes. With shards,
   then converged (unless ``--no-converge``): the plan tables sum to about
   min(R, W) × jobs (``CONVERGED_WITHIN``), or have not moved for ``STABLE_S`` (the
   result says which, and how long it took): a worker that first planned every job
   must have shed the others' before anything is measured.
3. Quiet window (``--quiet`` s): etcd's counters with nothing firing, i.e. what the
   fleet costs per second by itself (presence, keepalives).
4. The ``--firing`` jobs are written (``@every 1s``, spread over the second); after a
   settling pause, the firing window (``--seconds``): etcd's counters, each worker's
   RSS and metrics at its end.
5. Workers stopped (records flushed); the run store, and the records any worker left
   in its spill file (``spill/<id>/*.jsonl``, counted once by run id), give the fires
   run in the window, the duplicates (two runs of one planned fire) and the misses,
   judged as every latency run is (``_stats.summarize``), the missed ones listed by
   job and planned time. Per worker: RSS at the end of the window, and VmHWM, its
   peak RSS since it started (``/proc/<pid>/status``), which is where a cold start
   that plans every job first shows.

Per fire = the window's increase less the quiet rate over as long, divided by the fires
that ran (``_etcd_counts.PerFire``). Counts, not CPU: at low rates with 8 workers on 2
cores the CPU figures mean little, the counts do not depend on speed.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.shard_settings import ShardSettings
from cluster.store import RunRecord

from ._etcd_counts import EtcdCounts, PerFire
from ._load import Load, put_jobs
from ._progress import Progress
from ._records import observed, read_records
from ._servers import etcd_server, services
from ._stats import summarize
from ._timing import next_second_ms, sleep_until_ms, wall_ms
from ._workers import Fleet, wait_registered

IDLE_CRON = "0 0 1 1 *"  # yearly: planned, never due in the window
LOAD_TIMEOUT_S = 300.0
SETTLE_S = 3.0  # after the firing jobs are written: every worker has planned them
PLAN_GAUGE = "scheduler_worker_jobs"  # jobs in the plan table (worker/metrics.py)
PLANNED_GAUGE = "scheduler_worker_jobs_planned"  # the sharded worker's own count, if any
CONVERGED_WITHIN = 0.01  # the plans' sum within 1 % of min(R, W) x jobs: converged
STABLE_S = 10.0  # ... or unchanged this long
SPILL_SUFFIX, REJECTED_SUFFIX = ".jsonl", ".rejected.jsonl"  # worker.log_sink.spill.trust


def parse_shards(text: str) -> ShardSettings:
    """``S:R`` for ``--shards`` (argparse type: a bad value is one line of usage)."""
    try:
        slots, replicas = (int(part) for part in text.split(":"))
        return ShardSettings(slots, replicas)
    except ValueError as exc:  # not two integers, or ShardSettingsInvalid
        detail = str(exc) if "shards:" in str(exc) else "expected S:R, e.g. 256:2"
        raise argparse.ArgumentTypeError(f"--shards {text!r}: {detail}") from None


def gauge(text: str, name: str) -> float | None:
    """An unlabelled sample of the worker's metrics text, None if absent."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    return None


def idle_specs(count: int) -> list[dict[str, object]]:
    return [{"name": f"idle-{i:06d}", "command": "true", "cronExpr": IDLE_CRON}
            for i in range(count)]


def missed_fires(due: list[tuple[int, str]], ran: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (job, planned ms) due that no run stands for, in time order."""
    done = set(ran)
    return [(job, planned) for planned, job in sorted(due) if (job, planned) not in done]


def status_kb(text: str, field_name: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``), None if absent."""
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MiB; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = status_kb(text, "VmHWM")
    return None if kb is None else kb / 1024


def spilled_records(spill_root: Path) -> list[RunRecord]:
    """The records the workers left in their spill files (under ``spill/<id>/``): the
    store did not take them before the worker stopped; unreadable lines are skipped."""
    records = []
    for path in sorted(spill_root.glob(f"*/*{SPILL_SUFFIX}")):
        if path.name.endswith(REJECTED_SUFFIX):
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(RunRecord.from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError):
                continue
    return records


def merge_records(stored: list[RunRecord], spilled: list[RunRecord]) -> list[RunRecord]:
    """Stored and spilled records, each run once (by run id and status: a spilled record
    replayed before the stop is in both)."""
    seen = {(r.run_id, r.status) for r in stored}
    return [*stored, *(r for r in spilled if (r.run_id, r.status) not in seen)]


def converged(plans: list[float | None], expected: float) -> bool:
    """Do the plan tables sum to about ``expected`` (min(R, W) × jobs)?"""
    known = [p for p in plans if p is not None]
    return len(known) == len(plans) and abs(sum(known) - expected) <= CONVERGED_WITHIN * expected


def spread(values: list[float]) -> tuple[float, float] | None:
    return (sum(values) / len(values), max(values)) if values else None


@dataclass
class FleetResult:
    workers: int
    jobs: int
    firing: int
    shards: str  # "off" or "S:R" as written
    counts: PerFire | None  # None when no fire ran
    due: int
    run: int
    duplicates: int
    load_s: float
    rss_mb: list[float]
    plan_table: list[float | None]
    planned: list[float | None]  # PLANNED_GAUGE per worker; None: the worker has none
    cpu_s: float
    by_worker: dict[str, int] = field(default_factory=dict)  # runs in the window
    missed: int = 0  # due fires that no run was found for
    peak_rss_mb: list[float | None] = field(default_factory=list)  # VmHWM per worker
    converge: str = "off"  # shards: "sum" or "stable" (how the wait ended), "skipped"
    converge_s: float = 0.0
    missed_list: list[tuple[str, int]] = field(default_factory=list)  # (job, planned ms)
    spilled: int = 0  # records read from the workers' spill files

    def to_json(self) -> dict[str, object]:
        return {"workers": self.workers, "jobs": self.jobs, "firing": self.firing,
                "shards": self.shards, "due": self.due, "run": self.run,
                "duplicates": self.duplicates, "missed": self.missed,
                "load_s": round(self.load_s, 2),
                "rss_mb": [round(r, 1) for r in self.rss_mb],
                "peak_rss_mb": [None if r is None else round(r, 1) for r in self.peak_rss_mb],
                "converge": self.converge, "converge_s": round(self.converge_s, 1),
                "missed_fires": [{"job": job, "planned_ms": t} for job, t in self.missed_list],
                "spilled_records": self.spilled,
                "plan_table": self.plan_table, "jobs_planned": self.planned,
                "workers_cpu_s": round(self.cpu_s, 2), "runs_by_worker": self.by_worker,
                "etcd": None if self.counts is None else self.counts.to_json()}


async def fetch(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    return await trio.to_thread.run_sync(get)


async def etcd_counts(client_url: str) -> EtcdCounts:
    return EtcdCounts.parse(await fetch(f"{client_url}/metrics"))


async def worker_gauges(ports: list[int]) -> list[tuple[float | None, float | None]]:
    """(plan table, jobs planned) per worker, from its metrics port."""
    out = []
    for port in ports:
        try:
            text = await fetch(f"http://127.0.0.1:{port}/metrics")
        except OSError:
            out.append((None, None))
            continue
        out.append((gauge(text, PLAN_GAUGE), gauge(text, PLANNED_GAUGE)))
    return out


async def wait_loaded(fleet: Fleet, ports: list[int], expect_jobs: bool) -> None:
    """Until every worker's plan table is filled and stopped growing."""
    last: list[float | None] = []
    with trio.fail_after(LOAD_TIMEOUT_S):
        while True:
            fleet.check_alive()
            now = [table for table, _ in await worker_gauges(ports)]
            if now == last and all(t is not None and (t > 0 or not expect_jobs) for t in now):
                return
            last = now
            await trio.sleep(1.0)


async def wait_converged(fleet: Fleet, ports: list[int], expected: float) -> tuple[str, float]:
    """Until the plan tables sum to about ``expected`` or stop moving (``STABLE_S``);
    returns how it ended ("sum" or "stable") and how long it took."""
    t0 = trio.current_time()
    last: list[float | None] = []
    since = t0
    with trio.fail_after(LOAD_TIMEOUT_S):
        while True:
            fleet.check_alive()
            now = [table for table, _ in await worker_gauges(ports)]
            if converged(now, expected):
                return "sum", trio.current_time() - t0
            if now != last:
                last, since = now, trio.current_time()
            elif trio.current_time() - since >= STABLE_S:
                return "stable", trio.current_time() - t0
            await trio.sleep(1.0)


async def measure_fleet(workers: int, args: argparse.Namespace, base: Path,
                        progress: Progress) -> FleetResult:
    label = f"W={workers}"
    base.mkdir(parents=True, exist_ok=True)
    idle = max(0, args.jobs - args.firing)
    with etcd_server(base) as server:
        ks = Keyspace("/scale/")
        fleet = Fleet(server.endpoint, ks.prefix, f"sqlite:///{base / 'runs.db'}", base)
        ports = [services().free_port() for _ in range(workers)]
        async with open_etcd([server.endpoint], timeout_s=60) as etcd:
            if args.shards is not None:
                await etcd.put(ks.shards, args.shards.to_bytes())
            progress.update(f"{label}: writing {idle:,} idle jobs")
            await put_jobs(etcd, ks, idle_specs(idle))
            try:
                progress.update(f"{label}: {workers} workers loading")
                started_ms = wall_ms()
                for i, port in enumerate(ports):
                    fleet.add(f"w{i}", "--metrics-port", str(port))
                await wait_registered(etcd, ks, {f"w{i}" for i in range(workers)}, fleet,
                                      timeout_s=LOAD_TIMEOUT_S)
                await wait_loaded(fleet, ports, idle > 0)
                load_s = (wall_ms() - started_ms) / 1000
                converge, converge_s = "off", 0.0
                if args.shards is not None and idle > 0:
                    if args.no_converge:
                        converge = "skipped"
                    else:
                        progress.update(f"{label}: waiting for the plans to converge")
                        expected = min(args.shards.replicas, workers) * idle
                        converge, converge_s = await wait_converged(fleet, ports, expected)
                quiet = await counted_window(server.client_url, args.quiet, fleet, progress,
                                             f"{label} quiet")
                anchor_ms = (wall_ms() // 1000 - 60) * 1000
                load = Load("spread", args.firing, anchor_ms)
                await put_jobs(etcd, ks, [load.spec(i, "true") for i in range(args.firing)])
                await trio.sleep(SETTLE_S)
                cpu_before = sum(fleet.cpu_s().values())
                start_ms = next_second_ms(wall_ms())
                await sleep_until_ms(start_ms)
                window = await counted_window(server.client_url, args.seconds, fleet,
                                              progress, f"{label} firing")
                end_ms = wall_ms()
                cpu_s = sum(fleet.cpu_s().values()) - cpu_before
                rss = [w.rss_mb() for w in fleet.workers]
                peaks = [peak_rss_mb(w.pid) for w in fleet.workers]
                gauges = await worker_gauges(ports)
            finally:
                await trio.to_thread.run_sync(fleet.stop)
    spilled = spilled_records(base / "spill")
    records = merge_records(await read_records(fleet.db_url, since_ms=start_ms - 10_000),
                            [r for r in spilled if r.sort_time >= start_ms - 10_000])
    bench = [o for o in observed(records) if o.job.startswith("bench-")]
    ran = summarize(label, bench, load.fires(start_ms, end_ms), start_ms=start_ms,
                    end_ms=end_ms, cpu_s=cpu_s)
    fires = ran.runs - ran.duplicates
    counts = PerFire(window[0], window[1], fires, quiet[0], quiet[1]) if fires else None
    due = load.fires(start_ms, end_ms)
    return FleetResult(
        workers, args.jobs, args.firing,
        "off" if args.shards is None else f"{args.shards.slots}:{args.shards.replicas}",
        counts, ran.expected, ran.runs, ran.duplicates, load_s, rss,
        [t for t, _ in gauges], [p for _, p in gauges], cpu_s, ran.per_node, ran.misses,
        peaks, converge, converge_s,
        missed_fires(due, [(o.job, o.planned_ms) for o in bench
                           if start_ms <= o.planned_ms < end_ms]),
        len(spilled))


async def counted_window(client_url: str, seconds: float, fleet: Fleet, progress: Progress,
                         label: str) -> tuple[EtcdCounts, float]:
    """etcd's counters' increase over ``seconds``, and the exact span they cover."""
    before, t0 = await etcd_counts(client_url), trio.current_time()
    end = t0 + seconds
    while (now := trio.current_time()) < end:
        fleet.check_alive()
        progress.step(label, now - t0, seconds)
        await trio.sleep(min(1.0, end - now))
    after, t1 = await etcd_counts(client_url), trio.current_time()
    return after - before, t1 - t0


def _mean_max(values: list[float | None], fmt: str = "{:,.0f}") -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "n/a"
    mean, high = spread(known)  # type: ignore[misc]
    return f"{fmt.format(mean)} / {fmt.format(high)}"


def _net_gross(value: float, gross: float) -> str:
    return f"{value:.2f} ({gross:.2f})"


def table(results: list[FleetResult]) -> str:
    """One row per fleet size: per-fire counts net of the background (gross beside)."""
    head = ("| W | shards | jobs | fires run / due | dup | missed | etcd requests per fire "
            "| etcd writes per fire | watch events per fire | watch responses per fire "
            "| background per s: requests / writes / events | RSS per worker MB, mean / "
            "max | peak RSS (VmHWM) per worker MB, mean / max "
            "| plan table per worker, mean / max | jobs planned per worker (gauge) "
            "| converged |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for r in results:
        c = r.counts
        if c is None:
            per = "no fire ran | - | - | - | -"
        else:
            net, gross, bg = c.net, c.gross, c.background_per_s
            per = (f"{_net_gross(net.requests, gross.requests)} "
                   f"| {_net_gross(net.writes, gross.writes)} "
                   f"| {_net_gross(net.watch_events, gross.watch_events)} "
                   f"| {_net_gross(net.watch_responses, gross.watch_responses)} "
                   f"| {bg.requests:.1f} / {bg.writes:.1f} / {bg.watch_events:.1f}")
        rows.append(f"| {r.workers} | {r.shards} | {r.jobs:,} | {r.run - r.duplicates:,} / "
                    f"{r.due:,} | {r.duplicates} | {r.missed} | {per} "
                    f"| {_mean_max(r.rss_mb)} | {_mean_max(r.peak_rss_mb)} "
                    f"| {_mean_max(r.plan_table)} | {_mean_max(r.planned)} "
                    f"| {_converged(r)} |")
    missed = [f"- W={r.workers}: " + ", ".join(f"{job} at {t}" for job, t in r.missed_list)
              for r in results if r.missed_list]
    notes = ("\n\nPer fire: etcd's own counters (its /metrics) over the firing window, "
             "less the quiet window's rate over as long (presence, keepalives: the "
             "background column), divided by the fires that ran; in parentheses, without "
             "that subtraction. Requests: every gRPC message etcd received; writes: raft "
             "proposals committed; watch events: events etcd sent to watchers (after "
             "their filters). Fleet totals. n/a: the workers export no "
             f"`{PLANNED_GAUGE}`. Converged: how the wait for the plans to sum to "
             f"min(R, W) x jobs ended (sum; stable: unchanged {STABLE_S:g} s; skipped: "
             "--no-converge; off: shards off), and how long it took.")
    if missed:
        notes += "\n\nMissed fires (job at planned ms):\n" + "\n".join(missed)
    spilled = [f"W={r.workers}: {r.spilled}" for r in results if r.spilled]
    if spilled:
        notes += "\n\nRecords read from the workers' spill files: " + ", ".join(spilled)
    return "\n".join([head, *rows]) + notes


def _converged(r: FleetResult) -> str:
    return f"{r.converge} ({r.converge_s:.0f} s)" if r.converge in ("sum", "stable") \
        else r.converge
