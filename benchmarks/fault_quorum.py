"""etcd quorum lost: two of a 3-member cluster's members SIGKILLed, then restarted.

    python -m benchmarks.faults --skip kill,failover [--quorum-rounds 1]
                                [--quorum-jobs 20] [--outage-s 20]

Each round: a fresh 3-member etcd cluster on loopback (``scripts/services_etcd_cluster.py``),
two workers given all three endpoints, ``--quorum-jobs`` jobs every second with a
``startingDeadline`` of 30 s. After ``BEFORE_S`` of steady running, the two members
that do not lead are SIGKILLed at mid-second; the one left has no leader. They are
restarted ``--outage-s`` later (quorum is back as soon as the first has rejoined), and
the fleet runs ``AFTER_S`` more.

The job appends "job planned" to a file (the ledger, as in the failover case): a fire
counts as run even if its record never reached the store, so "records lost" is what
ran without a record. Reported per round, and the median over rounds:

- doubled: fires run more than once (target 0);
- missed: fires due that never ran, split into before the kill, during the outage
  (from the kill until etcd has a leader again, read from the members' own Status),
  and after it (target 0 outside the outage);
- recovered: fires run after the outage as catch-ups (``startingDeadline``; with
  ``--quorum-catch-up all``, the default here, each, at most ``MAX_CATCHUP_FIRES`` a
  job; with ``last``, the job's default, one run a job whose record counts the missed:
  ``catchup_missed_counts``), those of the outage and those dropped while the workers
  took a new session lease (fenced during the outage);
- resume: from etcd's leader being back to the first scheduled (not caught-up) start,
  and to the first catch-up start (target <= 5 s);
- detection: from the kill to the members reporting no leader;
- records lost: fires run without a record in the store (target 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import uuid
from collections import Counter
from pathlib import Path

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunTrigger

from ._records import read_records, status_counts
from ._servers import services
from ._timing import next_second_ms, sleep_until_ms, wall_ms
from ._workers import Fleet, wait_registered

BEFORE_S = 8.0
AFTER_S = 15.0
STARTING_DEADLINE_S = 30
LEADER_POLL_S = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quorum-rounds", type=int, default=1,
                        help="quorum: rounds, each with a new cluster and fleet")
    parser.add_argument("--quorum-jobs", type=int, default=20, help="quorum: jobs every second")
    parser.add_argument("--outage-s", type=float, default=20.0,
                        help="quorum: seconds from the kill of two members to their restart")
    parser.add_argument("--quorum-catch-up", choices=("all", "last"), default="all",
                        help="quorum: the jobs' catchUp (all: each missed fire runs; last: "
                             "one run a job, its record counting the missed)")


def ledger_command(path: Path) -> str:
    return f'echo "$SCHEDULER_JOB_NAME $SCHEDULER_PLAN_TIME_MS" >> {path}'


def read_ledger(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        name, _, planned = line.partition(" ")
        if planned.isdigit():
            out.append((name, int(planned)))
    return out


async def watch_leader(cluster, changes: list[tuple[int, bool | None]]) -> None:
    """(wall ms, whether a member knows a leader) at each change."""
    while True:
        state = await trio.to_thread.run_sync(cluster.knows_leader)
        if not changes or changes[-1][1] != state:
            changes.append((wall_ms(), state))
        await trio.sleep(LEADER_POLL_S)


async def run_round(args: argparse.Namespace, base: Path, progress) -> dict[str, object]:
    base.mkdir(parents=True, exist_ok=True)
    prefix = f"/faults-quorum-{uuid.uuid4().hex[:8]}/"
    ks = Keyspace(prefix)
    db_url = f"sqlite:///{base / 'quorum-runs.db'}"
    ledger = base / "ledger.txt"
    names = [f"quorum-{i:03d}" for i in range(args.quorum_jobs)]
    cluster = services().EtcdCluster(base / "etcd-cluster")
    changes: list[tuple[int, bool | None]] = []
    fleet = Fleet(cluster.etcd_arg, prefix, db_url, base / "fleet")
    fleet.base_dir.mkdir(parents=True, exist_ok=True)
    try:
        cluster.start()
        async with open_etcd(cluster.endpoints) as etcd, trio.open_nursery() as nursery:
            for name in names:
                await etcd.put(ks.job(name), json.dumps({
                    "name": name, "command": ledger_command(ledger), "cronExpr": "* * * * * *",
                    "concurrency": "allow", "startingDeadline": STARTING_DEADLINE_S,
                    "catchUp": args.quorum_catch_up}))
            workers = fleet.start(2, id_prefix="q")
            await wait_registered(etcd, ks, {w.worker_id for w in workers}, fleet)
            nursery.start_soon(watch_leader, cluster, changes)
            start_ms = next_second_ms(wall_ms(), plus_s=2)
            leader = await trio.to_thread.run_sync(cluster.wait_leader)
            await sleep_until_ms(start_ms + int(BEFORE_S * 1000) + 500)
            victims = [m for m in cluster.members if m is not leader]
            lost_ms = wall_ms()
            for victim in victims:
                cluster.kill(victim)
            progress.update(f"quorum: two members killed, {args.outage_s:.0f} s")
            await sleep_until_ms(lost_ms + int(args.outage_s * 1000))
            for victim in victims:
                await trio.to_thread.run_sync(cluster.restart, victim)
            progress.update("quorum: members restarted")
            end_ms = next_second_ms(wall_ms(), plus_s=int(AFTER_S))
            await sleep_until_ms(end_ms + 2000)
            fleet.check_alive()
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(fleet.stop)
        cluster.stop()
    records = [r for r in await read_records(db_url, since_ms=start_ms - 60_000)
               if start_ms <= r.plan_time < end_ms]
    ran = [f for f in read_ledger(ledger) if start_ms <= f[1] < end_ms]
    return {**figures(names, ran, records, changes, start_ms, end_ms, lost_ms),
            "catch_up": args.quorum_catch_up}


def figures(names: list[str], ran: list[tuple[str, int]], records: list, changes,
            start_ms: int, end_ms: int, lost_ms: int) -> dict[str, object]:
    leaderless_ms = next(at for at, state in changes if at >= lost_ms and state is False)
    leader_ms = next(at for at, state in changes if at > leaderless_ms and state)
    due = {(name, t) for name in names for t in range(start_ms, end_ms, 1000)}
    counts = Counter(ran)
    missed = due - set(counts)
    recorded = {(r.job_name, r.plan_time) for r in records}
    caught_up = [r for r in records if r.trigger is RunTrigger.CATCHUP]
    outage = [f for f in due if lost_ms <= f[1] < leader_ms]
    scheduled = sorted(r.start_time for r in records if r.start_time is not None
                       and r.start_time >= leader_ms and r.trigger is RunTrigger.SCHEDULE)
    catchup_starts = sorted(r.start_time for r in caught_up if r.start_time is not None)
    return {
        "jobs": len(names), "due": len(due), "ran": len(ran),
        "doubled": sum(n - 1 for n in counts.values() if n > 1),
        "missed_before": sum(1 for f in missed if f[1] < lost_ms),
        "missed_outage": sum(1 for f in missed if lost_ms <= f[1] < leader_ms),
        "missed_after": sum(1 for f in missed if f[1] >= leader_ms),
        "outage_fires": len(outage),
        "recovered": len(caught_up),
        # What the catch-up records say was missed (catchUp last: one record a job).
        "catchup_missed_counts": sorted(Counter(r.missed_fires for r in caught_up).items(),
                                        key=lambda kv: (kv[0] is None, kv[0] or 0)),
        "outage_s": round((leader_ms - lost_ms) / 1000, 2),
        "no_leader_after_kill_s": round((leaderless_ms - lost_ms) / 1000, 2),
        "resume_s": round((scheduled[0] - leader_ms) / 1000, 2) if scheduled else None,
        "first_catchup_s": round((catchup_starts[0] - leader_ms) / 1000, 2) if catchup_starts else None,
        "records_lost": sum(1 for f in counts if f not in recorded),
        "record_statuses": status_counts(records),
    }


async def run_quorum(args: argparse.Namespace, base: Path, progress) -> dict[str, object]:
    rounds = []
    for n in range(args.quorum_rounds):
        rounds.append(await run_round(args, base / f"quorum-{n}", progress))
        r = rounds[-1]
        progress.done(f"quorum round {n + 1}/{args.quorum_rounds}: doubled {r['doubled']}, missed "
                      f"in the outage {r['missed_outage']} of {r['outage_fires']}, recovered "
                      f"{r['recovered']}, resume {r['resume_s']} s, records lost {r['records_lost']}")
    return {"rounds": rounds, "median": {
        key: statistics.median(r[key] for r in rounds)
        for key in ("doubled", "missed_before", "missed_outage", "missed_after", "recovered",
                    "outage_fires", "outage_s", "no_leader_after_kill_s", "resume_s",
                    "first_catchup_s", "records_lost")
        if all(r[key] is not None for r in rounds)}}


def quorum_report(result: dict | None) -> list[str]:
    if not result:
        return []
    rounds, median = result["rounds"], result["median"]
    cols = ("doubled", "missed_before", "missed_outage", "outage_fires", "recovered",
            "missed_after", "outage_s", "no_leader_after_kill_s", "resume_s", "first_catchup_s",
            "records_lost")
    lines = ["", f"Quorum loss (3-member etcd, two members SIGKILLed and restarted; 2 workers, "
             f"{rounds[0]['jobs']} jobs every second, startingDeadline {STARTING_DEADLINE_S} s, "
             f"catchUp {rounds[0].get('catch_up', 'all')}):",
             "", "| round | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(str(r[c]) for c in cols) + " |"
              for n, r in enumerate(rounds, 1)]
    lines.append("| median | " + " | ".join(str(median.get(c, "-")) for c in cols) + " |")
    return lines
