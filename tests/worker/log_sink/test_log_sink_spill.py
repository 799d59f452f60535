"""The LogSink through a store outage: spill beyond the memory bound, replay exactly
once (its own file, orphans of other worker ids, torn tails, unreadable lines).

The fake store never uses threads, so tests on it run under an autojump MockClock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from worker.log_sink.store_writer import SLOW_WRITE_S
from worker.log_sink.messages import Write
from worker.log_sink.spill import SpillFileBusy
from worker.shutdown_budget import LogSinkBudget

from log_sink_testkit import FakeStore, record, records, running_sink, sink_config, wait_until


# -- outage, spill, replay ------------------------------------------------------------


async def test_outage_spills_beyond_memory_bound_then_replays_exactly_once(tmp_path,
                                                                           autojump_clock):
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path, job_log_batch_size=50, sink_memory_records=200)
    async with running_sink(cfg, opener=store.opener()) as h:
        for i in range(1000):
            await h.address.send(Write(record(i)))
            assert h.stats().queued <= 200 + 50 + 100  # bound + one batch + one spill chunk
        await wait_until(lambda: h.stats().spilled >= 800)
        assert len(h.spill_lines()) == h.stats().spilled
        store.down = False
        await wait_until(lambda: len(store.rows) == 1000, timeout_s=60)
        await h.flush()
        stats = h.stats()
    assert set(store.writes.values()) == {1}  # each record written exactly once
    assert stats.replayed_total == stats.spilled_total >= 800 and stats.spilled == 0
    assert not h.spill_path.exists()


async def test_fast_producer_waits_for_a_healthy_store_instead_of_spilling(tmp_path,
                                                                           autojump_clock):
    store = FakeStore()
    store.delay_s = 0.2  # well under SLOW_WRITE_S
    cfg = sink_config(tmp_path, job_log_batch_size=10, sink_memory_records=50, log_chan_len=5)
    async with running_sink(cfg, opener=store.opener()) as h:
        for r in records(300):
            await h.address.send(Write(r))
            assert h.stats().queued <= 50 + 1 + 10
        await h.flush()
        assert len(store.rows) == 300 and h.stats().spilled_total == 0


async def test_slow_store_write_makes_the_receiver_spill(tmp_path, autojump_clock):
    store = FakeStore()
    store.hang = True  # a frozen database: the write answers only at its timeout
    cfg = sink_config(tmp_path, job_log_batch_size=10, sink_memory_records=50, log_chan_len=5)
    async with running_sink(cfg, opener=store.opener(), budget=LogSinkBudget(store_drain_s=0.1)) as h:
        start = trio.current_time()
        await h.write_all(records(300))
        assert trio.current_time() - start == pytest.approx(SLOW_WRITE_S, abs=0.1)
        await wait_until(lambda: h.stats().queued <= 50 + 10 + 1)
        assert h.stats().spilled >= 300 - 61


async def test_flush_during_outage_spills_instead_of_waiting(tmp_path, autojump_clock):
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path, job_log_commit_timeout_s=3600.0)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.write_all(records(5))
        await h.flush()
        assert len(h.spill_lines()) == 5 and h.stats().queued == 0
        store.down = False
        await wait_until(lambda: h.stats().replayed_total == 5)
        assert len(store.rows) == 5 and h.stats().spilled == 0


async def test_stop_during_outage_spills_everything_and_next_sink_replays(tmp_path, autojump_clock):
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path, sink_memory_records=10_000, job_log_commit_timeout_s=3600.0)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.write_all(records(300))
    assert [line["runId"] for line in h.spill_lines()] == [r.run_id for r in records(300)]
    assert h.stats().queued == 0 and h.stats().spilled == 300

    store.down = False
    async with running_sink(cfg, opener=store.opener()) as h2:
        await wait_until(lambda: len(store.rows) == 300)
    assert h2.stats().replayed_total == 300 and not h2.spill_path.exists()


async def test_orphan_spill_file_of_another_worker_id_is_adopted(tmp_path, autojump_clock):
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path)
    async with running_sink(cfg, worker_id="host-111-aaaa", opener=store.opener()) as old:
        await old.write_all(records(40))
    assert len(old.spill_lines()) == 40

    store.down = False
    async with running_sink(cfg, worker_id="host-222-bbbb", opener=store.opener()) as new:
        await wait_until(lambda: len(store.rows) == 40)
    assert not old.spill_path.exists() and not new.spill_path.exists()
    assert new.stats().replayed_total == 40


async def test_live_spill_file_is_neither_adopted_nor_shared(tmp_path):
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path)
    async with running_sink(cfg, worker_id="a", opener=store.opener()) as a:
        await a.write_all(records(10))
        await a.flush()
        async with running_sink(cfg, worker_id="b", opener=store.opener()) as b:
            assert b.stats().spilled == 0  # "a" is alive: its file is not an orphan
        assert len(a.spill_lines()) == 10
        with pytest.RaisesGroup(SpillFileBusy):  # two workers with one id
            async with running_sink(cfg, worker_id="a", opener=store.opener()):
                pass


async def test_torn_last_line_is_rejected_not_dropped(tmp_path, autojump_clock):
    cfg = sink_config(tmp_path)
    spill_dir = Path(cfg.spill_dir)
    spill_dir.mkdir(mode=0o700)
    lines = [json.dumps(r.to_json()) for r in records(3)]
    torn = lines[2][: len(lines[2]) // 2]
    (spill_dir / "w1.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n" + torn)
    store = FakeStore()
    async with running_sink(cfg, opener=store.opener()) as h:
        await wait_until(lambda: len(store.rows) == 2)
    [rejected] = h.rejected_lines()
    assert "torn" in rejected["reason"] and rejected["line"] == torn
    assert h.stats().rejected_total == 1


async def test_unreadable_spill_line_is_rejected_and_replay_goes_on(tmp_path, autojump_clock):
    cfg = sink_config(tmp_path)
    spill_dir = Path(cfg.spill_dir)
    spill_dir.mkdir(mode=0o700)
    good = [json.dumps(r.to_json()) for r in records(2)]
    (spill_dir / "w1.jsonl").write_text(f'{good[0]}\n{{"runId": "half"}}\nnot json\n{good[1]}\n')
    store = FakeStore()
    async with running_sink(cfg, opener=store.opener()) as h:
        await wait_until(lambda: len(store.rows) == 2)
    assert [r["line"].strip() for r in h.rejected_lines()] == ['{"runId": "half"}', "not json"]
