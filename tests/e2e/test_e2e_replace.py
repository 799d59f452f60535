"""Concurrency ``replace`` with real workers: the old run dies as a whole process group,
is recorded ``replaced`` (a status of its own), and only then does the new one start; never two at once.

Ground truth is the job's own ledger: each run appends ``start`` (with how many
processes of an earlier run are still alive, read from /proc by ``pgrep``) and, when
SIGTERM reaches it, ``end``, each with a timestamp. Its child ignores SIGTERM, so only
the worker's SIGKILL of the whole group ends it.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, RunTrigger, open_store
from e2e_harness import all_records, pids_with_cmdline, put_job, start_workers, wall_ms

pytestmark = pytest.mark.slow

EVERY_S = 3
WINDOW_S = 15


def ledger_command(ledger: Path, marker: str) -> str:
    """Appends start/end lines; its child (``sleep 1000.<marker>``) ignores SIGTERM."""
    child = f"sleep 1000.{marker}"
    line = f'"$SCHEDULER_RUN_ID $(date +%s.%N)"'
    return (
        f"alive=$(pgrep -fc '^{child}$'); "
        f"echo \"start {line[1:-1]} $alive\" >> {ledger}; "
        f"trap 'echo \"end {line[1:-1]}\" >> {ledger}; exit 143' TERM; "
        f"(trap '' TERM; exec {child}) & wait"
    )


def read_ledger(ledger: Path) -> list[tuple[str, str, float, int]]:
    """(kind, run id, time s, old processes alive at the start, or -1 for an end)."""
    rows = []
    for line in ledger.read_text().splitlines():
        kind, run_id, at, *alive = line.split()
        rows.append((kind, run_id, float(at), int(alive[0]) if alive else -1))
    return rows


async def test_replace_kills_the_old_group_before_the_new_run_starts(
        make_cluster, mysql_url, tmp_path):
    marker = str(uuid.uuid4().int)[:12]
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    cluster = make_cluster(mysql_url, "--kill-grace-s", "1")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["rp1", "rp2"])
        put_ms = wall_ms()
        await put_job(etcd, ks, "swap", ledger_command(ledger, marker),
                      f"*/{EVERY_S} * * * * *", concurrency="replace")
        await trio.sleep(WINDOW_S)
        # Midway between two fires: a deletion just after a fire would kill its run
        # before its command wrote its start line (the record is right, the ledger short).
        await trio.sleep(((EVERY_S * 1500 - wall_ms()) % (EVERY_S * 1000)) / 1000)
        await etcd.delete(ks.job("swap"))  # the last run is killed as deleted
        with trio.fail_after(10):
            while pids_with_cmdline(f"sleep 1000.{marker}"):
                await trio.sleep(0.1)
        with trio.fail_after(20):
            while (await etcd.get_prefix(ks.running_prefix("swap"))).kvs:
                await trio.sleep(0.2)
    async with open_store(mysql_url) as store:
        records = sorted((r for r in await all_records(store) if r.job_name == "swap"),
                         key=lambda r: r.plan_time)
    rows = read_ledger(ledger)

    # Every fire ran once (none skipped: each one replaced its predecessor).
    fires = [r.plan_time for r in records]
    assert len(fires) >= WINDOW_S // EVERY_S - 1, records
    assert len(set(fires)) == len(fires)
    assert all(r.trigger is RunTrigger.SCHEDULE and r.plan_time > put_ms for r in records)
    assert [r.status for r in records if r.status is RunStatus.SKIPPED] == []
    # The ledger: a start, then its end, then the next start; never two runs at once.
    starts = [(run_id, at, alive) for kind, run_id, at, alive in rows if kind == "start"]
    assert [run_id for run_id, _, _ in starts] == [r.run_id for r in records]
    assert [alive for _, _, alive in starts] == [0] * len(starts)  # no old child left
    order = [(kind, run_id) for kind, run_id, _, _ in rows]
    assert order == [(kind, r.run_id) for r in records for kind in ("start", "end")]
    times = [at for _, _, at, _ in rows]
    assert times == sorted(times)
    # Each run but the last was replaced by the next; the last was killed as deleted.
    for old, new in zip(records, records[1:]):
        assert old.status is RunStatus.REPLACED, old
        assert re.search(rf"replaced by run {new.run_id}\b", old.err), old.err
        assert old.end_time <= new.start_time
    assert records[-1].status is RunStatus.KILLED and "deleted" in records[-1].err
