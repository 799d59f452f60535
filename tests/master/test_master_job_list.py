"""The jobs list's plain words and last runs, and the preview's words: what the UI and
`schedctl jobs` show beside each cron expression (docs/api.md, JobView)."""

from __future__ import annotations

import json
import time

import pytest

from cluster.etcd import Put
from cluster.spec import JobSpec
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


# --------------------------------------------------------------------------- 10,000 jobs

JOBS = 10_000
RUNS_PER_JOB = 10
EXPRESSIONS = ("*/5 * * * * *", "30 2 * * *", "@every 1m30s", "0 9 * * 1-5", "0 0 L * *",
               "0 */2 * * *", "15 10 * * 5L")


async def test_ten_thousand_jobs_are_listed_with_words_and_last_runs_quickly(
        tmp_path, etcd_endpoint, etcd_prefix, mysql_url):
    """10,000 jobs and 100,000 records in MariaDB: one list answers every job with its
    words and last run in well under a second (one grouped query, cached words)."""
    async with open_store(mysql_url) as store:
        for first in range(0, JOBS * RUNS_PER_JOB, 5_000):
            await store.write_batch([
                record(f"r{i}", f"job-{i % JOBS:05d}", start=1_000_000 + i,
                       status="failed" if i % 7 == 0 else "succeeded", output="")
                for i in range(first, first + 5_000)])
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=mysql_url)
    async with running_master(config) as m:
        ops = [Put(m.keyspace.job(f"job-{j:05d}"), JobSpec.from_json(json.dumps({
                   "name": f"job-{j:05d}", "command": "true",
                   "cronExpr": EXPRESSIONS[j % len(EXPRESSIONS)],
                   "timezone": "Europe/Berlin" if j % 2 else "UTC"}).encode()).to_bytes())
               for j in range(JOBS)]
        for first in range(0, JOBS, 100):  # etcd allows 128 operations per transaction
            await m.etcd.txn([], ops[first:first + 100])
        # One grouped query per list, none per job. (Counted by method, not by the
        # store's call count: the master's event feeds poll the store meanwhile.)
        store, grouped = m.services.runs._store, []
        latest_runs = store.latest_runs

        async def counted(*args, **kwargs):
            grouped.append(1)
            return await latest_runs(*args, **kwargs)

        def per_job(*_args, **_kwargs):
            raise AssertionError("a per-job store query while listing jobs")

        timings = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store, "latest_runs", counted)
            for name in ("get", "query", "query_offset", "count"):
                patch.setattr(store, name, per_job)
            for _ in range(3):
                started = time.perf_counter()
                listed = await m.get("/api/v1/jobs")
                timings.append(time.perf_counter() - started)
                assert listed.status == 200
        assert len(grouped) == 3  # one per list
        jobs = listed.json["jobs"]
        assert len(jobs) == JOBS and listed.json["lastRunsError"] is None
        last_index = JOBS * (RUNS_PER_JOB - 1) + 1234  # the newest record of job-01234
        assert jobs[1234]["lastRun"]["runId"] == f"r{last_index}"
        assert jobs[1234]["lastRun"]["status"] == ("failed" if last_index % 7 == 0
                                                   else "succeeded")
        assert jobs[1]["describe"] == "at 02:30 every day, Europe/Berlin"
        assert all(j["describe"] and j["lastRun"] for j in jobs)
        print(f"GET /api/v1/jobs with {JOBS} jobs: "
              + ", ".join(f"{t * 1000:.0f} ms" for t in timings))
        assert min(timings) < 2.0, timings
        await m.etcd.delete_prefix(etcd_prefix)


async def test_a_job_changed_in_etcd_is_listed_as_it_is_now(master):
    """The list reuses a decoded spec only while etcd holds the same bytes."""
    assert (await master.put("/api/v1/jobs/j", json={"command": "echo 1",
                                                     "cronExpr": "*/5 * * * *"})).status == 201
    first = (await master.get("/api/v1/jobs")).json["jobs"]
    assert [(j["command"], j["describe"]) for j in first] == [("echo 1", "every 5 minutes")]
    key = master.keyspace.job("j")
    stored = await master.stored("j")
    await master.etcd.put(key, json.dumps({**stored, "command": "echo 2",
                                           "cronExpr": "@hourly"}))
    second = (await master.get("/api/v1/jobs")).json["jobs"]
    assert [(j["command"], j["describe"]) for j in second] == [("echo 2", "every hour")]
    await master.etcd.put(key, b"{not json")  # now invalid: no longer listed
    assert (await master.get("/api/v1/jobs")).json["jobs"] == []
    await master.etcd.put(key, json.dumps(stored))  # back as it was first
    assert (await master.get("/api/v1/jobs")).json["jobs"][0]["command"] == "echo 1"


async def test_durations_give_the_newest_runs_without_outputs(master_with_history):
    m = master_with_history
    answer = await m.get("/api/v1/jobs/job-a/durations")
    assert answer.status == 200
    runs = answer.json["runs"]
    assert answer.json["job"] == "job-a"
    # Newest first, every run of the job (default limit 200), none of another job.
    assert [r["runId"] for r in runs] == ["a-failed", "a4", "a3", "a2", "a1", "a0"]
    assert runs[0] == {"runId": "a-failed", "status": "failed", "trigger": "schedule",
                       "scheduleTime": 20_000, "startTime": 20_000, "endTime": 23_500,
                       "durationMs": 3_500}
    assert all("output" not in r for r in runs)
    two = await m.get("/api/v1/jobs/job-a/durations", query_string={"limit": "2"})
    assert [r["runId"] for r in two.json["runs"]] == ["a-failed", "a4"]
    # History outlives the job; a job with none has an empty list.
    gone = await m.get("/api/v1/jobs/deleted-job/durations")
    assert [r["runId"] for r in gone.json["runs"]] == ["gone1"]
    assert (await m.get("/api/v1/jobs/nobody/durations")).json["runs"] == []
    bad = await m.get("/api/v1/jobs/job-a/durations", query_string={"limit": "0"})
    assert bad.status == 400 and bad.json["error"]["field"] == "limit"


async def test_the_preview_of_every_counts_from_the_anchor_given(master):
    """The job page gives a job's createdAt: its @every fires, not a new job's."""
    anchor = 1_700_000_000_123
    answer = await master.get("/api/v1/cron/preview", query_string={
        "expr": "@every 1m", "n": "3", "anchor": str(anchor)})
    assert answer.status == 200
    times = answer.json["times"]
    assert [(t - anchor) % 60_000 for t in times] == [0, 0, 0]
    assert [b - a for a, b in zip(times, times[1:])] == [60_000, 60_000]
    assert times[0] > int(time.time() * 1000) - 1_000  # still the next ones
    bad = await master.get("/api/v1/cron/preview", query_string={
        "expr": "@every 1m", "anchor": "-5"})
    assert bad.status == 400 and bad.json["error"]["field"] == "anchor"
