"""The whole fleet down for a while, then back: ``catchUp: last`` runs each job once
for every fire it missed (the record counts them and names the first), ``catchUp:
all`` runs each missed fire, in order; nothing runs twice and scheduling resumes
without a gap. Real etcd, MariaDB and worker processes; the times the test records
(the last fire before the stop, from the store and ``state/``) are the ground truth."""

from __future__ import annotations

from collections import Counter

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire
from cluster.store import RunStatus, RunTrigger, open_store
from e2e_harness import all_records, put_job, start_workers, wall_ms


DOWN_S = 8
DEADLINE_S = 30
IDS = ["c0", "c1"]


async def test_fleet_down_then_back_last_runs_once_all_runs_each(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, IDS)
        for name, catch_up in (("last", "last"), ("all", "all")):
            await put_job(etcd, ks, name, "echo ok", "* * * * * *", concurrency="allow",
                          startingDeadline=DEADLINE_S, catchUp=catch_up)
        await trio.sleep(4)
        for worker in list(cluster.workers):
            assert worker.terminate() == 0, cluster.logs()
        down_ms = wall_ms()
        state = {name: LastFire.from_bytes((await etcd.get(ks.state(name))).value).cursor_ms
                 for name in ("last", "all")}
        await trio.sleep(DOWN_S)
        back_ms = wall_ms()
        cluster.workers.clear()
        await start_workers(cluster, etcd, ks, IDS)
        await trio.sleep(6)
        end_ms = (wall_ms() // 1000 - 2) * 1000
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = await all_records(store)

    assert {r.status for r in records} == {RunStatus.SUCCEEDED}
    assert not [k for k, n in Counter((r.job_name, r.plan_time) for r in records).items()
                if n > 1]  # nothing twice
    for name in ("last", "all"):
        # Scheduled before the stop (down_ms is read once both have exited: on a slow
        # machine a second later, whose fire is then one of the caught-up).
        before = [r for r in records if r.job_name == name and r.plan_time <= down_ms
                  and r.trigger is RunTrigger.SCHEDULE]
        last_ms = max(r.plan_time for r in before)
        assert state[name] == last_ms  # state/<name>: the last fire before the stop
        caught = sorted((r for r in records if r.job_name == name
                         and r.trigger is RunTrigger.CATCHUP), key=lambda r: r.plan_time)
        assert caught, f"{name}: nothing caught up"
        newest_ms = caught[-1].plan_time
        # Missed: every second after the last fire, up to the catch-up's own time; at
        # least the time the fleet was down, no more than it plus the restart.
        missed = (newest_ms - last_ms) // 1000
        assert DOWN_S <= missed <= (wall_ms() - down_ms) // 1000, (name, missed)
        assert back_ms - 1000 <= newest_ms <= back_ms + 10_000
        assert {(r.missed_fires, r.first_missed) for r in caught} == {(missed, last_ms + 1000)}
        # Scheduling resumes with the next second, and misses none until the end.
        scheduled = sorted(r.plan_time for r in records if r.job_name == name
                           and r.trigger is RunTrigger.SCHEDULE and last_ms < r.plan_time <= end_ms)
        assert scheduled == list(range(newest_ms + 1000, end_ms + 1000, 1000))
        print(f"{name}: last fire before the stop {last_ms}, down {DOWN_S} s, "
              f"{len(caught)} catch-up runs for {missed} missed fires")
        if name == "last":
            assert len(caught) == 1  # once, however many were missed
            assert [r.plan_time for r in records if r.job_name == name
                    and last_ms < r.plan_time < newest_ms] == []
        else:
            assert [r.plan_time for r in caught] == list(range(last_ms + 1000, newest_ms + 1, 1000))
            # In order: claimed oldest first, and started so; they do not wait for one
            # another (allow), and two workers share them, so within a few ms.
            starts = [r.start_time for r in caught]
            assert all(b >= a - 50 for a, b in zip(starts, starts[1:])), starts
            assert starts[-1] - starts[0] < 2000, starts
