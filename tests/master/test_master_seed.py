"""The seed's endpoints: its envelope, its shapes, and real error answers (§11)."""

from __future__ import annotations

import json

import pytest
import trio

from cluster.presence import WorkerInfo
from cluster.store import open_store

from master_testkit import record

SEED_JOB = {"name": "job1", "command": "echo hello", "cronExpr": "*/5 * * * * * *"}


def envelope_ok(answer):
    assert answer.status == 200, answer.body
    body = answer.json
    assert set(body) == {"errno", "msg", "data"}
    assert body["errno"] == 0 and body["msg"] == "success"
    return body["data"]


def envelope_error(answer, status: int, mentions: str):
    assert answer.status == status, answer.body
    body = answer.json
    assert set(body) == {"errno", "msg", "data"}
    assert body["errno"] == status and body["data"] is None
    assert mentions in body["msg"], body["msg"]


async def test_save_list_kill_delete(master):
    data = envelope_ok(await master.post("/job/save", form={"job": json.dumps(SEED_JOB)}))
    assert data is None  # no previous job
    stored = await master.stored("job1")
    assert {k: stored[k] for k in SEED_JOB} == SEED_JOB

    changed = {**SEED_JOB, "command": "echo bye"}
    data = envelope_ok(await master.post("/job/save", form={"job": json.dumps(changed)}))
    assert data["command"] == "echo hello" and data["createdAt"] == stored["createdAt"]

    for method in ("GET", "POST"):
        listed = envelope_ok(await master.request(method, "/job/list"))
        assert listed == [{"name": "job1", "command": "echo bye",
                           "cronExpr": "*/5 * * * * * *"}]

    assert envelope_ok(await master.post("/job/kill", form={"name": "job1"})) is None
    kv = await master.etcd.get(master.keyspace.killer("job1"))
    assert json.loads(kv.value) == {} and kv.lease_id

    deleted = envelope_ok(await master.post("/job/delete", form={"name": "job1"}))
    assert deleted["command"] == "echo bye"
    assert envelope_ok(await master.get("/job/list")) == []


async def test_saving_a_job_that_never_fires_adds_a_warning_to_the_envelope(master):
    never = {"name": "past", "command": "true", "cronExpr": "0 0 0 1 1 * 2020"}
    answer = await master.post("/job/save", form={"job": json.dumps(never)})
    assert answer.status == 200, answer.body
    assert answer.json == {"errno": 0, "msg": "success", "data": None, "warnings": [
        "job 'past' will never fire: no time matches before 2100 "
        "(cronExpr '0 0 0 1 1 * 2020', timezone 'UTC')"]}
    assert (await master.stored("past"))["cronExpr"] == never["cronExpr"]


async def test_seed_job_saved_by_the_seed_master_is_listed(master):
    await master.etcd.put(master.keyspace.job("old"), json.dumps(
        {"name": "old", "command": "date", "cronExpr": "0 * * * * * *"}))
    assert envelope_ok(await master.get("/job/list")) == [
        {"name": "old", "command": "date", "cronExpr": "0 * * * * * *"}]


@pytest.mark.parametrize("form, status, mentions", [
    ({}, 400, "job: form field is required"),
    ({"job": "{not json"}, 400, "job: invalid JSON"),
    ({"job": json.dumps({"command": "x", "cronExpr": "* * * * *"})}, 400, "name: required"),
    ({"job": json.dumps({**SEED_JOB, "cronExpr": "bad"})}, 400, "cronExpr:"),
    ({"job": json.dumps({**SEED_JOB, "name": "a/b"})}, 400, "name:"),
])
async def test_save_errors(master, form, status, mentions):
    envelope_error(await master.post("/job/save", form=form), status, mentions)


