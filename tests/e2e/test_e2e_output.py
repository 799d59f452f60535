"""A failing job with 1 MiB of output: capped, flagged, and its batch is not lost."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from e2e_harness import all_records, put_job, wait_registered, wall_ms

pytestmark = pytest.mark.slow


async def test_oversize_output_is_capped_and_its_batch_survives(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    cluster.add_worker("o1")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await wait_registered(etcd, ks, {"o1"})
        await put_job(etcd, ks, "big", "head -c 1048576 /dev/zero | tr '\\0' a; echo oops >&2; exit 3",
                      "*/2 * * * * *", concurrency="allow")
        for j in range(20):
            await put_job(etcd, ks, f"small{j:02d}", f"echo {j}", "*/2 * * * * *", concurrency="allow")
        all_saved = wall_ms()  # fires before this may lack the jobs saved after them
        await trio.sleep(7)
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = await all_records(store)
    big = [r for r in records if r.job_name == "big"]
    assert len(big) >= 2
    for r in big:
        assert r.status is RunStatus.FAILED and r.exit_code == 3
        assert r.output == "a" * 65536 and r.output_truncated
        assert r.err == "oops\n"
    fire_times = {r.plan_time for r in big if r.plan_time > all_saved + 500}
    assert fire_times, "no fire of the big job after every job was saved"
    for t in fire_times:  # every small job that fired with it was written too
        assert {r.job_name for r in records if r.plan_time == t} >= {f"small{j:02d}" for j in range(20)}
