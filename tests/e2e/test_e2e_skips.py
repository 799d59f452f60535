"""Issue 12, items 4 and 5, with real etcd, MariaDB, a master and worker processes.

A job whose selector matches no live worker: the API says ``schedulable: false`` with
the reason, no record is written for its fires (they are only counted), and a worker
that matches, started later, runs it with nothing restarted; the master announces each
change once. A ``forbid`` job that runs 10 s, due every second: ONE skipped record for
the fires that overlapped the run, its count exactly the fires due while it ran, and
the workers' metric counts every skip."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
import trio

import services
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, RunStatus, open_store
from e2e_harness import Cluster, all_records, wait_healthy, wait_registered, wall_ms

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-" + uuid.uuid4().hex
SECOND = 1000


def api(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})


async def metric(port: int, name: str, *, token: str | None = None, **labels: str) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + label_text + '}') if labels else ''} (\S+)$"
    match = re.search(pattern, text, re.M)
    assert match, f"{name} {labels} not in {text[-3000:]}"
    return float(match.group(1))


async def job_records(db_url: str, name: str) -> list[RunRecord]:
    async with open_store(db_url) as store:
        return [r for r in await all_records(store) if r.job_name == name]


async def test_a_job_no_worker_can_run_is_shown_writes_nothing_then_runs_when_one_joins(
        make_cluster, mysql_url):
    cluster: Cluster = make_cluster(mysql_url)
    port, metrics_a = services.free_port(), services.free_port()
    master = cluster.add_master(port, TOKEN)
    cluster.add_worker("za1", "--labels", "zone=a", "--metrics-port", str(metrics_a))
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(url, master)
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd, api(url) as client:
        await wait_registered(etcd, ks, {"za1"})
        saved = await client.put("/api/v1/jobs/zoned", json={
            "command": "echo ran", "cronExpr": "* * * * * *", "concurrency": "allow",
            "selector": {"zone": "b"}})
        assert saved.status_code == 201, saved.text
        job = (await client.get("/api/v1/jobs/zoned")).json()["job"]
        assert (job["schedulable"], job["reason"]) == (False, "no live worker has zone=b")
        [listed] = (await client.get("/api/v1/jobs")).json()["jobs"]
        assert (listed["schedulable"], listed["reason"]) == (False, "no live worker has zone=b")

        await trio.sleep(6.5)  # six fires or more, none of which any worker can run
        assert await job_records(mysql_url, "zoned") == []  # not one skipped record
        counted = await metric(metrics_a, "scheduler_worker_fires_skipped_total",
                               reason="unschedulable")
        assert counted >= 5, counted
        assert "job 'zoned' is unschedulable: no live worker has zone=b" in master.log_tail()

        joined_ms = wall_ms()
        cluster.add_worker("zb1", "--labels", "zone=b")  # nothing else is restarted
        await wait_registered(etcd, ks, {"zb1"})
        job = (await client.get("/api/v1/jobs/zoned")).json()["job"]
        assert (job["schedulable"], job["reason"]) == (True, None)
        with trio.fail_after(10):
            while not [r for r in await job_records(mysql_url, "zoned")
                       if r.status is RunStatus.SUCCEEDED]:
                await trio.sleep(0.3)
        records = await job_records(mysql_url, "zoned")
        assert {r.worker for r in records} == {"zb1"}
        assert all(r.status is RunStatus.SUCCEEDED and r.plan_time >= joined_ms - SECOND
                   for r in records)
        with trio.fail_after(10):  # the change back is announced once it settled
            while "job 'zoned' is schedulable again" not in master.log_tail():
                await trio.sleep(0.3)
        changes = master.log_tail(100_000)
        assert changes.count("job 'zoned' is unschedulable") == 1
        assert changes.count("job 'zoned' is schedulable again") == 1
        assert await metric(port, "scheduler_master_jobs_unschedulable", token=TOKEN) == 0
        assert await metric(port, "scheduler_master_schedulable_changes_total", token=TOKEN,
                            to="unschedulable") == 1


async def test_a_forbid_job_overlapping_its_run_keeps_one_skipped_record_per_run(
        make_cluster, mysql_url):
    cluster: Cluster = make_cluster(mysql_url)
    ports = {w: services.free_port() for w in ("f1", "f2")}
    for worker_id, port in ports.items():  # two workers: either may skip any fire
        cluster.add_worker(worker_id, "--metrics-port", str(port))
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await wait_registered(etcd, ks, set(ports))
        spec = {"name": "long", "command": "sleep 10", "cronExpr": "* * * * * *",
                "concurrency": "forbid"}
        await etcd.put(ks.job("long"), json.dumps(spec))
        # The first run, ten seconds of skips, then the second run starts.
        with trio.fail_after(40):
            while not ([r for r in await job_records(mysql_url, "long")
                        if r.status is RunStatus.SUCCEEDED]
                       and (await etcd.get_prefix(ks.running_prefix("long"))).kvs):
                await trio.sleep(0.3)
        await etcd.put(ks.job("long"), json.dumps({**spec, "paused": True}))
        with trio.fail_after(30):  # the second run ends; every record reaches the store
            while len([r for r in await job_records(mysql_url, "long")
                       if r.status is RunStatus.SUCCEEDED]) < 2:
                await trio.sleep(0.5)
        await trio.sleep(3)  # the log sinks' last batches
        records = await job_records(mysql_url, "long")
    first, second = sorted((r for r in records if r.status is RunStatus.SUCCEEDED),
                           key=lambda r: r.plan_time)[:2]
    skipped = {r.run_id: r for r in records if r.status is RunStatus.SKIPPED}
    one = skipped.pop(f"{first.run_id}.skipped")
    # Every fire between the two runs was skipped, and is in the one record: counted
    # exactly. The second run is the first fire due once the first had ended (its
    # guard goes a few ms after its end_time, so a fire due in those ms is skipped too).
    between = list(range(first.plan_time + SECOND, second.plan_time, SECOND))
    assert first.end_time - first.plan_time >= 10 * SECOND
    assert first.end_time - SECOND < second.plan_time <= first.end_time + SECOND
    assert len(between) >= 9
    assert one.skip_count == len(between)
    assert (one.first_skip_time, one.last_skip_time) == (between[0], between[-1])
    assert one.start_time is None and one.plan_time == between[0]
    # The second run's skips (until the pause) make a record of their own; nothing else.
    assert set(skipped) <= {f"{second.run_id}.skipped"}
    total = sum(r.skip_count for r in records if r.status is RunStatus.SKIPPED)
    counted = sum([await metric(p, "scheduler_worker_fires_skipped_total", reason="running")
                   for p in ports.values()])
    assert counted == total, (counted, total)