async def test_other_errors(master):
    envelope_error(await master.post("/job/delete", form={"name": "nope"}), 404, "nope")
    envelope_error(await master.post("/job/kill", form={"name": "nope"}), 404, "nope")
    envelope_error(await master.post("/job/kill", form={}), 400, "name: form field")
    envelope_error(await master.post("/job/delete", form={"name": ".."}), 400, "name:")
    envelope_error(await master.get("/job/log"), 400, "name:")
    envelope_error(await master.get("/job/log?name=x&limit=0"), 400, "limit:")
    envelope_error(await master.get("/job/log?name=x&offset=-1"), 400, "offset:")
    envelope_error(await master.get("/job/list", auth=False), 401, "bearer token")
    envelope_error(await master.get("/job/save"), 405, "GET is not allowed")
    envelope_error(await master.get("/job/nothing"), 404, "/job/nothing")
    envelope_error(await master.post("/job/save", data=b'{"job": 1}',
                                     headers={"Content-Type": "application/json"}),
                   415, "application/x-www-form-urlencoded")


async def test_job_log_pages_newest_first(master):
    async with open_store(master.config.db_url) as store:
        await store.write_batch([record(f"r{i}", "job1", start=1_000 * i) for i in range(1, 6)])
        await store.write_batch([record("other", "job2", start=99_000)])
    entries = envelope_ok(await master.get("/job/log?name=job1"))
    assert [e["startTime"] for e in entries] == [5000, 4000, 3000, 2000, 1000]
    assert set(entries[0]) == {"jobName", "command", "err", "output", "planTime",
                               "scheduleTime", "startTime", "endTime"}
    page = envelope_ok(await master.get("/job/log?name=job1&offset=1&limit=2"))
    assert [e["startTime"] for e in page] == [4000, 3000]
    assert envelope_ok(await master.get("/job/log?name=none")) == []


async def test_worker_list_is_worker_ids(master):
    lease = await master.etcd.grant_lease(30)
    for worker_id in ("w-b", "w-a"):
        info = WorkerInfo(worker_id, host="h", pid=1, wall_ms=master.ctx.clock())
        await master.etcd.put(master.keyspace.worker(worker_id), info.to_bytes(),
                              lease_id=lease.id)
    for _ in range(100):
        data = envelope_ok(await master.get("/worker/list"))
        if len(data) == 2:
            break
        await trio.sleep(0.05)
    assert data == ["w-a", "w-b"]
    await master.etcd.revoke_lease(lease.id)



async def test_seed_registered_workers_are_listed_as_the_seed_master_listed_them(master):
    # The seed's worker registers /cron/workers/<its IP> with an empty value on a lease.
    lease = await master.etcd.grant_lease(30)
    await master.etcd.put(master.keyspace.worker("10.0.0.7"), b"", lease_id=lease.id)
    ours = WorkerInfo("w-a", host="h", pid=1, capacity=4, wall_ms=master.ctx.clock())
    await master.etcd.put(master.keyspace.worker("w-a"), ours.to_bytes(), lease_id=lease.id)
    with trio.fail_after(5):
        while len(data := envelope_ok(await master.get("/worker/list"))) < 2:
            await trio.sleep(0.05)
    assert data == ["10.0.0.7", "w-a"]
    answer = await master.get("/api/v1/workers")
    assert answer.status == 200, answer.body
    seed, mine = answer.json["workers"]
    now_ms = master.ctx.clock()
    assert abs(seed.pop("lastSeen") - now_ms) < 10_000
    assert seed == {"id": "10.0.0.7", "host": "10.0.0.7", "pid": None, "labels": {},
                    "version": "", "startedAt": None, "running": None, "capacity": None,
                    "wallClock": None, "skewMs": None, "seed": True, "problems": []}
    assert (mine["id"], mine["pid"], mine["capacity"], mine["seed"]) == ("w-a", 1, 4, False)
    assert isinstance(mine["skewMs"], int)
    # Its key gone with its lease: it is gone from both lists.
    await master.etcd.delete(master.keyspace.worker("10.0.0.7"))
    with trio.fail_after(5):
        while envelope_ok(await master.get("/worker/list")) != ["w-a"]:
            await trio.sleep(0.05)
    await master.etcd.revoke_lease(lease.id)
