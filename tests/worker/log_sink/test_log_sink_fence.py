"""The LogSink when its worker is fenced (issue #11, item 2): what it holds goes to the
spill file at once, without waiting for a store write that hangs (one network cut took
etcd and the store away together), and so does every record until the session is back;
once the store answers, each record is stored once.

The fake store never uses threads, so these run under an autojump MockClock; the spill
file's appends run in a thread, so they are awaited in wall time (``wait_until``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from cluster.store import RunRecord
from worker.log_sink.messages import Write
from worker.log_sink.spill import SpillIOError
from worker.registrar.messages import SessionChanged

from log_sink_testkit import FakeStore, record, running_sink, sink_config, wait_until

LEASE = 0x1234


class GatedStore(FakeStore):
    """A FakeStore whose writes hang until ``gate`` is set (then fail if ``down``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()
        self.in_flight: list[str] = []  # run ids of the write that waits at the gate

    async def write_batch(self, recs: Sequence[RunRecord]) -> None:
        if not self.gate.is_set():
            self.in_flight = [r.run_id for r in recs]
            await self.gate.wait()
            self.in_flight = []
        await super().write_batch(recs)


async def fenced_with_a_hung_write(h, store: GatedStore, caplog) -> None:
    """Five records in a hung store write, three in memory; a fence; one record after it
    (a fenced run's): all nine are in the spill file while the write still hangs."""
    await h.write_all([record(i) for i in range(5)])
    await wait_until(lambda: len(store.in_flight) == 5)
    await h.write_all([record(i) for i in range(5, 8)])
    await wait_until(lambda: h.stats().queued == 8)
    assert h.spill_lines() == []
    with caplog.at_level(logging.INFO, logger="worker.log_sink"):
        await h.address.send(SessionChanged(None))
        await wait_until(lambda: h.stats().fence_spilled_total == 8)
        assert len(h.spill_lines()) == 8
        assert not store.gate.is_set() and len(store.in_flight) == 5  # still hanging
        assert [line["runId"] for line in h.spill_lines()] == [record(i).run_id
                                                                 for i in range(8)]
        assert h.stats().queued == 0  # durable: a Flush would be answered now
        await h.address.send(Write(record(8)))  # the fenced run's record comes after
        await wait_until(lambda: h.stats().fence_spilled_total == 9)
        assert h.stats().queued == 0 and len(h.spill_lines()) == 9
        assert store.rows == {}
    fenced_lines = [r.getMessage() for r in caplog.records if "fenced:" in r.getMessage()]
    assert len(fenced_lines) == 1 and fenced_lines[0].startswith(
        f"fenced: 8 run records spilled to {h.spill_path}"), fenced_lines


async def test_a_fence_spills_at_once_then_the_hung_write_lands_and_each_is_stored_once(
        tmp_path, autojump_clock, caplog):
    store = GatedStore()
    cfg = sink_config(tmp_path, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener()) as h:
        await fenced_with_a_hung_write(h, store, caplog)
        with caplog.at_level(logging.INFO, logger="worker.log_sink"):
            await h.address.send(SessionChanged(LEASE))
            store.gate.set()  # the write lands: its five records are stored, and spilled
            await wait_until(lambda: len(store.rows) == 9 and h.stats().replayed_total >= 4)
            # Back in session: records go to the store again, not to the spill file.
            await h.write_all([record(9)])
            await h.flush()
            stats = h.stats()
    assert sorted(store.rows) == [record(i).run_id for i in range(10)]
    assert set(store.writes.values()) == {1}, store.writes  # stored once: none replayed twice
    assert stats.spilled_total == stats.fence_spilled_total == 9
    assert stats.replayed_total == 4  # the five the hung write stored were not replayed
    assert any(r.getMessage().startswith(f"session back on lease {LEASE:#x}: 9 run records")
               for r in caplog.records)
    assert not h.spill_path.exists()


async def test_a_fence_spills_at_once_then_the_hung_write_fails_and_replay_stores_them(
        tmp_path, autojump_clock, caplog):
    store = GatedStore()
    cfg = sink_config(tmp_path, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener()) as h:
        await fenced_with_a_hung_write(h, store, caplog)
        store.down = True
        store.gate.set()  # the hung write fails: its records are in the spill already
        await trio.sleep(1)
        assert h.stats().queued == 0 and len(h.spill_lines()) == 9  # not spilled twice
        store.down = False
        await wait_until(lambda: len(store.rows) == 9 and h.stats().replayed_total >= 9)
        stats = h.stats()
    assert set(store.writes.values()) == {1}, store.writes
    assert stats.replayed_total == 9 and stats.spilled_total == 9


async def test_records_while_fenced_go_through_the_spill_file_even_with_the_store_up(
        tmp_path, autojump_clock):
    """Fenced, a record is made durable on the local disk at once, store or not; the
    store gets it by replay. Back in session, records go to the store directly."""
    store = FakeStore()
    cfg = sink_config(tmp_path, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.address.send(SessionChanged(None))
        await h.address.send(Write(record(0)))
        await wait_until(lambda: len(store.rows) == 1 and h.stats().replayed_total == 1)
        fenced = h.stats()
        await h.address.send(SessionChanged(LEASE))
        await h.write_all([record(1)])
        await h.flush()
        back = h.stats()
    assert (fenced.spilled_total, fenced.fence_spilled_total, fenced.replayed_total) == (1, 1, 1)
    assert (back.spilled_total, back.fence_spilled_total, back.written_total) == (1, 1, 2)
    assert set(store.writes.values()) == {1} and len(store.writes) == 2


async def test_a_full_disk_at_the_fence_keeps_the_records_in_memory(tmp_path, autojump_clock,
                                                                       monkeypatch):
    """The spill append fails: the records stay held (none lost), the next one retries."""
    store = FakeStore()
    store.down = True
    cfg = sink_config(tmp_path, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener()) as h:
        await h.write_all([record(i) for i in range(3)])
        spill = h.sink._spill
        real_append = spill.append
        refused = 0

        async def full(recs: Sequence[RunRecord]) -> None:
            nonlocal refused
            refused += 1
            raise SpillIOError(h.spill_path, "append", OSError(28, "No space left on device"))

        monkeypatch.setattr(spill, "append", full)
        await h.address.send(SessionChanged(None))
        await wait_until(lambda: refused >= 1)
        assert h.stats().queued == 3 and h.stats().spill_full
        monkeypatch.setattr(spill, "append", real_append)
        await trio.sleep(6)  # past the spill backoff (5 s at most)
        await h.address.send(Write(record(3)))
        await wait_until(lambda: h.stats().queued == 0)
        assert len(h.spill_lines()) == 4 and not h.stats().spill_full
        store.down = False
        await wait_until(lambda: len(store.rows) == 4)
    assert set(store.writes.values()) == {1}
