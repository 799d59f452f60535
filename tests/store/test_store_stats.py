"""The dashboard's statistics (``RunStore.stats``) on both backends: runs per bucket by
status, lateness percentiles, the jobs that failed most, failures in 24 h; and, on
MariaDB, that the rollup follows records written and replaced after it was built."""

from __future__ import annotations

import time

import pytest

from cluster.store import InvalidQuery, open_store
from cluster.store._stats import (MINUTE_MS, bucket_upper_ms, lateness_bucket,
                                  lateness_percentile)

from store_testkit import run

NOW = (int(time.time() * 1000) // MINUTE_MS) * MINUTE_MS + 30_000  # mid-minute


def at(i: int, minute: int, late_ms: int, **overrides: object):
    """Run ``i`` planned ``minute`` minutes before NOW's minute, started ``late_ms`` late."""
    plan = NOW - 30_000 - minute * MINUTE_MS + 1000
    fields: dict[str, object] = dict(plan_time=plan, schedule_time=plan,
                                     start_time=plan + late_ms, end_time=plan + late_ms + 10)
    fields.update(overrides)
    return run(i, **fields)


def test_percentiles_are_bucket_upper_bounds_within_19_percent():
    assert lateness_percentile({}, 0.5) is None
    assert lateness_percentile({0: 3}, 0.99) == 0
    for ms in (1, 2, 3, 5, 17, 100, 999, 65_000):
        upper = bucket_upper_ms(lateness_bucket(ms))
        assert ms <= upper < ms * 1.19 + 1
    hist = {lateness_bucket(10): 98, lateness_bucket(1000): 2}
    assert lateness_percentile(hist, 0.5) == bucket_upper_ms(lateness_bucket(10))
    assert lateness_percentile(hist, 0.99) == bucket_upper_ms(lateness_bucket(1000))


async def test_a_bad_window_is_refused(store):
    with pytest.raises(InvalidQuery, match="window"):
        await store.stats.summary("2h", NOW)


async def test_summary_counts_buckets_lateness_and_failures(store):
    records = [
        *(at(i, 0, 10) for i in range(3)),  # 3 succeeded this minute, 10 ms late
        at(3, 0, 1000, status="failed", job_name="bad"),
        at(4, 2, 0, status="timeout", job_name="bad"),
        at(5, 2, 0, status="lost", job_name="worse", start_time=None, end_time=None),
        at(6, 2, 0, status="killed", job_name="worse"),
        at(7, 2, 0, status="lost", job_name="worse", start_time=None, end_time=None),
        at(8, 2, 0, status="replaced", job_name="bad"),  # not a failure
        at(9, 2, 0, status="skipped", job_name="bad", start_time=None, end_time=None),
        at(10, 70, 5, status="failed", job_name="old"),  # outside 1 h, inside 24 h
        at(11, 25 * 60, 5, status="failed", job_name="older"),  # outside 24 h
    ]
    await store.write_batch(records)
    assert await store.stats.build(30)
    s = await store.stats.summary("1h", NOW)
    assert s.window.bucket_ms == MINUTE_MS and len(s.bucket_starts) == 60
    assert s.bucket_starts[-1] == NOW - 30_000 and not s.partial
    totals = {status: sum(counts) for status, counts in s.runs.items()}
    assert totals == {"succeeded": 3, "failed": 1, "timeout": 1, "lost": 2, "killed": 1,
                      "replaced": 1, "skipped": 1}
    assert s.runs["succeeded"][-1] == 3 and s.runs["lost"][-3] == 2
    # This minute: 3 runs 10 ms late and one 1000 ms late; two minutes ago all on time.
    assert s.lateness_p50[-1] == bucket_upper_ms(lateness_bucket(10))
    assert s.lateness_p99[-1] == bucket_upper_ms(lateness_bucket(1000))
    assert s.lateness_p50[-3] == 0 and s.lateness_p50[-2] is None
    assert [(t.job_name, t.failures) for t in s.top_failing] == [("worse", 3), ("bad", 2)]
    assert s.failures_24h == 6  # 5 in the last hour and "old"; not "older"
    day = await store.stats.summary("24h", NOW)
    assert [(t.job_name, t.failures) for t in day.top_failing] == [
        ("worse", 3), ("bad", 2), ("old", 1)]
    assert sum(day.runs["failed"]) == 2 and day.window.bucket_ms == 5 * MINUTE_MS
    week = await store.stats.summary("7d", NOW)
    assert sum(week.runs["failed"]) == 3 and len(week.bucket_starts) == 168
    assert not day.partial and not week.partial


async def test_records_written_or_replaced_later_are_counted_once(store):
    await store.write_batch([at(1, 1, 0, status="lost", start_time=None, end_time=None)])
    assert await store.stats.build(30)
    first = await store.stats.summary("1h", NOW)
    assert {k: sum(v) for k, v in first.runs.items()} == {"lost": 1}
    # The worker's own record replaces the survivor's lost one; a new run lands.
    await store.write_batch([at(1, 1, 0, status="succeeded"), at(2, 0, 0, status="failed")])
    second = await store.stats.summary("1h", NOW)
    assert not second.partial  # regression: the first refresh after a build rebuilt it all
    assert {k: sum(v) for k, v in second.runs.items()} == {"succeeded": 1, "failed": 1}
    assert second.failures_24h == 1
    assert [(t.job_name, t.failures) for t in second.top_failing] == [(at(2, 0, 0).job_name, 1)]


async def test_a_summary_after_the_build_does_not_rebuild_the_rollup(mysql_url):
    """Regression: the watermark went back 30 s after the build, before the moment the
    rows got their ``changed_at``, so the next summary saw every minute as changed and
    started the backfill again (a million rows: 200 ms to 2 s per summary, partial)."""
    async with open_store(mysql_url) as store:
        # More changed minutes than a refresh follows one by one (MAX_CHANGED_MINUTES)
        await store.write_batch([at(i, i, 0) for i in range(1500)])
        assert await store.stats.build(30)
        state = "SELECT value FROM job_log_rollup_state WHERE name = 'built_from'"
        built_from = await store._backend.fetch(state)
        await store.write_batch([at(100, 0, 0)])
        after = await store.stats.summary("1h", NOW)
        assert await store._backend.fetch(state) == built_from
        assert not after.partial and sum(after.runs["succeeded"]) == 61
