"""Jobs through /api/v1 against real etcd: what each call answers and what it writes."""

from __future__ import annotations

import json

import trio

from cluster.presence import RunningInfo
from cluster.spec import JobSpec

SPEC = {"command": "echo hi", "cronExpr": "*/5 * * * *"}


async def test_save_get_list_delete_round_trip(master):
    created = await master.put("/api/v1/jobs/backup", json=SPEC)
    assert created.status == 201
    job = created.json["job"]
    assert created.json["previous"] is None
    assert job["name"] == "backup" and job["command"] == "echo hi"
    assert job["running"] == [] and isinstance(job["nextFire"], int)
    assert job["nextFire"] % 300_000 == 0  # */5 minutes, UTC

    stored = await master.stored("backup")
    # The stored form leaves out a null user, null alerts and the default catchUp (older
    # workers reject unknown keys).
    assert job["user"] is None and job["alerts"] is None and job["catchUp"] == "last"
    assert job["schedulable"] is True and job["reason"] is None
    assert created.json["warnings"] == []
    assert job["describe"] == "every 5 minutes"
    view_only = ("nextFire", "schedulable", "reason", "running", "user", "after", "downstream",
                 "alerts", "catchUp", "describe")
    assert stored == {k: v for k, v in job.items() if k not in view_only}
    assert JobSpec.from_json(stored).created_at_ms == job["createdAt"]

    got = await master.get("/api/v1/jobs/backup")
    assert got.status == 200 and got.json["job"] == job

    await master.put("/api/v1/jobs/another", json=SPEC)
    listed = await master.get("/api/v1/jobs")
    assert [j["name"] for j in listed.json["jobs"]] == ["another", "backup"]
    # No run yet, and the store answered: no last run, and no error about it.
    assert [j["lastRun"] for j in listed.json["jobs"]] == [None, None]
    assert listed.json["lastRunsError"] is None
    assert {k: v for k, v in listed.json["jobs"][1].items() if k != "lastRun"} == job

    deleted = await master.delete("/api/v1/jobs/backup")
    assert deleted.status == 200 and deleted.json["job"] == {**stored, "user": None, "after": None,
                                                             "alerts": None, "catchUp": "last"}
    assert await master.stored("backup") is None
    assert (await master.get("/api/v1/jobs/backup")).status == 404
    assert (await master.delete("/api/v1/jobs/backup")).status == 404


async def test_update_keeps_created_at_and_every_anchor(master):
    first = await master.put("/api/v1/jobs/tick", json={"command": "true",
                                                        "cronExpr": "@every 7s"})
    anchor = first.json["job"]["createdAt"]
    assert (first.json["job"]["nextFire"] - anchor) % 7_000 == 0

    await trio.sleep(0.05)  # a later save must not move the anchor
    second = await master.put("/api/v1/jobs/tick", json={
        "name": "tick", "command": "echo changed", "cronExpr": "@every 7s",
        "createdAt": 12345})  # a client's createdAt never overrides the stored one
    assert second.status == 200
    assert second.json["job"]["createdAt"] == anchor
    assert second.json["job"]["command"] == "echo changed"
    assert second.json["previous"]["command"] == "true"
    assert second.json["previous"]["createdAt"] == anchor
    assert (await master.stored("tick"))["createdAt"] == anchor
    assert (second.json["job"]["nextFire"] - anchor) % 7_000 == 0


async def test_new_job_keeps_a_given_created_at(master):
    saved = await master.put("/api/v1/jobs/restored", json={**SPEC, "createdAt": 1_000})
    assert saved.status == 201 and saved.json["job"]["createdAt"] == 1_000


async def test_seed_job_without_created_at_stays_without_it(master):
    # Written by the seed's master: three fields only; saving must not invent an anchor.
    key = master.keyspace.job("legacy")
    await master.etcd.put(key, json.dumps({"name": "legacy", "command": "true",
                                           "cronExpr": "@every 10s"}))
    saved = await master.put("/api/v1/jobs/legacy", json={"command": "false",
                                                          "cronExpr": "@every 10s"})
    assert saved.status == 200 and saved.json["job"]["createdAt"] is None


