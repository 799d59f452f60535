"""Run queries against records written straight into the store (SQLite and MySQL)."""

from __future__ import annotations

import pytest

from cluster.store import open_store

from master_testkit import make_config, record, running_master


@pytest.fixture(params=["sqlite", "mysql"])
async def master_with_runs(request, tmp_path, etcd_endpoint, etcd_prefix):
    if request.param == "mysql":
        db_url = request.getfixturevalue("mysql_url")
    else:
        db_url = f"sqlite:///{tmp_path}/runs.db"
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=db_url)
    async with open_store(db_url) as store:
        await store.write_batch(
            [record(f"a{i:02}", "job-a", start=10_000 + 1_000 * i,
                    status="failed" if i % 3 == 0 else "succeeded") for i in range(25)]
            + [record(f"b{i}", "job-b", start=10_500 + 1_000 * i) for i in range(5)]
            + [record("skipped", "job-b", start=None, status="skipped")])
    async with running_master(config) as master:
        yield master


async def collect(master, path: str, limit: int) -> list[dict]:
    runs, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        answer = await master.get(url)
        assert answer.status == 200, answer.body
        page = answer.json
        assert len(page["runs"]) <= limit
        runs += page["runs"]
        cursor = page["nextCursor"]
        if cursor is None:
            return runs


async def test_job_runs_paginate_newest_first(master_with_runs):
    runs = await collect(master_with_runs, "/api/v1/jobs/job-a/runs", limit=7)
    assert [r["runId"] for r in runs] == [f"a{i:02}" for i in reversed(range(25))]
    first = runs[0]
    assert first == record("a24", "job-a", start=34_000, status="failed").to_json()


async def test_all_runs_and_filters(master_with_runs):
    m = master_with_runs
    everything = await collect(m, "/api/v1/runs", limit=10)
    assert len(everything) == 31
    starts = [r["startTime"] or r["scheduleTime"] for r in everything]
    assert starts == sorted(starts, reverse=True)

    only_b = await collect(m, "/api/v1/runs?job=job-b", limit=50)
    assert {r["jobName"] for r in only_b} == {"job-b"} and len(only_b) == 6

    failed = await collect(m, "/api/v1/jobs/job-a/runs?status=failed", limit=3)
    assert [r["runId"] for r in failed] == [f"a{i:02}" for i in (24, 21, 18, 15, 12, 9, 6, 3, 0)]

    two = await collect(m, "/api/v1/runs?status=skipped,failed", limit=100)
    assert {r["status"] for r in two} == {"skipped", "failed"} and len(two) == 10

    window = await collect(m, "/api/v1/runs?job=job-a&since=12000&until=15000", limit=2)
    assert [r["startTime"] for r in window] == [14_000, 13_000, 12_000]


async def test_default_limit_is_50(master_with_runs):
    page = (await master_with_runs.get("/api/v1/runs")).json
    assert len(page["runs"]) == 31 and page["nextCursor"] is None


async def test_one_run_by_id(master_with_runs):
    got = await master_with_runs.get("/api/v1/runs/b3")
    assert got.status == 200 and got.json["run"]["runId"] == "b3"
    assert got.json["run"]["startTime"] == 13_500
    skipped = (await master_with_runs.get("/api/v1/runs/skipped")).json["run"]
    assert skipped["startTime"] is None and skipped["status"] == "skipped"
    missing = await master_with_runs.get("/api/v1/runs/nope")
    assert missing.status == 404 and missing.error["code"] == "not_found"


async def test_runs_of_a_job_without_runs(master_with_runs):
    answer = await master_with_runs.get("/api/v1/jobs/job-z/runs")
    assert answer.status == 200 and answer.json == {"runs": [], "nextCursor": None}


async def test_after_follows_runs_recorded_since_each_once(master_with_runs):
    master = master_with_runs
    start = await master.get("/api/v1/runs?after=now")
    assert start.status == 200, start.body
    assert start.json["runs"] == [] and start.json["caughtUp"] is True
    async with open_store(master.config.db_url) as store:
        await store.write_batch([record("n1", "job-a", start=1), record("n2", "job-b"),
                                 record("n3", "job-a", start=99_000)])
    page = (await master.get(f"/api/v1/jobs/job-a/runs?after={start.json['after']}&limit=2")).json
    assert [r["runId"] for r in page["runs"]] == ["n1"] and page["caughtUp"] is False
    page = (await master.get(f"/api/v1/jobs/job-a/runs?after={page['after']}&limit=2")).json
    assert [r["runId"] for r in page["runs"]] == ["n3"] and page["caughtUp"] is True
    page = (await master.get(f"/api/v1/runs?after={page['after']}")).json
    assert page["runs"] == []


@pytest.mark.parametrize("query", ["after=bogus", "after=now&cursor=abc"])
async def test_a_bad_follow_cursor_is_a_400_naming_after(master_with_runs, query):
    answer = await master_with_runs.get(f"/api/v1/runs?{query}")
    assert answer.status == 400, answer.body
    assert answer.error["field"] == "after"
