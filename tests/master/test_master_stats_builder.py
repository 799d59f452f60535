"""The master's StatsBuilder (master/stats_builder.py): the records a MariaDB store held
before the master started are built into the statistics' rollup in the background,
with no dashboard asking, so that the first dashboard finds them all."""

from __future__ import annotations

import time

import trio

from cluster.store import open_store

from master_testkit import make_config, record, running_master

MINUTE_MS = 60_000
RECORDS = 2_000  # one every 3 minutes: 100 hours, inside the 7 d window


async def test_older_records_are_built_in_the_background(mysql_url, tmp_path, etcd_endpoint,
                                                         etcd_prefix):
    now = int(time.time() * 1000)
    async with open_store(mysql_url) as store:
        await store.write_batch([record(f"r{i}", f"job-{i % 7}", start=now - 3 * MINUTE_MS * i,
                                        status="failed" if i % 10 == 0 else "succeeded")
                                 for i in range(1, RECORDS + 1)])
    floor = (now - 3 * MINUTE_MS * RECORDS) // MINUTE_MS
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=mysql_url)
    async with running_master(config) as m, open_store(mysql_url) as store:
        built_from = "SELECT value FROM job_log_rollup_state WHERE name = 'built_from'"
        with trio.fail_after(60):
            while True:  # no summary asked: the builder alone moves it back
                rows = await store._backend.fetch("SHOW TABLES LIKE 'job_log_rollup_state'")
                if rows and (state := await store._backend.fetch(built_from)) \
                        and int(state[0][0]) <= floor:
                    break
                await trio.sleep(0.1)
        answer = await m.get("/api/v1/stats", query_string={"window": "7d"})
        assert answer.status == 200, answer.json
        body = answer.json
        assert body["partial"] is False
        assert sum(sum(counts) for counts in body["runs"].values()) == RECORDS
        assert sum(body["runs"]["failed"]) == RECORDS // 10
