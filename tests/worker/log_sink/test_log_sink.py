"""The LogSink on SQLite and on an in-memory fake store: batching, flush, outage and spill,
replay (own file, orphans, torn tails), bad rows, backpressure, stop and cancel.

The fake store never uses threads, so tests on it run under an autojump MockClock with
exact timings; SQLite tests use wall time and generous bounds.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import Address, call
from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.store import (
    RunRecord,
    StoreConfigError,
    StoreQueryError,
    StoreSettings,
    StoreUnavailable,
    open_store,
)
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.log_sink.actor import LogSink, LogSinkStatistics
from worker.log_sink.store_writer import SLOW_WRITE_S, StoreOpener
from worker.log_sink.messages import Flush, LogSinkMsg, Write
from worker.log_sink.spill import SpillFile, SpillFileBusy, SpillIOError
from worker.shutdown_budget import LogSinkBudget

T0 = 1_700_000_000_000
MIB = 1024 * 1024


# -- helpers (test_log_sink_mysql imports them) -------------------------------------


def record(i: int, *, output: str = "ok\n", prefix: str = "run") -> RunRecord:
    return RunRecord(
        run_id=f"{prefix}-{i:06d}", job_name=f"job-{i % 7}", worker="w1", command="echo ok",
        output=output, err="", exit_code=0, status="succeeded", trigger="schedule", attempt=1,
        plan_time=T0 + i, schedule_time=T0 + i, start_time=T0 + i + 1, end_time=T0 + i + 2,
    )


def records(n: int, **kwargs) -> list[RunRecord]:
    return [record(i, **kwargs) for i in range(n)]


def sink_config(tmp_path: Path, **overrides) -> Config:
    base = {
        "db_url": f"sqlite:///{tmp_path / 'runs.db'}",
        "spill_dir": str(tmp_path / "spill"),
        "db_timeout_s": 2.0,
        "job_log_commit_timeout_s": 0.05,
    }
    return dataclasses.replace(Config(), **{**base, **overrides})


@dataclass
class SinkHarness:
    sink: LogSink
    address: Address[LogSinkMsg]
    spill_path: Path
    rejected_path: Path

    async def write_all(self, recs: Sequence[RunRecord]) -> None:
        for r in recs:
            await self.address.send(Write(r))

    async def flush(self, timeout_s: float = 30.0) -> None:
        """Flush, bounded in wall time (see wait_until)."""
        answered = trio.Event()

        async def flush_once() -> None:
            await call(self.address, Flush)
            answered.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flush_once)
            await wait_until(answered.is_set, timeout_s)

    def stats(self) -> LogSinkStatistics:
        return self.sink.statistics_detail()

    def spill_lines(self) -> list[dict]:
        return read_jsonl(self.spill_path)

    def rejected_lines(self) -> list[dict]:
        return read_jsonl(self.rejected_path)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@asynccontextmanager
async def running_sink(cfg: Config, *, worker_id: str = "w1", opener: StoreOpener = open_store,
                       **kwargs) -> AsyncIterator[SinkHarness]:
    """A started LogSink; stopped gracefully (drained) when the block ends."""
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, worker_id, Keyspace("/cron/"), SystemClock())
    sink = LogSink(inboxes.log_sink, ctx, opener=opener, **kwargs)
    spill_dir = Path(cfg.spill_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.run)
        yield SinkHarness(sink, peers.log_sink, spill_dir / f"{worker_id}.jsonl",
                          spill_dir / f"{worker_id}.rejected.jsonl")
        sink.request_stop()


async def wait_until(predicate, timeout_s: float = 30.0, step_s: float = 0.01) -> None:
    """Poll ``predicate`` for up to ``timeout_s`` of *wall* time: under an autojump
    MockClock, a trio deadline would be jumped to while a spill thread runs."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {predicate}")
        await trio.sleep(step_s)


class FakeStore:
    """An in-memory run store without threads. ``down``: raise StoreUnavailable;
    ``poison``: a batch holding one of these run ids fails as a bad row would;
    ``hang``: never answer; ``delay_s``: each write takes that long."""

    def __init__(self) -> None:
        self.rows: dict[str, RunRecord] = {}
        self.writes: Counter[str] = Counter()
        self.batches: list[int] = []
        self.down = False
        self.hang = False
        self.delay_s = 0.0
        self.hang_ended_at: float | None = None
        self.poison: set[str] = set()
        self.error: Exception | None = None

    async def write_batch(self, recs: Sequence[RunRecord]) -> None:
        await trio.sleep(self.delay_s)
        if self.hang:
            try:
                await trio.sleep_forever()
            finally:
                self.hang_ended_at = trio.current_time()
        if self.down:
            raise StoreUnavailable("fake", "down")
        if self.error is not None:
            raise self.error
        if bad := [r.run_id for r in recs if r.run_id in self.poison]:
            raise StoreQueryError("fake", f"bad value in row {bad[0]}")
        self.batches.append(len(recs))
        for r in recs:
            self.rows[r.run_id] = r
            self.writes[r.run_id] += 1

    def opener(self) -> StoreOpener:
        @asynccontextmanager
        async def open_fake(url: str, settings: StoreSettings) -> AsyncIterator[FakeStore]:
            yield self
        return open_fake


class PoisonStore:
    """A real store that refuses, as a bad row, any batch holding a poisoned run id."""

    def __init__(self, inner, poison: set[str]) -> None:
        self._inner = inner
        self._poison = poison

    async def write_batch(self, recs: Sequence[RunRecord]) -> None:
        if bad := [r.run_id for r in recs if r.run_id in self._poison]:
            raise StoreQueryError("poison", f"Incorrect string value in row {bad[0]}")
        await self._inner.write_batch(recs)


def poison_opener(poison: set[str]) -> StoreOpener:
    @asynccontextmanager
    async def open_poisoned(url: str, settings: StoreSettings) -> AsyncIterator[PoisonStore]:
        async with open_store(url, settings) as inner:
            yield PoisonStore(inner, poison)
    return open_poisoned


async def stored_ids(url: str) -> list[str]:
    async with open_store(url) as store:
        ids: list[str] = []
        cursor = None
        while True:
            page = await store.query(cursor=cursor, limit=1000)
            ids += [r.run_id for r in page.records]
            if (cursor := page.next_cursor) is None:
                return ids


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


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


async def test_crash_spills_memory_and_next_incarnation_replays(tmp_path, autojump_clock,
                                                                monkeypatch):
    """A bug in the sink: what it held goes to disk, the supervisor's next incarnation on
    the same inbox replays it and takes the messages still queued."""
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
    assert 10 <= len(spilled) < 25 and not store.rows

    monkeypatch.undo()
    sink = LogSink(inboxes.log_sink, ctx, opener=store.opener())
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.run)
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
