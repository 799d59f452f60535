"""Chains through /api/v1 against real etcd: cycles refused with 422, downstream shown."""

from __future__ import annotations

import json

CRON = {"command": "true", "cronExpr": "*/5 * * * *"}


async def test_a_cycle_is_refused_with_422_and_nothing_is_written(master):
    assert (await master.put("/api/v1/jobs/a", json=CRON)).status == 201
    b = await master.put("/api/v1/jobs/b", json={"command": "true", "after": {"job": "a"}})
    assert b.status == 201
    c = await master.put("/api/v1/jobs/c", json={**CRON, "after": {"job": "b", "on": "failed"}})
    assert c.status == 201

    cycle = await master.put("/api/v1/jobs/a", json={**CRON, "after": {"job": "c"}})
    assert cycle.status == 422
    assert cycle.json["error"]["code"] == "chain_cycle"
    assert cycle.json["error"]["field"] == "after"
    assert cycle.json["error"]["message"] == (
        "chain cycle a → c → b → a: job 'a' would run after a job that runs after it")
    assert "after" not in await master.stored("a")

    own = await master.put("/api/v1/jobs/a", json={**CRON, "after": {"job": "a"}})
    assert own.status == 422 and own.json["error"]["message"] == "job 'a' cannot run after itself"


async def test_a_chain_to_a_job_not_saved_yet_is_accepted(master):
    early = await master.put("/api/v1/jobs/later", json={**CRON, "after": {"job": "first"}})
    assert early.status == 201 and early.json["job"]["after"] == {"job": "first", "on": "succeeded"}
    # Closing the loop through the job saved later is still caught.
    loop = await master.put("/api/v1/jobs/first", json={**CRON, "after": {"job": "later"}})
    assert loop.status == 422


async def test_a_job_shows_its_downstream_jobs_and_a_chained_job_without_cron(master):
    await master.put("/api/v1/jobs/a", json=CRON)
    await master.put("/api/v1/jobs/on-ok", json={"command": "true", "after": {"job": "a"}})
    await master.put("/api/v1/jobs/on-any",
                     json={**CRON, "after": {"job": "a", "on": "completed"}})
    a = (await master.get("/api/v1/jobs/a")).json["job"]
    assert a["downstream"] == [{"job": "on-any", "on": "completed"},
                               {"job": "on-ok", "on": "succeeded"}]
    listed = {j["name"]: j for j in (await master.get("/api/v1/jobs")).json["jobs"]}
    assert listed["a"]["downstream"] == a["downstream"]
    chained = listed["on-ok"]
    assert chained["cronExpr"] == "" and chained["nextFire"] is None
    assert chained["schedulable"] is True and chained["downstream"] == []
    assert chained["reason"] == "no cronExpr: runs only after job 'a'"


async def test_deleting_a_job_drops_its_pending_chained_runs(master):
    await master.put("/api/v1/jobs/a", json=CRON)
    await master.put("/api/v1/jobs/b", json={"command": "true", "after": {"job": "a"}})
    ks = master.keyspace
    await master.etcd.put(ks.trigger("b", "c" * 32), b'{"requestedAt":1,"after":{}}')
    await master.etcd.put(ks.trigger("a", "d" * 32), b'{"requestedAt":1}')
    assert (await master.delete("/api/v1/jobs/b")).status == 200
    assert not (await master.etcd.get_prefix(ks.trigger_prefix_of("b"))).kvs
    assert len((await master.etcd.get_prefix(ks.trigger_prefix_of("a"))).kvs) == 1


async def test_the_seed_save_refuses_a_self_chain_in_its_envelope(master):
    job = json.dumps({"name": "s", "command": "true", "after": {"job": "s"}})
    answer = await master.post("/job/save", form={"job": job})
    assert answer.status == 422
    assert answer.json == {"errno": 422, "msg": "job 's' cannot run after itself", "data": None}
    assert await master.stored("s") is None
