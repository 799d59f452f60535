"""The LogSink: every run record reaches the store, or a file on local disk; none is dropped.

::

    Write ──mailbox──> receiver ──> memory ──────── writer ──write_batch──> run store
                                      │ beyond sink_memory_records,        ▲
                                      │ oldest first (fsync'd)             │ replay, oldest
                                      └──────────> spill file ─────────────┘ first

Three tasks, so that the mailbox keeps draining while a store call hangs (up to its
timeout): the *receiver* moves messages into memory, spilling the oldest records to the
spill file while memory holds more than ``sink_memory_records``, unless a write to a
healthy store is in flight for less than ``SLOW_WRITE_S``: then it waits for that write
instead, because under a merely fast producer spilling and reading back costs more CPU
than the write itself (measured: ~70,000 records/s appended, ~43,000/s read back,
~35,000/s into MariaDB: spilling would halve the throughput). The *writer* writes one
batch at a time with one ``write_batch``: the spill file's oldest lines first (replay,
including those a previous process left), then memory once ``job_log_batch_size``
records wait, the oldest has waited ``job_log_commit_timeout_s``, or a Flush asks; the
*store holder* opens the store in the background (retried with backoff), since the
worker must start and run jobs while the database is down.

Failures
    StoreUnavailable, a store-wide error (wrong credentials, a TLS certificate refused,
    unusable table) or a store not open yet: the batch goes back to memory and the writer retries after a backoff
    (0.1 s doubling to 5 s); records keep arriving and spill beyond the bound. Any other
    error is blamed on the rows: the batch is bisected, so a bad row costs O(log n)
    extra writes and never its neighbours (DESIGN §11: one oversize output must not
    lose a batch of 100); a row that fails alone goes to the rejected file with the
    reason, counted and logged at ERROR (see ``spill``).

Mailbox full: senders wait (backpressure), never a drop. The receiver only pauses while
it appends to the spill file, while memory is over its bound and a healthy store write
is in flight (at most ``SLOW_WRITE_S``), or while the disk refuses the spill (it retries
with backoff): so the mailbox stays near empty, even while the store is down.

Bounds: memory holds at most ``sink_memory_records`` + one batch (in flight to the
store) + one spill chunk (in flight to the disk) records.

``Flush(reply)`` is answered once every record received before it is in the store or
in the fsync'd spill file; while the store is down it spills them instead of waiting.

Stop (drain): memory is written to the store for at most ``budget.store_drain_s`` if the store
is up, and the rest is spilled (fsync) — nothing is lost on SIGTERM. A crash or a
cancel (grace exceeded) also spills memory before the actor ends, so the next
incarnation, or the next process, replays it. Only a hard kill (SIGKILL, power loss)
loses the records still in memory; records in the spill file survive it.

Worker id: the spill file is named after the worker id, but a stable id is not needed:
a new process adopts every spill file that no live process holds, if it is one of
ours: a regular file owned by our user, named ``<worker id>.jsonl`` (``spill``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import trio

from actors import Actor, Inbox, Reply
from cluster.backoff import Backoff
from cluster.config import DbUrl
from cluster.store import (
    RunRecord,
    StoreClosedError,
    StoreConfigError,
    StoreError,
    StoreSchemaError,
    StoreSettings,
    StoreUnavailable,
    open_store,
)

from worker.context import WorkerContext
from worker.shutdown_budget import LogSinkBudget
from .messages import Flush, LogSinkMsg, Write
from .spill import Rejection, SpillError, SpillFile

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
FINAL_SPILL_S = 10.0  # shielded spill on a crash or cancel
SPILL_CHUNK_MIN = 100  # records per spill append at least: one fsync per chunk
SLOW_WRITE_S = 1.0  # a write in flight longer than this: the store is slow, spill
# Errors of the store as a whole, not of the rows: retrying later is the only cure.
STORE_WIDE_ERRORS = (StoreUnavailable, StoreConfigError, StoreSchemaError, StoreClosedError)


class BatchStore(Protocol):
    """What the LogSink needs of a RunStore."""

    async def write_batch(self, records: Sequence[RunRecord]) -> None: ...


StoreOpener = Callable[[DbUrl, StoreSettings], AbstractAsyncContextManager[BatchStore]]
# Called with records once they are durable; the worker deletes their running keys.
OnDurable = Callable[[Sequence[RunRecord]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LogSinkStatistics:
    queued: int  # in memory, including batches in flight
    spilled: int  # in the spill file now, not yet replayed
    written_total: int  # written to the store (replayed ones included)
    spilled_total: int  # appended to the spill file
    replayed_total: int  # written to the store from the spill file
    rejected_total: int  # refused for good: in the rejected file
    batches: int  # batches written
    last_error: str | None
    store_up: bool  # open, and the last write did not fail


class _Entry(NamedTuple):
    seq: int  # arrival order; unique, so entries sort without comparing records
    received_at: float  # trio time
    record: RunRecord


def _backoff() -> Backoff:
    return Backoff(BACKOFF_MIN_S, BACKOFF_MAX_S)


def store_settings(db_timeout_s: float) -> StoreSettings:
    """``db_timeout_s`` bounds the connect and the query of one store call, each."""
    return StoreSettings(connect_timeout_s=db_timeout_s, query_timeout_s=db_timeout_s)


class LogSink(Actor[LogSinkMsg]):
    """The worker's run-record writer (module doc). Ready at once, store or not.

    ``opener`` opens the store (tests pass fakes); ``budget`` bounds the graceful stop:
    store writes for ``store_drain_s``, then the rest is spilled, then ``on_durable``
    gets ``durable_s``; its sum is the supervisor's grace for this child.
    """

    def __init__(
        self,
        inbox: Inbox[LogSinkMsg],
        ctx: WorkerContext,
        *,
        opener: StoreOpener = open_store,
        budget: LogSinkBudget = LogSinkBudget(),
        on_durable: OnDurable | None = None,
    ) -> None:
        super().__init__(inbox)
        cfg = ctx.config
        self._ctx = ctx
        self._opener = opener
        self._on_durable = on_durable
        self._settings = store_settings(cfg.db_timeout_s)
        self._batch_size = cfg.job_log_batch_size
        self._commit_timeout_s = cfg.job_log_commit_timeout_s
        self._memory_bound = cfg.sink_memory_records
        self._spill_chunk = max(cfg.job_log_batch_size, SPILL_CHUNK_MIN)
        self._budget = budget
        self._spill: SpillFile | None = None
        self._store: BatchStore | None = None
        # Invariant: memory is sorted by seq; every record received is in exactly one
        # of memory, a transit batch (being written or spilled), the store, the spill file.
        self._memory: deque[_Entry] = deque()
        self._transit: dict[int, list[_Entry]] = {}
        self._transit_keys = itertools.count()
        self._flushes: deque[tuple[int, Reply[None]]] = deque()  # (records before it, reply)
        self._received = 0
        self._store_backoff = _backoff()
        self._spill_backoff = _backoff()
        self._wake = trio.Event()  # the writer waits on it: work may be due
        self._write_started_at: float | None = None  # trio time; None: no write in flight
        self._write_done = trio.Event()  # set after each write attempt
        self._stopping = False
        self._step_scope = trio.CancelScope()  # the writer's current step
        self._writer_stopped = trio.Event()
        self._drain_deadline = math.inf
        self._written_total = self._spilled_total = self._replayed_total = self._batches = 0
        self._last_error: str | None = None

    # -- the hooks ------------------------------------------------------------------

    async def setup(self) -> None:
        """Lock the spill file (adopting orphans); the store opens in the background."""
        cfg = self._ctx.config
        self._spill = await SpillFile.open(cfg.spill_path, self._ctx.worker_id, self._ctx.clock)

    def background(self) -> tuple[Callable[[], Awaitable[None]], ...]:
        return (self._hold_store, self._write_loop)

    async def handle(self, msg: LogSinkMsg) -> None:
        match msg:
            case Write(record):
                self._accept(record)
                await self._keep_memory_bounded()
            case Flush(reply):
                self._flushes.append((self._received, reply))
                self._answer_flushes()
                self._wake.set()

    async def drain(self) -> None:
        """Graceful stop: memory to the store while it works (bounded), the rest spilled.

        The writer's step in progress (a store call may hang up to its timeout) shares
        the drain's deadline; it is awaited, so that one writer writes at a time.
        """
        self._stopping = True
        self._drain_deadline = trio.current_time() + self._budget.store_drain_s
        self._step_scope.deadline = self._drain_deadline
        self._wake.set()
        await self._writer_stopped.wait()
        with trio.move_on_at(self._drain_deadline):
            while self._memory and self._store is not None and not self._store_backoff.failures:
                await self._write_memory_batch()
        await self._spill_everything()

    async def teardown(self) -> None:
        """However it ends (a crash, a cancel: grace exceeded), memory is spilled
        (shielded, bounded) so that the next incarnation or process replays it."""
        with trio.move_on_after(FINAL_SPILL_S, shield=True):
            await self._spill_rest()
        assert self._spill is not None  # setup opened it
        self._spill.close()

    async def _spill_rest(self) -> None:
        """After a crash, a cancel, or a failed drain: the last chance to keep records."""
        try:
            await self._spill_everything()
        except SpillError as exc:
            log.critical("%d run records LOST: the spill file failed at stop: %s",
                         self._queued(), exc)
            for _, reply in self._flushes:
                reply.fail(exc)
            self._flushes.clear()

    def statistics_detail(self) -> LogSinkStatistics:
        spill = self._spill
        return LogSinkStatistics(
            queued=self._queued(),
            spilled=spill.pending if spill else 0,
            written_total=self._written_total,
            spilled_total=self._spilled_total,
            replayed_total=self._replayed_total,
            rejected_total=spill.rejected_total if spill else 0,
            batches=self._batches,
            last_error=self._last_error,
            store_up=self._store is not None and not self._store_backoff.failures,
        )

    def _queued(self) -> int:
        return len(self._memory) + sum(map(len, self._transit.values()))

    # -- the store holder -----------------------------------------------------------

    async def _hold_store(self) -> None:
        target = self._ctx.config.db  # parsed: the password never enters a string
        backoff = _backoff()
        while True:
            try:
                async with self._opener(target, self._settings) as store:
                    self._store = store
                    self._wake.set()
                    try:
                        await trio.sleep_forever()
                    finally:
                        self._store = None
            except (StoreError, OSError) as exc:
                delay_s = backoff.failed()
                said = _describe(exc)
                # One line per new reason: a CA file that stays unreadable is said once.
                level = logging.WARNING if said != self._last_error else logging.DEBUG
                self._last_error = said
                log.log(level, "run store %s cannot be opened (%s); retry in %.1f s",
                        target.redacted(), exc, delay_s)
                await trio.sleep(delay_s)

    # -- receiving -----------------------------------------------------------------

    def _accept(self, record: RunRecord) -> None:
        self._memory.append(_Entry(self._received, trio.current_time(), record))
        self._received += 1
        if len(self._memory) == 1 or len(self._memory) >= self._batch_size:
            self._wake.set()

    async def _keep_memory_bounded(self) -> None:
        """While memory is over its bound: wait for a store write that is keeping up,
        else spill the oldest records; while the disk refuses, wait (the mailbox fills:
        backpressure) rather than drop."""
        while len(self._memory) > self._memory_bound:
            if (deadline := self._keeping_up_until()) is not None:
                with trio.move_on_at(deadline):
                    await self._write_done.wait()
                continue
            if trio.current_time() < self._spill_backoff.retry_at:
                await trio.sleep_until(self._spill_backoff.retry_at)
                continue
            excess = len(self._memory) - self._memory_bound
            await self._spill_entries(self._pop(max(excess, self._spill_chunk)))

    def _keeping_up_until(self) -> float | None:
        """While a write to a healthy store is in flight and not yet slow: when it
        becomes slow. Spilling costs more than waiting for such a write (module doc)."""
        started = self._write_started_at
        if started is None or self._store_backoff.failures:
            return None
        deadline = started + SLOW_WRITE_S
        return deadline if trio.current_time() < deadline else None

    # -- the writer -----------------------------------------------------------------

    async def _write_loop(self) -> None:
        """One step at a time until drain stops it; drain then awaits ``_writer_stopped``."""
        try:
            while not self._stopping:
                self._wake = trio.Event()  # before looking: no wake-up is missed
                with self._step_scope:
                    await self._step()
                self._step_scope = trio.CancelScope()
        finally:
            self._writer_stopped.set()

    async def _step(self) -> None:
        now = trio.current_time()
        if self._store is None or now < self._store_backoff.retry_at:
            if self._flush_blocked() and now >= self._spill_backoff.retry_at:
                await self._spill_for_flush()
            else:
                await self._wait_until(self._retry_deadline())
        elif self._spill is not None and self._spill.pending:
            await self._replay_batch()
        elif self._batch_due(now):
            await self._write_memory_batch()
        else:
            await self._wait_until(self._batch_deadline())

    def _retry_deadline(self) -> float:
        deadline = math.inf if self._store is None else self._store_backoff.retry_at
        if self._flush_blocked():
            deadline = min(deadline, self._spill_backoff.retry_at)
        return deadline

    def _batch_due(self, now: float) -> bool:
        return bool(self._memory) and (
            len(self._memory) >= self._batch_size
            or now >= self._memory[0].received_at + self._commit_timeout_s
            or self._flush_blocked()
        )

    def _batch_deadline(self) -> float:
        return self._memory[0].received_at + self._commit_timeout_s if self._memory else math.inf

    async def _wait_until(self, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await self._wake.wait()

    async def _write_memory_batch(self) -> None:
        entries = self._pop(self._batch_size)
        key = self._enter_transit(entries)
        records = [e.record for e in entries]
        ok = await self._write(records)
        self._leave_transit(key, restore=not ok)
        if ok:
            await self._durable(records)
            self._answer_flushes()

    async def _durable(self, records: list[RunRecord]) -> None:
        """Tell the owner these records are safe (in the store or the spill file).

        Awaited before any Flush is answered: what follows a Flush may rely on it.
        """
        if self._on_durable is not None and records:
            await self._on_durable(records)

    async def _replay_batch(self) -> None:
        assert self._spill is not None
        batch = await self._spill.read_batch(self._batch_size)
        if await self._write(batch.records):
            await self._spill.commit(batch)
            self._replayed_total += len(batch.records)
            if not self._spill.pending:
                log.info("spill file replayed: %d records in total", self._replayed_total)

    async def _write(self, records: list[RunRecord]) -> bool:
        """One batch to the store, bisecting around bad rows; False: retry later."""
        store = self._store
        if store is None:
            return False
        self._write_started_at = trio.current_time()
        try:
            rejected = await self._write_bisecting(store, records)
        except STORE_WIDE_ERRORS as exc:
            self._store_failed(exc)
            return False
        finally:
            self._write_started_at = None
            self._write_done.set()
            self._write_done = trio.Event()
        if rejected:
            assert self._spill is not None
            await self._spill.reject(rejected)
        if self._store_backoff.failures:
            log.info("run store back after %d failed attempts", self._store_backoff.failures)
        self._store_backoff.succeeded()
        self._written_total += len(records) - len(rejected)
        self._batches += 1
        return True

    async def _write_bisecting(
        self, store: BatchStore, records: list[RunRecord]
    ) -> list[Rejection]:
        """Write ``records``; return those that failed alone. Raises STORE_WIDE_ERRORS
        (the caller retries the whole batch: upserts make rewriting the rest harmless)."""
        try:
            await store.write_batch(records)
            return []
        except STORE_WIDE_ERRORS:
            raise
        except Exception as exc:  # blamed on the rows: one bad row must not sink the others
            if len(records) == 1:
                return [Rejection(_describe(exc), record=records[0])]
            log.warning("a batch of %d run records failed (%s); bisecting", len(records), exc)
            mid = len(records) // 2
            return [*await self._write_bisecting(store, records[:mid]),
                    *await self._write_bisecting(store, records[mid:])]

    def _store_failed(self, exc: StoreError) -> None:
        delay_s = self._store_backoff.failed()
        self._last_error = _describe(exc)
        level = logging.WARNING if isinstance(exc, StoreUnavailable) else logging.ERROR
        if self._store_backoff.failures == 1:
            log.log(level, "run store failed (%s): keeping records, retrying with backoff", exc)
        else:
            log.debug("run store still failing (%s); retry in %.1f s", exc, delay_s)

    # -- spilling and flushing ------------------------------------------------------

    def _flush_blocked(self) -> bool:
        """A Flush waits on a record still in memory."""
        return bool(self._flushes and self._memory
                    and self._memory[0].seq < self._flushes[-1][0])

    async def _spill_for_flush(self) -> None:
        target = self._flushes[-1][0]
        n = sum(1 for e in itertools.takewhile(lambda e: e.seq < target, self._memory))
        await self._spill_entries(self._pop(n))

    async def _spill_entries(self, entries: list[_Entry]) -> None:
        """Append to the spill file; on failure, back to memory and back off."""
        assert self._spill is not None
        key = self._enter_transit(entries)
        try:
            await self._spill.append([e.record for e in entries])
        except SpillError as exc:
            self._leave_transit(key, restore=True)
            delay_s = self._spill_backoff.failed()
            self._last_error = _describe(exc)
            log.error("cannot spill %d run records (%s); kept in memory, retry in %.1f s",
                      len(entries), exc, delay_s)
            return
        self._leave_transit(key, restore=False)
        self._spill_backoff.succeeded()
        self._spilled_total += len(entries)
        await self._durable([e.record for e in entries])
        self._answer_flushes()

    async def _spill_everything(self) -> None:
        """Memory and batches in flight to the spill file (SpillError: nothing changed)."""
        entries = sorted([*self._memory, *itertools.chain(*self._transit.values())])
        if entries:
            assert self._spill is not None
            await self._spill.append([e.record for e in entries])
            self._spilled_total += len(entries)
            log.info("spilled %d run records at stop", len(entries))
        self._memory.clear()
        self._transit.clear()
        with trio.move_on_after(self._budget.durable_s, shield=True):
            await self._durable([e.record for e in entries])
        self._answer_flushes()

    def _answer_flushes(self) -> None:
        durable_below = min((batch[0].seq for batch in self._transit.values()),
                            default=self._received)
        if self._memory:
            durable_below = min(durable_below, self._memory[0].seq)
        while self._flushes and self._flushes[0][0] <= durable_below:
            self._flushes.popleft()[1].send(None)

    # -- memory bookkeeping ---------------------------------------------------------

    def _pop(self, n: int) -> list[_Entry]:
        return [self._memory.popleft() for _ in range(min(n, len(self._memory)))]

    def _enter_transit(self, entries: list[_Entry]) -> int:
        key = next(self._transit_keys)
        if entries:
            self._transit[key] = entries
        return key

    def _leave_transit(self, key: int, *, restore: bool) -> None:
        entries = self._transit.pop(key, [])
        if restore and entries:
            if not self._memory or entries[-1].seq < self._memory[0].seq:
                self._memory.extendleft(reversed(entries))
            else:  # records left memory meanwhile: merge, keeping it sorted by seq
                self._memory = deque(heapq.merge(entries, self._memory))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
