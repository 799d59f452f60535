"""Kill on demand, on timeout and on deletion: the whole process group, within a second."""

from __future__ import annotations

import json
import uuid

import pytest
import trio

from cluster.etcd import Etcd, open_etcd
from cluster.keyspace import Keyspace, encode_kill_value
from cluster.store import RunRecord, RunStatus, open_store
from e2e_harness import group_members, pids_with_cmdline, put_job, wait_registered

pytestmark = pytest.mark.slow


async def start_run(etcd: Etcd, ks: Keyspace, name: str, marker: str) -> tuple[str, int]:
    """Ask for a manual run; return its run id and the pid of its bash."""
    run_id = uuid.uuid4().hex
    await etcd.put(ks.trigger(name, run_id), json.dumps({"requestedBy": "test"}))
    with trio.fail_after(10):
        while not (await etcd.get_prefix(ks.running_prefix(name))).kvs:
            await trio.sleep(0.05)
        while not (pids := [p for p in pids_with_cmdline(marker) if group_members(p)]):
            await trio.sleep(0.05)
    [bash] = [p for p in pids if p in group_members(p)]
    with trio.fail_after(5):
        while len(group_members(bash)) < 2:  # bash and its sleep
            await trio.sleep(0.05)
    return run_id, bash


async def gone_within(bash: int, seconds: float) -> float:
    start = trio.current_time()
    with trio.fail_after(seconds):
        while group_members(bash):
            await trio.sleep(0.01)
    return trio.current_time() - start


async def record_of(db_url: str, run_id: str) -> RunRecord:
    async with open_store(db_url) as store:
        with trio.fail_after(15):
            while (record := await store.get(run_id)) is None:
                await trio.sleep(0.2)
    return record


@pytest.fixture
async def one_worker(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url, "--kill-grace-s", "1")
    cluster.add_worker("k1")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await wait_registered(etcd, ks, {"k1"})
        yield etcd, ks, cluster


async def test_a_kill_request_kills_bash_and_its_children(one_worker, mysql_url):
    etcd, ks, _ = one_worker
    marker = uuid.uuid4().hex
    await put_job(etcd, ks, "sleeper", f"sleep 300; echo done {marker}", "@yearly")
    run_id, bash = await start_run(etcd, ks, "sleeper", marker)
    await etcd.put(ks.killer("sleeper"), encode_kill_value(run_id))
    await gone_within(bash, 1.0)
    record = await record_of(mysql_url, run_id)
    assert record.status is RunStatus.KILLED
    assert "done" not in record.output


async def test_the_seed_plain_kill_value_kills_every_run_of_the_job(one_worker, mysql_url):
    etcd, ks, _ = one_worker
    marker = uuid.uuid4().hex
    await put_job(etcd, ks, "seedkill", f"sleep 300; echo {marker}", "@yearly")
    run_id, bash = await start_run(etcd, ks, "seedkill", marker)
    await etcd.put(ks.killer("seedkill"), b"kill")
    await gone_within(bash, 1.0)
    assert (await record_of(mysql_url, run_id)).status is RunStatus.KILLED


async def test_a_timeout_kills_the_group_and_says_timeout(one_worker, mysql_url):
    etcd, ks, _ = one_worker
    marker = uuid.uuid4().hex
    await put_job(etcd, ks, "slow", f"sleep 300; echo done {marker}", "@yearly", timeout=2)
    run_id, bash = await start_run(etcd, ks, "slow", marker)
    await gone_within(bash, 5.0)
    record = await record_of(mysql_url, run_id)
    assert record.status is RunStatus.TIMEOUT
    assert 2_000 <= record.end_time - record.start_time <= 4_000


async def test_deleting_a_running_job_kills_it(one_worker, mysql_url):
    etcd, ks, _ = one_worker
    marker = uuid.uuid4().hex
    await put_job(etcd, ks, "doomed", f"sleep 300; echo {marker}", "@yearly")
    run_id, bash = await start_run(etcd, ks, "doomed", marker)
    await etcd.delete(ks.job("doomed"))
    await gone_within(bash, 1.5)
    record = await record_of(mysql_url, run_id)
    assert record.status is RunStatus.KILLED and "deleted" in record.err