async def test_time_zone_shapes_next_fire(master):
    saved = await master.put("/api/v1/jobs/tz", json={"command": "true",
                                                      "cronExpr": "0 9 * * *",
                                                      "timezone": "Asia/Tokyo"})
    next_fire = saved.json["job"]["nextFire"]
    assert (next_fire // 1000 + 9 * 3600) % 86_400 == 9 * 3600  # 09:00 JST = 00:00 UTC


async def test_kill_writes_killer_key_on_a_lease(master):
    await master.put("/api/v1/jobs/k", json=SPEC)
    everything = await master.post("/api/v1/jobs/k/kill")
    assert everything.status == 202 and everything.json == {"job": "k", "runId": None}
    kv = await master.etcd.get(master.keyspace.killer("k"))
    assert json.loads(kv.value) == {} and kv.lease_id != 0
    assert 20 <= await master.etcd.lease_ttl(kv.lease_id) <= 30

    one = await master.post("/api/v1/jobs/k/kill", json={"runId": "abc123"})
    assert one.status == 202 and one.json == {"job": "k", "runId": "abc123"}
    kv = await master.etcd.get(master.keyspace.killer("k"))
    assert json.loads(kv.value) == {"runId": "abc123"}


async def test_run_now_writes_trigger_key_on_a_lease(master):
    await master.put("/api/v1/jobs/r", json=SPEC)
    before = master.ctx.clock()
    answer = await master.post("/api/v1/jobs/r/run")
    assert answer.status == 202
    run_id = answer.json["runId"]
    assert answer.json["job"] == "r" and run_id
    kv = await master.etcd.get(master.keyspace.trigger("r", run_id))
    assert before <= json.loads(kv.value)["requestedAt"] <= master.ctx.clock()
    assert 50 <= await master.etcd.lease_ttl(kv.lease_id) <= 60
    second = await master.post("/api/v1/jobs/r/run")
    assert second.json["runId"] != run_id


async def test_pause_and_resume_flip_the_stored_spec(master):
    await master.put("/api/v1/jobs/p", json=SPEC)
    paused = await master.post("/api/v1/jobs/p/pause")
    assert paused.status == 200
    assert paused.json["job"]["paused"] is True and paused.json["job"]["nextFire"] is None
    assert paused.json["job"]["reason"] == "paused" and paused.json["job"]["schedulable"]
    assert (await master.stored("p"))["paused"] is True
    again = await master.post("/api/v1/jobs/p/pause")  # idempotent
    assert again.status == 200 and again.json["job"]["paused"] is True
    resumed = await master.post("/api/v1/jobs/p/resume")
    assert resumed.json["job"]["paused"] is False and resumed.json["job"]["reason"] is None
    assert isinstance(resumed.json["job"]["nextFire"], int)
    assert (await master.stored("p"))["paused"] is False


async def test_actions_on_a_missing_job_are_404_and_write_nothing(master):
    for action in ("kill", "run", "pause", "resume"):
        answer = await master.post(f"/api/v1/jobs/ghost/{action}")
        assert answer.status == 404, action
        assert answer.error["code"] == "not_found" and "ghost" in answer.error["message"]
    assert await master.etcd.get(master.keyspace.killer("ghost")) is None
    snapshot = await master.etcd.get_prefix(master.keyspace.trigger_prefix)
    assert snapshot.kvs == ()


async def test_job_view_lists_running_instances(master):
    await master.put("/api/v1/jobs/busy", json=SPEC)
    info = RunningInfo("run-1", "busy", "w1", planned_ms=1000, attempt=2, trigger="retry",
                       started_ms=2000)
    await master.etcd.put(master.keyspace.running("busy", "run-1"), info.to_bytes())
    view = (await master.get("/api/v1/jobs/busy")).json["job"]
    assert view["running"] == [{"runId": "run-1", "worker": "w1", "startTime": 2000,
                                "attempt": 2, "trigger": "retry"}]
    listed = (await master.get("/api/v1/jobs")).json["jobs"]
    assert listed[0]["running"] == view["running"]


async def test_invalid_stored_job_is_a_conflict_not_a_crash(master):
    await master.etcd.put(master.keyspace.job("broken"), b"{not json")
    await master.put("/api/v1/jobs/fine", json=SPEC)
    got = await master.get("/api/v1/jobs/broken")
    assert got.status == 409 and "not a valid spec" in got.error["message"]
    assert [j["name"] for j in (await master.get("/api/v1/jobs")).json["jobs"]] == ["fine"]
    # Saving a valid spec over it repairs it; deleting it works too.
    repaired = await master.put("/api/v1/jobs/broken", json=SPEC)
    assert repaired.status == 200 and repaired.json["previous"] is None
    assert (await master.delete("/api/v1/jobs/broken")).status == 200


async def test_concurrent_saves_all_land(master):
    async def save(i: int) -> None:
        answer = await master.put("/api/v1/jobs/race", json={**SPEC, "command": f"echo {i}"})
        assert answer.status in (200, 201, 409)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(save, i)
    stored = await master.stored("race")
    assert stored["command"].startswith("echo ")
    assert master.ctx.metrics.value("job_saves_total", result="created") == 1


# --------------------------------------------------------------------------- no future fire

NEVER = {"command": "true", "cronExpr": "0 0 0 1 1 * 2020"}
NEVER_REASON = "no time matches before 2100"


async def test_a_job_that_can_never_fire_says_so_and_saving_it_warns(master):
    saved = await master.put("/api/v1/jobs/past", json=NEVER)
    assert saved.status == 201  # saved all the same: it may be edited later
    job = saved.json["job"]
    assert (job["nextFire"], job["schedulable"], job["reason"]) == (None, False, NEVER_REASON)
    assert saved.json["warnings"] == [
        "job 'past' will never fire: no time matches before 2100 "
        "(cronExpr '0 0 0 1 1 * 2020', timezone 'UTC')"]
    assert (await master.stored("past"))["cronExpr"] == NEVER["cronExpr"]

    got = (await master.get("/api/v1/jobs/past")).json["job"]
    assert (got["schedulable"], got["reason"]) == (False, NEVER_REASON)
    await master.put("/api/v1/jobs/fine", json=SPEC)
    listed = {j["name"]: j for j in (await master.get("/api/v1/jobs")).json["jobs"]}
    assert (listed["past"]["schedulable"], listed["past"]["reason"]) == (False, NEVER_REASON)
    assert (listed["fine"]["schedulable"], listed["fine"]["reason"]) == (True, None)

    # Paused or not, it stays unschedulable: that reason outweighs "paused".
    paused = (await master.post("/api/v1/jobs/past/pause")).json["job"]
    assert (paused["schedulable"], paused["reason"]) == (False, NEVER_REASON)

    fixed = await master.put("/api/v1/jobs/past", json={**NEVER, "cronExpr": "0 0 0 1 1 * 2099"})
    assert fixed.status == 200 and fixed.json["warnings"] == []
    assert fixed.json["job"]["schedulable"] is True


async def test_a_far_year_field_has_its_next_fire(master):
    # Issue 16: the search used to stop 9 years after now.
    saved = await master.put("/api/v1/jobs/far", json={"command": "true",
                                                       "cronExpr": "0 59 23 31 12 * 2099"})
    job = saved.json["job"]
    assert job["nextFire"] == 4_102_444_740_000  # 2099-12-31T23:59:00Z
    assert job["schedulable"] is True and saved.json["warnings"] == []


async def test_preview_says_why_there_are_fewer_times(master):
    never = await master.get("/api/v1/cron/preview",
                             query_string={"expr": "0 0 0 1 1 * 2020"})
    assert never.status == 200
    assert never.json["times"] == [] and never.json["reason"] == NEVER_REASON
    ends = await master.get("/api/v1/cron/preview",
                            query_string={"expr": "0 0 0 1 1 * 2098,2099", "n": "5"})
    assert ends.json["times"] == [4_039_372_800_000, 4_070_908_800_000]  # Jan 1st
    assert ends.json["reason"] == NEVER_REASON
    goes_on = await master.get("/api/v1/cron/preview",
                               query_string={"expr": "*/5 * * * *", "n": "3"})
    assert len(goes_on.json["times"]) == 3 and goes_on.json["reason"] is None
