"""SIGKILL one of three workers mid-run: no fire is missed, its runs become lost."""

from __future__ import annotations


import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from e2e_harness import all_records, check_fires, put_every_second, start_workers, wall_ms

pytestmark = pytest.mark.slow

JOBS = 10
NAMES = [f"job{j}" for j in range(JOBS)]
TTL_S = 3


async def test_a_dead_worker_misses_no_fire_and_its_runs_are_lost(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url, "--session-ttl-s", str(TTL_S))
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["f0", "f1", "f2"])
        window_start = await put_every_second(etcd, ks, NAMES, "sleep 2.5")
        await trio.sleep((window_start - wall_ms()) / 1000 + 5.5)
        victim = cluster.workers[1]
        killed_at = wall_ms()
        victim.kill()
        await trio.sleep(TTL_S + 8)
        window_end = (wall_ms() // 1000 - 3) * 1000  # last fires may still be running
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store) if window_start <= r.plan_time < window_end]

    fires = check_fires(records, NAMES, window_start, window_end)
    assert fires.missed == []  # nothing missed
    assert fires.repeated == []
    lost = [r for r in records if r.status is RunStatus.LOST]
    assert lost, "the victim had runs in progress: they must be recorded as lost"
    assert {r.worker for r in lost} == {"f1"}
    assert all(r.end_time - killed_at <= (TTL_S + 5) * 1000 for r in lost)
    after_kill = [r for r in records if r.plan_time > killed_at + 1000]
    assert "f1" not in {r.worker for r in after_kill}
    assert {r.status for r in records} <= {RunStatus.SUCCEEDED, RunStatus.LOST}
