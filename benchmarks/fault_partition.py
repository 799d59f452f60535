"""A worker cut off from etcd while it lives: the partition case of ``benchmarks.faults``.

Three workers run ``--jobs`` jobs every second (spread, as in the failover case); one of
them, ``cut``, reaches etcd only through an ``EtcdProxy`` (``scripts/etcd_proxy.py``,
the fault tests' proxy) and alone runs a long job (its selector) that ignores SIGTERM.
The store (SQLite) stays reachable. A few seconds in, the proxy stops forwarding:
silence, no error. Two cases, ``--partition-rounds`` rounds each, a new fleet each time:

- ``after``: released once etcd has let the worker's lease expire, and 3 s more. It
  must have fenced its runs before that (the long job's process gone before its
  ``workers/`` key), claimed nothing meanwhile, and come back on a new lease;
- ``before``: released before a fence can come (ttl - ttl/3 - ``FENCE_LEAD_S`` - 0.4 s
  after the cut, the renewal it sent last being at most ttl/3 old): nothing is fenced,
  and the claims the proxy held land late and lose.

The ground truth is the job's own ledger (``_ledger.py``), one file per side: each
worker's environment names its side, and bash expands it in the ledger's path. Per
round: fires due, run, doubled, missed; *recovered*: the fires ``cut`` was first choice
for (the Locker's own ranking, ``worker/locker/placement.py``), planned from the cut
until it ran a fire again, that the others ran; how long after the cut the others ran
the first of them, and how late they ran; how long after the release ``cut`` ran a fire
again (and had a new lease); fires in the ledger without a record in the store (records
lost); and the long job's record (the fenced run's, in the ``after`` case).
"""

from __future__ import annotations

import argparse
import json
import statistics
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from worker.locker.placement import rank_of
from worker.registrar.actor import FENCE_LEAD_S

from ._ledger import ledger_command, read_ledger
from ._load import Load, put_jobs
from ._progress import Progress
from ._records import read_records
from ._servers import from_scripts
from ._stats import Spread
from ._timing import next_second_ms, sleep_until_ms, wall_ms
from ._workers import Fleet, wait_registered

CASES = ("after", "before")
CUT = "cut"
SIDE_ENV = "BENCH_SIDE"  # in each worker's environment, so in its jobs': "cut" or "others"
LONG_JOB = "partition-long"
SETTLE_S = 3.0  # before the cut, and after an expiry before the release
AFTER_S = 5.0  # measured after the cut-off worker is back


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partition-rounds", type=int, default=1,
                        help="partition: rounds of each case (released after the lease "
                             "expired, and before), each with a new fleet")


@dataclass
class Marks:
    """Wall-clock instants (epoch ms) of one round; ``lease`` polls etcd for the cut-off
    worker's key (when it went, each lease it was on), ``watch_pid`` /proc."""

    lease: object  # scripts/lease_watch.py's LeaseWatch, on wall_ms
    cut_ms: int = 0
    release_ms: int = 0
    long_gone_ms: int | None = None  # the long job's process ended

    async def watch_pid(self, pid: int) -> None:
        while Path(f"/proc/{pid}").exists():
            await trio.sleep(0.01)
        self.long_gone_ms = wall_ms()


async def first_line(path: Path, timeout_s: float) -> int:
    with trio.fail_after(timeout_s):
        while not (path.exists() and path.read_text().strip()):
            await trio.sleep(0.05)
    return int(path.read_text().split()[0])


