"""MariaDB down for 30 s while jobs fire: afterwards every run is in the table once."""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import open_store
from e2e_harness import all_records, put_job, wait_registered, wall_ms

pytestmark = pytest.mark.slow

JOBS = 10
OUTAGE_S = 30


async def test_runs_during_a_database_outage_are_all_written_once(make_cluster, mariadb_factory):
    server = mariadb_factory()
    db_url = server.url()
    # A small memory bound so that the outage also exercises the spill file.
    cluster = make_cluster(db_url, "--sink-memory-records", "100", "--job-log-batch-size", "50")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        cluster.add_worker("d0")
        cluster.add_worker("d1")
        await wait_registered(etcd, ks, {"d0", "d1"})
        for j in range(JOBS):
            await put_job(etcd, ks, f"job{j}", "echo x", "* * * * * *", concurrency="allow")
        window_start = (wall_ms() // 1000 + 2) * 1000
        await trio.sleep((window_start - wall_ms()) / 1000 + 5)
        server.stop()
        await trio.sleep(OUTAGE_S)
        server.start()
        await trio.sleep(8)
        window_end = (wall_ms() // 1000 - 1) * 1000
        cluster.stop_all()
        assert all(w.process.returncode == 0 for w in cluster.workers), cluster.logs()
    async with open_store(db_url) as store:
        records = [r for r in await all_records(store) if window_start <= r.plan_time < window_end]
    per_fire = Counter((r.job_name, r.plan_time) for r in records)
    expected = {(f"job{j}", t) for j in range(JOBS) for t in range(window_start, window_end, 1000)}
    assert len(expected) >= JOBS * (OUTAGE_S + 10)
    assert sorted(expected - set(per_fire)) == []
    assert [k for k, n in per_fire.items() if n > 1] == []
