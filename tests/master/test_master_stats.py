"""GET /api/v1/stats: the dashboard's counts (from etcd and the worker list) and series
(from the run store), on both backends; a bad window is a 400."""

from __future__ import annotations

import pytest

from cluster.presence import RunningInfo
from cluster.store import open_store

from master_testkit import make_config, record, running_master

SPEC = {"command": "echo hi", "cronExpr": "*/5 * * * * *"}
NOW = 1_800_000_000_000  # the master's clock in this test (a minute starts here)


@pytest.fixture(params=["sqlite", "mysql"])
async def master(request, tmp_path, etcd_endpoint, etcd_prefix):
    db_url = (request.getfixturevalue("mysql_url") if request.param == "mysql"
              else f"sqlite:///{tmp_path}/runs.db")
    async with open_store(db_url) as store:
        await store.write_batch(
            [record(f"ok{i}", "fine", start=NOW - 50_000 + i) for i in range(4)]
            + [record(f"bad{i}", "flaky", start=NOW - 30_000, status="failed")
               for i in range(2)]
            + [record("gone", "lost-one", start=None, status="lost",
                      plan_time=NOW - 20_000, schedule_time=NOW - 20_000)])
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=db_url)
    async with running_master(config, clock=lambda: NOW + 5_000) as m:
        yield m


async def test_stats_counts_and_series(master):
    for name in ("a", "b", "c"):
        assert (await master.put(f"/api/v1/jobs/{name}", json=SPEC)).status == 201
    assert (await master.post("/api/v1/jobs/b/pause")).status == 200
    info = RunningInfo("run-1", "a", "w1", planned_ms=1000, attempt=1, trigger="schedule",
                       started_ms=2000)
    await master.etcd.put(master.keyspace.running("a", "run-1"), info.to_bytes())
    got = await master.get("/api/v1/stats?window=1h")
    assert got.status == 200, got.body
    body = got.json
    assert body["counts"] == {"jobs": 3, "pausedJobs": 1, "running": 1, "failures24h": 3,
                              "workers": 0}
    assert body["window"] == "1h" and body["bucketS"] == 60 and len(body["buckets"]) == 60
    assert body["buckets"][-1] == NOW
    assert body["runs"]["succeeded"][-2] == 4 and sum(body["runs"]["succeeded"]) == 4
    assert body["runs"]["failed"][-2] == 2 and body["runs"]["lost"][-2] == 1
    assert body["latenessP50Ms"][-2] == 0 and body["latenessP50Ms"][-1] is None
    assert body["topFailing"] == [{"job": "flaky", "failures": 2},
                                  {"job": "lost-one", "failures": 1}]
    week = (await master.get("/api/v1/stats?window=7d")).json
    assert week["bucketS"] == 3600 and sum(week["runs"]["succeeded"]) == 4
    assert (await master.get("/api/v1/stats")).json["window"] == "24h"
    seen = master.ctx.metrics.value("stats_query_seconds_count", window="1h")
    assert seen == 1


async def test_a_bad_window_is_a_400(master):
    got = await master.get("/api/v1/stats?window=1y")
    assert got.status == 400
    assert got.error["field"] == "window" and "1h, 24h, 7d" in got.error["message"]
