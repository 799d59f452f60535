"""Three worker processes, thirty jobs every second: every fire runs exactly once."""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from e2e_harness import all_records, check_fires, put_every_second, start_workers, wall_ms

pytestmark = pytest.mark.slow

JOBS = 30
NAMES = [f"job{j:02d}" for j in range(JOBS)]
WINDOW_S = 20


async def test_every_fire_runs_exactly_once_and_the_load_is_shared(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["w0", "w1", "w2"])
        window_start = await put_every_second(etcd, ks, NAMES, "echo fired")
        window_end = window_start + WINDOW_S * 1000
        await trio.sleep((window_end - wall_ms()) / 1000 + 1.5)
        for worker in cluster.workers:
            assert worker.alive(), cluster.logs()
        cluster.stop_all()  # SIGTERM: each flushes its sink before exiting
        assert all(w.process.returncode == 0 for w in cluster.workers), cluster.logs()
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store) if window_start <= r.plan_time < window_end]

    fires = check_fires(records, NAMES, window_start, window_end)
    assert fires.unexpected == set()
    assert fires.missed == []  # no gaps
    assert fires.repeated == []  # no duplicates
    assert {r.status for r in records} == {RunStatus.SUCCEEDED}
    assert all(r.output == "fired\n" for r in records)
    shares = Counter(r.worker for r in records)
    for worker_id in ("w0", "w1", "w2"):
        assert 0.20 <= shares[worker_id] / len(records) <= 0.47, shares
