"""The LogSink under backpressure, while its store opens, and when it stops, is
cancelled or crashes: records are written or spilled, never lost.

The fake store never uses threads, so tests on it run under an autojump MockClock.
"""

from __future__ import annotations

import errno
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from actors import call
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, StoreSettings, StoreUnavailable
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.log_sink.actor import LogSink
from worker.log_sink.messages import Flush, Write
from worker.log_sink.spill import SpillFile, SpillIOError
from worker.shutdown_budget import LogSinkBudget

from log_sink_testkit import FakeStore, read_jsonl, records, running_sink, sink_config, wait_until


# -- backpressure, opening, stop ------------------------------------------------------


async def test_mailbox_keeps_draining_while_store_is_down(tmp_path, autojump_clock):
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path, log_chan_len=4, job_log_commit_timeout_s=0.01)
    async with running_sink(cfg, opener=store.opener()) as h:
        start = trio.current_time()
        await h.write_all(records(500))  # 125 times the mailbox: never stuck on it
        assert trio.current_time() - start < 0.1
        await wait_until(lambda: h.stats().queued == 500)  # the last one is being handed over
        assert h.address.statistics().depth == 0


async def test_disk_full_and_store_down_make_senders_wait(tmp_path, autojump_clock, monkeypatch,
                                                          caplog):
    """Backpressure, not loss: memory over its bound and the disk refusing the spill."""
    store = FakeStore()
    store.down = True
    disk = {"full": True}
    real_append = SpillFile._append_sync

    def append(self: SpillFile, recs: Sequence[RunRecord]) -> None:
        if disk["full"]:
            raise SpillIOError(self.path, "append", OSError(errno.ENOSPC, "No space left"))
        real_append(self, recs)

    monkeypatch.setattr(SpillFile, "_append_sync", append)
    cfg = sink_config(tmp_path, log_chan_len=2, sink_memory_records=20, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener()) as h:
        async with trio.open_nursery() as senders:
            senders.start_soon(h.write_all, records(500))
            await wait_until(lambda: "No space left" in caplog.text)
            await wait_until(lambda: h.address.statistics().senders_waiting == 1)
            for _ in range(20):  # while the disk stays full, nothing more gets in
                await trio.sleep(0.5)
                assert h.address.statistics().depth == 2
                assert h.stats().queued <= 20 + 10 + 100 and h.stats().spilled == 0
            disk["full"] = False
        await h.flush()
        assert h.stats().queued == 0
        store.down = False
        await wait_until(lambda: len(store.rows) == 500, timeout_s=60)


async def test_store_opened_in_background_with_retries(tmp_path, autojump_clock):
    store = FakeStore()
    attempts = 0

    @asynccontextmanager
    async def flaky_open(url: str, settings: StoreSettings) -> AsyncIterator[FakeStore]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise StoreUnavailable("fake", "cannot start the driver")
        yield store

    async with running_sink(sink_config(tmp_path), opener=flaky_open) as h:
        await h.write_all(records(10))  # accepted before the store is open
        await wait_until(lambda: len(store.rows) == 10)
    assert attempts == 3


async def test_cancel_mid_write_spills_memory_and_batch_in_flight(tmp_path, autojump_clock):
    """The grace ran out while the store hung: everything still goes to the spill file."""
    store = FakeStore()
    store.hang = True
    cfg = sink_config(tmp_path, job_log_batch_size=10, job_log_commit_timeout_s=3600.0)
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, "w1", Keyspace("/cron/"), SystemClock())
    sink = LogSink(inboxes.log_sink, ctx, opener=store.opener())
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.run)
        for r in records(25):
            await peers.log_sink.send(Write(r))
        await trio.sleep(1)  # 10 in flight (hung), 15 in memory
        nursery.cancel_scope.cancel()
    spilled = read_jsonl(Path(cfg.spill_dir) / "w1.jsonl")
    assert sorted(line["runId"] for line in spilled) == [r.run_id for r in records(25)]


async def test_cancel_spills_the_records_still_in_the_mailbox(tmp_path, autojump_clock):
    """A forced stop cancels the sink before it read what it was told last (the
    Executor's killed records): they were lost without a word; now they are spilled."""
    store = FakeStore()
    cfg = sink_config(tmp_path)
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, "w1", Keyspace("/cron/"), SystemClock())
    sink = LogSink(inboxes.log_sink, ctx, opener=store.opener())
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.run)
        for r in records(25):  # queued in this step: the sink has read none of them
            peers.log_sink.send_nowait(Write(r))
        nursery.cancel_scope.cancel()
    spilled = read_jsonl(Path(cfg.spill_dir) / "w1.jsonl")
    assert sorted(line["runId"] for line in spilled) == [r.run_id for r in records(25)]
    assert not store.rows


