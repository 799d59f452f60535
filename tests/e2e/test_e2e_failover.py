"""SIGKILL one of three workers mid-run: no fire is missed, its runs become lost."""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from e2e_harness import all_records, put_job, wait_registered, wall_ms

pytestmark = pytest.mark.slow

JOBS = 10
TTL_S = 3


async def test_a_dead_worker_misses_no_fire_and_its_runs_are_lost(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url, "--session-ttl-s", str(TTL_S))
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        for i in range(3):
            cluster.add_worker(f"f{i}")
        await wait_registered(etcd, ks, {"f0", "f1", "f2"})
        for j in range(JOBS):
            await put_job(etcd, ks, f"job{j}", "sleep 2.5", "* * * * * *", concurrency="allow")
        window_start = (wall_ms() // 1000 + 2) * 1000
        await trio.sleep((window_start - wall_ms()) / 1000 + 5.5)
        victim = cluster.workers[1]
        killed_at = wall_ms()
        victim.kill()
        await trio.sleep(TTL_S + 8)
        window_end = (wall_ms() // 1000 - 3) * 1000  # last fires may still be running
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store) if window_start <= r.plan_time < window_end]

    per_fire = Counter((r.job_name, r.plan_time) for r in records)
    expected = {(f"job{j}", t) for j in range(JOBS) for t in range(window_start, window_end, 1000)}
    assert sorted(expected - set(per_fire)) == []  # nothing missed
    assert [k for k, n in per_fire.items() if n > 1] == []
    lost = [r for r in records if r.status is RunStatus.LOST]
    assert lost, "the victim had runs in progress: they must be recorded as lost"
    assert {r.worker for r in lost} == {"f1"}
    assert all(r.end_time - killed_at <= (TTL_S + 5) * 1000 for r in lost)
    after_kill = [r for r in records if r.plan_time > killed_at + 1000]
    assert "f1" not in {r.worker for r in after_kill}
    assert {r.status for r in records} <= {RunStatus.SUCCEEDED, RunStatus.LOST}
