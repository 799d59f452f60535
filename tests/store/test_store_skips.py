"""Coalesced ``skipped`` records in both backends: the skip fields round-trip, a record
written with a lower count never replaces one with a higher count, and a table made by
a release before those columns existed is brought up to date, its rows kept."""

from __future__ import annotations

import sqlite3

from cluster.store import RunStatus, open_store
from cluster.store import _schema

from store_testkit import T0, run

# job_log as released before the skip columns (commit 7d5d3d5), in each dialect.
_OLD_SQLITE = """CREATE TABLE job_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE,
    job_name TEXT NOT NULL, worker TEXT NOT NULL, command TEXT NOT NULL,
    output TEXT NOT NULL, err TEXT NOT NULL, exit_code INTEGER NULL, status TEXT NOT NULL,
    `trigger` TEXT NOT NULL, attempt INTEGER NOT NULL, plan_time INTEGER NOT NULL,
    schedule_time INTEGER NOT NULL, start_time INTEGER NULL, end_time INTEGER NULL,
    output_truncated INTEGER NOT NULL DEFAULT 0, sort_time INTEGER NOT NULL)"""
_OLD_MYSQL = """CREATE TABLE job_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, run_id VARCHAR(128) NOT NULL,
    job_name VARCHAR(128) NOT NULL, worker VARCHAR(255) NOT NULL, command MEDIUMTEXT NOT NULL,
    output MEDIUMTEXT NOT NULL, err MEDIUMTEXT NOT NULL, exit_code INT NULL,
    status VARCHAR(16) NOT NULL, `trigger` VARCHAR(16) NOT NULL, attempt INT NOT NULL,
    plan_time BIGINT NOT NULL, schedule_time BIGINT NOT NULL, start_time BIGINT NULL,
    end_time BIGINT NULL, output_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    sort_time BIGINT NOT NULL, UNIQUE KEY ux_job_log_run_id (run_id),
    KEY ix_job_log_job_time (job_name, sort_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""
_OLD_INSERT = ("INSERT INTO job_log (run_id, job_name, worker, command, output, err, exit_code,"
               " status, `trigger`, attempt, plan_time, schedule_time, start_time, end_time,"
               " output_truncated, sort_time) VALUES ('old-1', 'job-1', 'w1', 'echo 1',"
               f" 'out 1\n', '', 0, 'succeeded', 'schedule', 1, {T0 + 1000}, {T0 + 1003},"
               f" {T0 + 1005}, {T0 + 1900}, 0, {T0 + 1005})")


def tally(count: int, last_s: int):
    """The coalesced record of ``count`` fires skipped from T0 to T0 + last_s."""
    return run(99, run_id="r-busy.skipped", status="skipped", start_time=None, end_time=None,
               exit_code=None, output="", err=f"skipped: {count} times", plan_time=T0,
               schedule_time=T0, skip_count=count, first_skip_time=T0,
               last_skip_time=T0 + last_s * 1000)


async def test_the_skip_fields_round_trip(store):
    record = tally(9, 9)
    await store.write_batch([record, run(1)])
    assert await store.get("r-busy.skipped") == record
    assert (await store.get("run-00001")).skip_count == 0
    assert record.to_json()["skipCount"] == 9
    assert record.to_json()["lastSkipTime"] == T0 + 9000


async def test_a_lower_count_never_replaces_a_higher_one(store):
    await store.write_batch([tally(5, 5)])
    await store.write_batch([tally(3, 3)])  # written by another worker, landed late
    assert await store.get("r-busy.skipped") == tally(5, 5)
    await store.write_batch([tally(6, 6), tally(4, 4)])  # one batch, out of order
    assert await store.get("r-busy.skipped") == tally(6, 6)
    await store.write_batch([tally(7, 7)])
    assert await store.get("r-busy.skipped") == tally(7, 7)
    assert await store.count(status="skipped") == 1


async def test_a_lost_record_still_never_replaces_a_finished_run(store):
    done = run(7, status=RunStatus.SUCCEEDED)
    await store.write_batch([done])
    await store.write_batch([run(7, status=RunStatus.LOST, err="lost")])
    assert await store.get(done.run_id) == done


async def test_a_table_of_an_older_release_gets_the_new_columns(store_url):
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
            conn.execute(_OLD_SQLITE)
            conn.execute(_OLD_INSERT)
    else:
        async with open_store(store_url) as raw:  # statements of our own, no table yet
            await raw._backend.execute(_OLD_MYSQL)
            await raw._backend.execute(_OLD_INSERT)
    async with open_store(store_url) as store:
        old = await store.get("old-1")
        assert old is not None and old.skip_count == 0 and old.first_skip_time is None
        await store.write_batch([tally(2, 1)])
        assert await store.get("r-busy.skipped") == tally(2, 1)
        assert await store.count() == 2
    async with open_store(store_url) as again:  # the second opening finds them all
        for column, _ in _schema.ADDED_COLUMNS:
            await again._backend.fetch(_schema.column_probe(column))
        assert await again.count() == 2