async def run_round(args: argparse.Namespace, etcd_endpoint: str, base: Path,
                    progress: Progress, case: str) -> dict[str, object]:
    ttl_s = args.session_ttl_s
    ks = Keyspace(f"/faults-part-{uuid.uuid4().hex[:8]}/")
    base.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{base / 'partition-runs.db'}"
    load = Load("spread", args.jobs, (wall_ms() // 1000 - 60) * 1000)
    pidfile = base / "long.pid"
    lease_watch = from_scripts("lease_watch")
    worker_args = ["--session-ttl-s", str(ttl_s), "--shutdown-grace-s", "1"]
    async with open_etcd([etcd_endpoint]) as etcd, \
            from_scripts("etcd_proxy").EtcdProxy(etcd_endpoint) as proxy:
        ledger = ledger_command(base / f"ledger-${SIDE_ENV}.txt")
        await put_jobs(etcd, ks, [load.spec(i, ledger) for i in range(args.jobs)] + [
            {"name": LONG_JOB, "command": f"trap '' TERM; echo $$ > {pidfile}; sleep 300",
             "cronExpr": "@yearly", "concurrency": "allow", "selector": {"side": CUT}}])
        cut = Fleet(proxy.endpoint, ks.prefix, db_url, base, worker_args, {SIDE_ENV: CUT})
        others = Fleet(etcd_endpoint, ks.prefix, db_url, base, worker_args,
                       {SIDE_ENV: "others"})
        try:
            cut.add(CUT, "--labels", f"side={CUT}")
            ids = [CUT] + [w.worker_id for w in others.start(2, id_prefix="p")]
            await wait_registered(etcd, ks, {CUT}, cut)
            await wait_registered(etcd, ks, set(ids), others)
            start_ms = next_second_ms(wall_ms(), plus_s=2)
            await etcd.put(ks.trigger(LONG_JOB, uuid.uuid4().hex),
                           json.dumps({"requestedBy": "bench"}))
            pid = await first_line(pidfile, 10)
            marks = Marks(lease_watch.LeaseWatch(etcd, ks, CUT, clock=wall_ms))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(marks.lease.run)
                nursery.start_soon(marks.watch_pid, pid)
                await sleep_until_ms(start_ms + int(SETTLE_S * 1000))
                await cut_and_release(proxy, marks, case, ttl_s, progress)
                await trio.sleep(AFTER_S)
                end_ms = (wall_ms() // 1000 - 1) * 1000
                await trio.sleep(1.5)  # the window's last fires end and are written
                cut.check_alive()
                others.check_alive()
                nursery.cancel_scope.cancel()
        finally:
            await trio.to_thread.run_sync(cut.stop)
            await trio.to_thread.run_sync(others.stop)
        await etcd.delete_prefix(ks.prefix)
    ran = [(job, planned, late, side) for side in (CUT, "others")
           for job, planned, late in read_ledger(base / f"ledger-{side}.txt")
           if start_ms <= planned < end_ms]
    records = await read_records(db_url, since_ms=start_ms - 60_000)
    return figures(case, ttl_s, load, ids, ran, records, marks, start_ms, end_ms)


async def cut_and_release(proxy: object, marks: Marks, case: str, ttl_s: int,
                          progress: Progress) -> None:
    proxy.pause()  # type: ignore[attr-defined]
    marks.cut_ms = wall_ms()
    progress.update(f"partition ({case}): cut")
    if case == "after":
        await marks.lease.wait_gone(ttl_s + 5)  # type: ignore[attr-defined]
        await trio.sleep(SETTLE_S)  # the others run every fire meanwhile
    else:
        await trio.sleep(ttl_s - ttl_s / 3 - FENCE_LEAD_S - 0.4)
    leases_before = len(marks.lease.leases)  # type: ignore[attr-defined]
    proxy.resume()  # type: ignore[attr-defined]
    marks.release_ms = wall_ms()
    progress.update(f"partition ({case}): released after "
                    f"{(marks.release_ms - marks.cut_ms) / 1000:.1f} s")
    if case == "after":
        await marks.lease.wait_new_lease(leases_before, 15)  # type: ignore[attr-defined]


def figures(case: str, ttl_s: int, load: Load, ids: list[str], ran: list, records: list,
            marks: Marks, start_ms: int, end_ms: int) -> dict[str, object]:
    due = {(job, planned) for planned, job in load.fires(start_ms, end_ms)}
    counts = Counter((job, planned) for job, planned, _, _ in ran)
    fleet = [WorkerInfo(w, "", 0) for w in ids]
    back = [planned + late for _, planned, late, side in ran
            if side == CUT and planned + late >= marks.release_ms]
    back_ms = min(back) if back else end_ms
    theirs = {(job, planned) for job, planned in due if marks.cut_ms <= planned < back_ms
              and rank_of(CUT, {}, f"{job}@{planned}#1", fleet, {}) == 0}
    recovered = [(planned, late) for job, planned, late, side in ran
                 if side != CUT and (job, planned) in theirs]
    # Its fires it ran itself: claimed before the cut (a claim goes out ahead of the
    # fire), or after the release and before the first one it ran again.
    by_itself = sum(1 for job, planned, _, side in ran if side == CUT and (job, planned) in theirs)
    stored = {(r.job_name, r.plan_time) for r in records}
    longs = [r for r in records if r.job_name == LONG_JOB]
    gone = marks.lease.gone_at[0] if marks.lease.gone_at else None
    leases = marks.lease.leases

    def after_cut_s(ms: int | None) -> float | None:
        return None if ms is None else round((ms - marks.cut_ms) / 1000, 2)

    return {
        "case": case, "session_ttl_s": ttl_s, "jobs": load.jobs,
        "due": len(due), "ran": len(ran), "missed": len(due - set(counts)),
        "doubled": sum(n - 1 for n in counts.values() if n > 1),
        "cut_s": round((marks.release_ms - marks.cut_ms) / 1000, 2),
        "its_fires_while_cut": len(theirs), "recovered": len(recovered),
        "ran_by_itself": by_itself,
        # Fires it ran, planned a second or more after the cut and before the release:
        # none may be claimed while it cannot reach etcd (0 in the after case).
        "ran_by_cut_while_cut": sum(1 for _, planned, _, side in ran if side == CUT
                                    and marks.cut_ms + 1000 <= planned < marks.release_ms),
        "takeover_s": after_cut_s(min((p + late for p, late in recovered), default=None)),
        "recovered_lateness": Spread.of(late for _, late in recovered).__dict__,
        "lease_gone_s": after_cut_s(gone),
        "long_job_gone_s": after_cut_s(marks.long_gone_ms),
        "fenced_before_expiry_s": None if gone is None or marks.long_gone_ms is None
        else round((gone - marks.long_gone_ms) / 1000, 2),
        "back_s": round((back_ms - marks.release_ms) / 1000, 2) if back else None,
        "new_lease_s": round((leases[-1][0] - marks.release_ms) / 1000, 2)
        if len(leases) > 1 else None,
        "records_lost": len(set(counts) - stored),
        "long_job_records": [f"{r.status}: {r.err.strip()}" for r in longs],
    }


async def run_cases(args: argparse.Namespace, etcd_endpoint: str, base: Path,
                    progress: Progress) -> list[dict[str, object]]:
    rounds = []
    for case in CASES:
        for n in range(args.partition_rounds):
            rounds.append(await run_round(args, etcd_endpoint, base / f"partition-{case}-{n}",
                                          progress, case))
            r = rounds[-1]
            progress.done(f"partition ({case}) round {n + 1}/{args.partition_rounds}: "
                          f"missed {r['missed']}, doubled {r['doubled']}, recovered "
                          f"{r['recovered']}/{r['its_fires_while_cut']}, records lost "
                          f"{r['records_lost']}")
    return rounds


def _s(value: object) -> str:
    return "-" if value is None else f"{value}"


def report(rounds: list[dict]) -> list[str]:
    if not rounds:
        return []
    lines = ["", f"Partition (3 workers, {rounds[0]['jobs']} fires/s, one cut off from etcd "
             f"by a proxy; session TTL {rounds[0]['session_ttl_s']} s; times in s after the "
             "cut, or after the release for 'back' and 'new lease'):", "",
             "| case | cut s | due | ran | doubled | missed | its fires: by others / itself | "
             "takeover | recovered late p50 / max ms | lease gone | long job gone | "
             "back | new lease | records lost | long job's record |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        late = r["recovered_lateness"]
        lines.append(
            f"| {r['case']} | {r['cut_s']} | {r['due']} | {r['ran']} | {r['doubled']} | "
            f"{r['missed']} | {r['its_fires_while_cut']}: {r['recovered']} / "
            f"{r['ran_by_itself']} | {_s(r['takeover_s'])} | "
            f"{_s(late['p50_ms'] and round(late['p50_ms']))} / "
            f"{_s(late['max_ms'] and round(late['max_ms']))} | {_s(r['lease_gone_s'])} | "
            f"{_s(r['long_job_gone_s'])} | {_s(r['back_s'])} | {_s(r['new_lease_s'])} | "
            f"{r['records_lost']} | {'; '.join(r['long_job_records'])[:100]} |")
    for case in CASES:
        lines += summary(case, [r for r in rounds if r["case"] == case])
    return lines


def summary(case: str, of: list[dict]) -> list[str]:
    """Totals of the counts, median and worst of the times, over one case's rounds."""
    if not of:
        return []

    def total(key: str) -> int:
        return sum(r[key] for r in of)

    parts = [f"doubled {total('doubled')}, missed {total('missed')}, records lost "
             f"{total('records_lost')}, recovered {total('recovered')} of "
             f"{total('its_fires_while_cut')}, run by the cut-off worker while cut off "
             f"{total('ran_by_cut_while_cut')}"]
    for key in ("takeover_s", "back_s", "new_lease_s", "fenced_before_expiry_s"):
        values = [r[key] for r in of if r[key] is not None]
        if values:
            worst = min(values) if key == "fenced_before_expiry_s" else max(values)
            parts.append(f"{key} median {statistics.median(values):.2f}, worst {worst:.2f}")
    return [f"\n{case} ({len(of)} rounds): " + "; ".join(parts)]