async def test_crash_spills_memory_and_next_incarnation_replays(tmp_path, autojump_clock,
                                                                monkeypatch):
    """A bug in the sink: what it held, and what was still queued for it, goes to disk;
    the supervisor's next incarnation on the same inbox replays it, each record once."""
    store = FakeStore()
    cfg = sink_config(tmp_path, job_log_batch_size=10, job_log_commit_timeout_s=3600.0)
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, "w1", Keyspace("/cron/"), SystemClock())

    async def bug(self: LogSink) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(LogSink, "_write_memory_batch", bug)
    with pytest.RaisesGroup(RuntimeError, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(LogSink(inboxes.log_sink, ctx, opener=store.opener()).run)
            for r in records(25):  # all queued before the crash can cancel this loop
                peers.log_sink.send_nowait(Write(r))
            await trio.sleep_forever()
    spilled = read_jsonl(Path(cfg.spill_dir) / "w1.jsonl")
    assert sorted(line["runId"] for line in spilled) == [r.run_id for r in records(25)]
    assert not store.rows

    monkeypatch.undo()
    sink = LogSink(inboxes.log_sink, ctx, opener=store.opener())
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.run)
        # A Flush waits for memory only; the replay of the spill file is the writer's.
        await wait_until(lambda: sink.statistics_detail().replayed_total == len(spilled))
        await call(peers.log_sink, Flush)
        sink.request_stop()
    assert sorted(store.rows) == [r.run_id for r in records(25)]
    assert sink.statistics_detail().replayed_total == len(spilled)


async def test_stop_with_slow_store_spills_after_drain_bound(tmp_path, autojump_clock):
    store = FakeStore()
    store.hang = True
    cfg = sink_config(tmp_path, job_log_commit_timeout_s=3600.0)
    async with running_sink(cfg, opener=store.opener(), budget=LogSinkBudget(store_drain_s=3.0)) as h:
        await h.write_all(records(30))
        start = trio.current_time()
    assert store.hang_ended_at - start == pytest.approx(3.0, abs=0.1)  # then spilled
    assert len(h.spill_lines()) == 30


async def test_spill_file_reopened_counts_pending_lines(tmp_path):
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir(mode=0o700)
    (spill_dir / "w9.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n"
                                                for r in records(7)))
    spill = await SpillFile.open(spill_dir, "w9", SystemClock())
    try:
        assert spill.pending == 7
        batch = await spill.read_batch(5)
        assert [r.run_id for r in batch.records] == [r.run_id for r in records(5)]
        await spill.commit(batch)
        assert spill.pending == 2
        await spill.append(records(3, prefix="new"))
        rest = await spill.read_batch(100)
        assert len(rest.records) == 5
        await spill.commit(rest)
        assert spill.pending == 0 and (spill_dir / "w9.jsonl").stat().st_size == 0
    finally:
        spill.close()
    assert not (spill_dir / "w9.jsonl").exists()


async def test_records_are_reported_durable_before_a_flush_is_answered(tmp_path, autojump_clock):
    """The worker deletes a run's running key only once its record is durable, and the
    Registrar revokes the lease only after a Flush: both rely on this order."""
    store = FakeStore()
    durable: list[str] = []

    async def on_durable(recs) -> None:
        assert all(r.run_id in store.rows or store.down for r in recs)
        durable.extend(r.run_id for r in recs)

    cfg = sink_config(tmp_path, job_log_batch_size=100, job_log_commit_timeout_s=3600.0)
    async with running_sink(cfg, opener=store.opener(), on_durable=on_durable) as h:
        await h.write_all(records(5))
        await h.flush()
        assert durable == [r.run_id for r in records(5)]
        store.down = True  # spilled records are durable too
        await h.write_all(records(3, prefix="spilled"))
        await h.flush()
        assert durable[5:] == [r.run_id for r in records(3, prefix="spilled")]
        store.down = False
        await wait_until(lambda: h.stats().replayed_total == 3)
    assert len(durable) == 8  # a replay does not report them again
