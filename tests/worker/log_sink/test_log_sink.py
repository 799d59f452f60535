"""The LogSink on SQLite and on an in-memory fake store: batching, flush and bad rows.

The fake store never uses threads, so tests on it run under an autojump MockClock with
exact timings; SQLite tests use wall time and generous bounds. Outage, spill and replay
are in test_log_sink_spill; backpressure, opening, stop and cancel in test_log_sink_stop.
"""

from __future__ import annotations

import pytest
import trio

from cluster.store import StoreConfigError, open_store

from log_sink_testkit import (
    MIB,
    FakeStore,
    poison_opener,
    record,
    records,
    running_sink,
    sink_config,
    stored_ids,
    wait_until,
)


# -- batching -------------------------------------------------------------------------


async def test_batches_by_size_then_by_time(tmp_path, autojump_clock):
    store = FakeStore()
    cfg = sink_config(tmp_path, job_log_batch_size=10, job_log_commit_timeout_s=60.0)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.write_all(records(25))
        await trio.sleep(1)
        assert store.batches == [10, 10]  # full batches at once, the rest waits
        await trio.sleep(58)
        assert store.batches == [10, 10]
        await trio.sleep(2)
        assert store.batches == [10, 10, 5]  # 60 s after its oldest record arrived
    assert h.stats().written_total == 25 and h.stats().batches == 3


async def test_commit_timeout_counts_from_oldest_unwritten_record(tmp_path, autojump_clock):
    store = FakeStore()
    cfg = sink_config(tmp_path, job_log_batch_size=100, job_log_commit_timeout_s=2.0)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.write_all(records(3))
        await trio.sleep(1.0)
        await h.write_all([record(3)])  # does not push the deadline back
        await trio.sleep(0.9)
        assert store.batches == []
        await trio.sleep(0.2)
        assert store.batches == [4]
        start = trio.current_time()
        await h.write_all([record(4)])
        await wait_until(lambda: store.batches == [4, 1])
        assert trio.current_time() - start == pytest.approx(2.0, abs=0.05)


async def test_flush_writes_pending_records_at_once(tmp_path, autojump_clock):
    store = FakeStore()
    cfg = sink_config(tmp_path, job_log_batch_size=100, job_log_commit_timeout_s=3600.0)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.write_all(records(5))
        start = trio.current_time()
        await h.flush()
        assert trio.current_time() - start < 1.0
        assert sorted(store.rows) == [r.run_id for r in records(5)]
        await h.flush()  # nothing pending: answered at once


async def test_sqlite_roundtrip_and_statistics(tmp_path):
    cfg = sink_config(tmp_path, job_log_batch_size=50)
    async with running_sink(cfg) as h:
        await h.write_all(records(120))
        await h.flush()
        stats = h.stats()
    assert sorted(await stored_ids(cfg.db_url)) == [r.run_id for r in records(120)]
    assert stats.written_total == 120 and stats.queued == 0 and stats.spilled == 0
    assert stats.store_up and stats.last_error is None and stats.rejected_total == 0
    assert not h.spill_path.exists()  # an empty spill file is removed at stop


# -- bad rows ---------------------------------------------------------------------------


async def test_one_oversize_output_never_loses_its_batch(tmp_path):
    big = "x" * MIB
    batch = [record(0, output=big), *records(100)[1:]]
    cfg = sink_config(tmp_path, job_log_batch_size=100)
    async with running_sink(cfg) as h:
        await h.write_all(batch)
        await h.flush()
    assert len(await stored_ids(cfg.db_url)) == 100
    async with open_store(cfg.db_url) as store:
        assert (await store.get("run-000000")).output == big
    assert h.stats().rejected_total == 0


async def test_poison_record_is_rejected_and_the_other_99_written(tmp_path):
    batch = records(100)
    poison = batch[37].run_id
    cfg = sink_config(tmp_path, job_log_batch_size=100)
    async with running_sink(cfg, opener=poison_opener({poison})) as h:
        await h.write_all(batch)
        await h.flush()
        stats = h.stats()
    ids = await stored_ids(cfg.db_url)
    assert len(ids) == 99 and poison not in ids
    [rejected] = h.rejected_lines()
    assert rejected["record"]["runId"] == poison
    assert "Incorrect string value" in rejected["reason"]
    assert stats.rejected_total == 1 and stats.written_total == 99


async def test_store_wide_error_keeps_records_instead_of_rejecting(tmp_path, autojump_clock):
    store = FakeStore()
    store.error = StoreConfigError("fake", "access denied for user")
    async with running_sink(sink_config(tmp_path), opener=store.opener()) as h:
        await h.write_all(records(20))
        await h.flush()  # the store refuses everything: spilled, durable
        assert h.stats().rejected_total == 0
        assert len(h.spill_lines()) == 20
        assert "access denied" in h.stats().last_error and not h.stats().store_up
        store.error = None  # the operator fixed the grants
        await wait_until(lambda: len(store.rows) == 20)
    assert h.rejected_lines() == []
