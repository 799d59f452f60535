"""The jobs list paged and filtered by the server (docs/api.md, GET /api/v1/jobs): what
the UI's jobs view reads with 10,000 jobs. Without paging parameters the answer is the
whole list, as before."""

from __future__ import annotations

import pytest

from cluster.presence import RunningInfo
from cluster.store import open_store

from master_testkit import make_config, record, running_master

NAMES = [f"job-{i:02d}" for i in range(7)]


@pytest.fixture
async def seven_jobs(tmp_path, etcd_endpoint, etcd_prefix):
    """job-00..job-06: job-01 and job-04 paused, job-02's last run failed, job-03
    running, job-05 never fires again, job-06's command says BACKUP."""
    db_url = f"sqlite:///{tmp_path}/runs.db"
    async with open_store(db_url) as store:
        await store.write_batch([
            record("ok", "job-00", start=10_000),
            record("bad", "job-02", start=20_000, end_time=21_000, status="failed",
                   exit_code=1),
            record("old-bad", "job-06", start=5_000, status="failed", exit_code=1),
            record("new-ok", "job-06", start=30_000)])
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=db_url)
    async with running_master(config) as m:
        for name in NAMES:
            spec = {"command": "nightly-backup.sh" if name == "job-06" else f"echo {name}",
                    "cronExpr": "0 0 0 1 1 * 2020" if name == "job-05" else "*/5 * * * *",
                    "paused": name in ("job-01", "job-04")}
            assert (await m.put(f"/api/v1/jobs/{name}", json=spec)).status == 201
        info = RunningInfo("run-1", "job-03", "w1", planned_ms=1000, attempt=1,
                           trigger="schedule", started_ms=2000)
        await m.etcd.put(m.keyspace.running("job-03", "run-1"), info.to_bytes())
        yield m
        await m.etcd.delete_prefix(etcd_prefix)


async def listed(m, **query):
    answer = await m.get("/api/v1/jobs", query_string=query)
    assert answer.status == 200, answer.json
    return answer.json


async def test_without_paging_parameters_the_whole_list_is_answered_as_before(seven_jobs):
    body = await listed(seven_jobs)
    assert set(body) == {"jobs", "lastRunsError"}
    assert [j["name"] for j in body["jobs"]] == NAMES


async def test_pages_follow_the_cursor_to_the_end_each_job_once(seven_jobs):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "3"} if cursor is None else {"limit": "3", "cursor": cursor}
        body = await listed(seven_jobs, **query)
        pages += 1
        assert body["total"] == 7 and len(body["jobs"]) <= 3
        seen += [j["name"] for j in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == NAMES
    # Each paged job is the whole list's job, last run included.
    whole = {j["name"]: j for j in (await listed(seven_jobs))["jobs"]}
    page = await listed(seven_jobs, limit="2", cursor="job-01")
    assert page["jobs"] == [whole["job-02"], whole["job-03"]]
    assert page["jobs"][0]["lastRun"]["status"] == "failed"
    # The default page holds 100: all seven, and no next page.
    body = await listed(seven_jobs, q="")
    assert len(body["jobs"]) == 7 and body["nextCursor"] is None


async def test_a_job_deleted_between_pages_does_not_shift_the_next(seven_jobs):
    first = await listed(seven_jobs, limit="3")
    assert first["nextCursor"] == "job-02"
    assert (await seven_jobs.delete("/api/v1/jobs/job-02")).status == 200
    second = await listed(seven_jobs, limit="3", cursor=first["nextCursor"])
    assert [j["name"] for j in second["jobs"]] == ["job-03", "job-04", "job-05"]
    assert second["total"] == 6


async def test_q_matches_name_command_or_words_in_any_case(seven_jobs):
    body = await listed(seven_jobs, q="BACKUP")
    assert [j["name"] for j in body["jobs"]] == ["job-06"] and body["total"] == 1
    body = await listed(seven_jobs, q="JOB-0", limit="2")
    assert body["total"] == 7 and body["nextCursor"] == "job-01"
    body = await listed(seven_jobs, q="Every 5 Minutes")  # the schedule in words
    assert body["total"] == 6 and "job-05" not in [j["name"] for j in body["jobs"]]
    body = await listed(seven_jobs, q="nothing like it")
    assert body == {"jobs": [], "lastRunsError": None, "nextCursor": None, "total": 0}


@pytest.mark.parametrize(("state", "names"), [
    ("paused", ["job-01", "job-04"]),
    ("running", ["job-03"]),
    ("failed", ["job-02"]),  # job-06 failed once, but its last run succeeded
    ("unschedulable", ["job-05"]),
])
async def test_state_picks_the_jobs_in_it(seven_jobs, state, names):
    body = await listed(seven_jobs, state=state)
    assert [j["name"] for j in body["jobs"]] == names and body["total"] == len(names)
    both = await listed(seven_jobs, state=state, q="job-04")
    assert [j["name"] for j in both["jobs"]] == [n for n in names if n == "job-04"]


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"state": "sleeping"}, "state"), ({"q": "x" * 201}, "q"),
])
async def test_bad_paging_parameters_are_a_400_naming_the_field(seven_jobs, query, field):
    answer = await seven_jobs.get("/api/v1/jobs", query_string=query)
    assert answer.status == 400
    assert field in str(answer.json)
