"""The jobs list's plain words and last runs, and the preview's words: what the UI and
`schedctl jobs` show beside each cron expression (docs/api.md, JobView)."""

from __future__ import annotations

import pytest

from cluster.store import open_store

from master_testkit import make_config, record, running_master


@pytest.fixture(params=["sqlite", "mysql"])
async def master_with_history(request, tmp_path, etcd_endpoint, etcd_prefix):
    db_url = (request.getfixturevalue("mysql_url") if request.param == "mysql"
              else f"sqlite:///{tmp_path}/runs.db")
    async with open_store(db_url) as store:
        await store.write_batch(
            [record(f"a{i}", "job-a", start=10_000 + 1_000 * i) for i in range(5)]
            + [record("a-failed", "job-a", start=20_000, end_time=23_500, status="failed",
                      exit_code=3)]
            + [record("b1", "job-b", start=10_000),
               record("b-skipped", "job-b", start=None, schedule_time=30_000,
                      status="skipped")]
            + [record("gone1", "deleted-job", start=50_000)])
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=db_url)
    async with running_master(config) as master:
        yield master
        await master.etcd.delete_prefix(etcd_prefix)


async def test_each_listed_job_has_its_last_run_and_its_words(master_with_history):
    m = master_with_history
    jobs = {"job-a": {"command": "echo a", "cronExpr": "*/5 * * * * *"},
            "job-b": {"command": "echo b", "cronExpr": "30 2 * * *",
                      "timezone": "Europe/Berlin"},
            "job-c": {"command": "echo c", "cronExpr": "@every 1m30s"},
            "job-d": {"command": "echo d", "after": {"job": "job-a"}}}
    for name, spec in jobs.items():
        assert (await m.put(f"/api/v1/jobs/{name}", json=spec)).status == 201
    listed = await m.get("/api/v1/jobs")
    assert listed.status == 200 and listed.json["lastRunsError"] is None
    by_name = {j["name"]: j for j in listed.json["jobs"]}
    assert list(by_name) == ["job-a", "job-b", "job-c", "job-d"]  # not deleted-job
    assert {name: j["describe"] for name, j in by_name.items()} == {
        "job-a": "every 5 seconds", "job-b": "at 02:30 every day, Europe/Berlin",
        "job-c": "every 1 m 30 s", "job-d": None}
    assert by_name["job-a"]["lastRun"] == {
        "runId": "a-failed", "status": "failed", "trigger": "schedule",
        "scheduleTime": 20_000, "startTime": 20_000, "endTime": 23_500, "durationMs": 3_500}
    assert by_name["job-b"]["lastRun"] == {  # a skipped fire after its last run
        "runId": "b-skipped", "status": "skipped", "trigger": "schedule",
        "scheduleTime": 30_000, "startTime": None, "endTime": None, "durationMs": None}
    assert by_name["job-c"]["lastRun"] is None and by_name["job-d"]["lastRun"] is None
    # The single job's view has the words too (not the last run: the list's alone).
    one = (await m.get("/api/v1/jobs/job-b")).json["job"]
    assert one["describe"] == "at 02:30 every day, Europe/Berlin" and "lastRun" not in one


async def test_the_preview_describes_the_expression_in_its_zone(master):
    answers = {}
    for expr, tz in (("*/5 * * * * *", "UTC"), ("30 2 * * *", "Europe/Berlin"),
                     ("@every 1m30s", "UTC"), ("0 0 * * 5L", "UTC")):
        answer = await master.get("/api/v1/cron/preview",
                                  query_string={"expr": expr, "tz": tz, "n": "3"})
        assert answer.status == 200
        answers[expr] = answer.json["describe"]
        times = answer.json["times"]
        if expr == "*/5 * * * * *":  # the words and the times agree
            assert [b - a for a, b in zip(times, times[1:])] == [5_000, 5_000]
    assert answers == {"*/5 * * * * *": "every 5 seconds",
                       "30 2 * * *": "at 02:30 every day, Europe/Berlin",
                       "@every 1m30s": "every 1 m 30 s",
                       "0 0 * * 5L": "at 00:00 on the last Friday of the month"}
