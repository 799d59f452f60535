"""What the LogSink tests share: records, a config, a running sink and its harness,
an in-memory fake store (no threads, so an autojump MockClock gives exact timings),
a store that refuses poisoned rows, and a wall-time ``wait_until``.

Imported by the test_log_sink* and test_spill_trust modules beside it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from actors import Address, call
from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, StoreQueryError, StoreSettings, StoreUnavailable, open_store
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.log_sink.actor import LogSink, LogSinkStatistics
from worker.log_sink.store_writer import StoreOpener
from worker.log_sink.messages import Flush, LogSinkMsg, Write


T0 = 1_700_000_000_000
MIB = 1024 * 1024


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
