"""SIGTERM one of three workers mid-run, as a rolling restart does: no fire is missed,
none runs twice, none is left lost. It stops as its fires are being claimed ahead: the
fires it claimed still run (its pipeline stops before its Executor, which lets them
start and finish), the ones it no longer claims are covered by the others."""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from e2e_harness import all_records, check_fires, put_every_second, start_workers, wall_ms

pytestmark = pytest.mark.slow

JOBS = 20
NAMES = [f"job{j:02d}" for j in range(JOBS)]


async def test_a_stopping_worker_leaves_no_fire_behind(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["g0", "g1", "g2"])
        window_start = await put_every_second(etcd, ks, NAMES, "sleep 0.3")
        # Just before fires are due: claims (200 ms ahead) are in flight when it stops.
        await trio.sleep((window_start - wall_ms()) / 1000 + 3.85)
        assert cluster.workers[1].terminate() == 0, cluster.logs()
        stopped_at = wall_ms()
        await trio.sleep(5)
        window_end = (wall_ms() // 1000 - 2) * 1000
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store) if window_start <= r.plan_time < window_end]

    fires = check_fires(records, NAMES, window_start, window_end)
    assert fires.missed == []  # nothing missed
    assert fires.repeated == []  # nothing twice
    assert Counter(r.status for r in records) == Counter({RunStatus.SUCCEEDED: len(records)})
    assert "g1" not in {r.worker for r in records if r.plan_time > stopped_at + 1000}
