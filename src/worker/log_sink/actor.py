"""The LogSink: every run record reaches the store, or a file on local disk; none is dropped.

::

    Write ──mailbox──> handle ──> memory ──────── writer ──write_batch──> run store
                                    │ beyond sink_memory_records,        ▲
                                    │ oldest first (fsync'd)             │ replay, oldest
                                    └──────────> spill file ─────────────┘ first

Three tasks, so that the mailbox keeps draining while a store call hangs (up to its
timeout): ``handle`` moves messages into memory, spilling the oldest records to the
spill file while memory holds more than ``sink_memory_records``, unless a write to a
healthy store is in flight for less than ``SLOW_WRITE_S``: then it waits for that write
instead, because under a merely fast producer spilling and reading back costs more CPU
than the write itself (measured: ~70,000 records/s appended, ~43,000/s read back,
~35,000/s into MariaDB: spilling would halve the throughput). The *writer* (a
background task) writes one batch at a time with one ``write_batch``: the spill file's
oldest lines first (replay, including those a previous process left), then memory once
``job_log_batch_size`` records wait, the oldest has waited ``job_log_commit_timeout_s``,
or a Flush asks; the *store holder* (a background task) opens the store, retried with
backoff, since the worker must start and run jobs while the database is down.

Parts: ``ledger`` (where each record is until durable; the waiting Flushes),
``store_writer`` (the store: opening it, writing a batch, its failures), ``spill``
(the files on disk). This module is the policy: when to write, replay or spill.

Failures: while the store fails as a whole (``store_writer``), records stay in memory
and spill beyond the bound, and the writer retries after a backoff; a row the store
refuses for good goes to the rejected file.

Disk full (or any failure of a spill append): the records stay in memory and the spill
is retried with the same backoff (0.1 s doubling to 5 s: space that returns is found
within 5 s). The ``SpillRoom`` (``worker.spill_room``) says so once, in the log, the
metrics and ``/healthz``, and the Locker claims no new fire meanwhile: only the runs
already claimed still send records. They are never dropped: memory holds its bound
(below), then the mailbox (``log_chan_len``) fills, then senders wait (backpressure: a
run's task waits to hand over its record, its ``running`` key stays). The state ends
when a spill append succeeds, or when the store took a batch and memory is back
within its bound. A stop in this state (store down, disk full) has nowhere to put
memory: its records are logged CRITICAL as lost, with their count (``teardown``).

Sends to: no actor. ``on_durable`` (a callback, not a message) is told of records once
they are durable: the worker deletes their running keys. With ``alert_repeat_s`` (the
alert settings' ``repeat_s``, read at each batch) every batch is written with its alert
decisions in one store transaction (``RunStore.write_batch``): no record is durable,
and no running key released, before its alert is decided (``store_writer``).

Mailbox full: senders wait (backpressure), never a drop. ``handle`` only pauses while
it appends to the spill file, while memory is over its bound and a healthy store write
is in flight (at most ``SLOW_WRITE_S``), or while the disk refuses the spill (it retries
with backoff): so the mailbox stays near empty, even while the store is down.

Bounds: memory holds at most ``sink_memory_records`` + one batch (in flight to the
store) + one spill chunk (in flight to the disk) records.

``Flush(reply)`` is answered once every record received before it is in the store or
in the fsync'd spill file; while the store is down it spills them instead of waiting.

Fenced (``SessionChanged(None)``, its runs being killed): every record not yet known
stored (in memory, or in a store write that hangs) and each until the session is back
is appended to the spill file at once (``fence``): a worker dying then loses none.

Stop (drain): memory is written to the store for at most ``budget.store_drain_s`` if the store
is up, and the rest is spilled (fsync) — nothing is lost on SIGTERM. A crash or a
cancel (grace exceeded, a second signal) also spills memory, and the records still
queued in its mailbox, before the actor ends (``teardown``), so the next incarnation,
or the next process, replays them. Only a hard kill (SIGKILL, power
loss) loses the records still in memory; records in the spill file survive it.

Worker id: the spill file is named after the worker id, but a stable id is not needed:
a new process adopts every spill file that no live process holds, if it is one of
ours: a regular file owned by our user, named ``<worker id>.jsonl`` (``spill``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import trio

from actors import Actor, Inbox
from cluster.store import RunRecord, open_store

from worker.context import WorkerContext
from worker.shutdown_budget import LogSinkBudget
from worker.spill_room import SpillRoom
from .fence import Fence
from .ledger import Entry, Ledger
from .messages import Flush, LogSinkMsg, SessionChanged, Write
from .spill import Rejection, SpillError, SpillFile
from .statistics import LogSinkStatistics
from .store_writer import RepeatS, StoreOpener, StoreWriter, retry_backoff, store_settings

log = logging.getLogger(__name__)

FINAL_SPILL_S = 10.0  # shielded spill on a crash or cancel
SPILL_CHUNK_MIN = 100  # records per spill append at least: one fsync per chunk

# Called with records once they are durable; the worker deletes their running keys.
OnDurable = Callable[[Sequence[RunRecord]], Awaitable[None]]


class LogSink(Actor[LogSinkMsg]):
    """The worker's run-record writer (module doc). Ready at once, store or not.

    ``opener`` opens the store (tests pass fakes); ``budget`` bounds the graceful stop:
    store writes for ``store_drain_s``, then the rest is spilled, then ``on_durable``
    gets ``durable_s``; its sum is the supervisor's grace for this child. ``room``: the
    worker's ``SpillRoom``, which this actor alone changes (a fresh one if not given).
    """

    def __init__(
        self,
        inbox: Inbox[LogSinkMsg],
        ctx: WorkerContext,
        *,
        opener: StoreOpener = open_store,
        budget: LogSinkBudget = LogSinkBudget(),
        on_durable: OnDurable | None = None,
        room: SpillRoom | None = None,
        alert_repeat_s: RepeatS | None = None,
    ) -> None:
        super().__init__(inbox)
        cfg = ctx.config
        self._ctx = ctx
        self._on_durable = on_durable
        self._batch_size = cfg.job_log_batch_size
        self._commit_timeout_s = cfg.job_log_commit_timeout_s
        self._memory_bound = cfg.sink_memory_records
        self._spill_chunk = max(cfg.job_log_batch_size, SPILL_CHUNK_MIN)
        self._budget = budget
        self._room = room if room is not None else SpillRoom()
        self._spill: SpillFile | None = None  # opened by setup
        self._store = StoreWriter(opener, cfg.db, store_settings(cfg.db_timeout_s),
                                  on_open=self._wake_writer, reject=self._reject,
                                  alert_repeat_s=alert_repeat_s)
        self._ledger = Ledger()
        self._spill_backoff = retry_backoff()
        self._wake = trio.Event()  # the writer waits on it: work may be due
        self._stopping = False
        self._step_scope = trio.CancelScope()  # the writer's current step
        self._writer_stopped = trio.Event()
        self._drain_deadline = math.inf
        self._spilled_total = self._replayed_total = 0
        self._fence = Fence()

    # -- the hooks ------------------------------------------------------------------

    async def setup(self) -> None:
        """Lock the spill file (adopting orphans); the store opens in the background."""
        cfg = self._ctx.config
        self._spill = await SpillFile.open(cfg.spill_path, self._ctx.worker_id, self._ctx.clock)

    def background(self) -> tuple[Callable[[], Awaitable[None]], ...]:
        return (self._store.hold, self._write_loop)

    async def handle(self, msg: LogSinkMsg) -> None:
        match msg:
            case Write(record):
                self._accept(record)
                if self._fence.fenced:
                    await self._secure_held()
                await self._keep_memory_bounded()
            case Flush(reply):
                self._ledger.add_flush(reply)
                self._wake.set()
            case SessionChanged(None):
                assert self._spill is not None  # setup opened it
                spilled = await self._secure_held()
                self._fence.began(spilled, self._ledger.queued, self._spill.path)
            case SessionChanged(lease_id) if self._fence.fenced:
                self._fence.ended(lease_id)

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
            while self._ledger.memory and self._store.up:
                await self._write_memory_batch()
        await self._spill_everything()

    async def teardown(self) -> None:
        """However it ends (a crash, a cancel: grace exceeded), memory is spilled
        (shielded, bounded) so that the next incarnation or process replays it."""
        self._take_queued()
        with trio.move_on_after(FINAL_SPILL_S, shield=True):
            await self._spill_rest()
        assert self._spill is not None  # setup opened it
        self._spill.close()

    def _take_queued(self) -> None:
        """Records still in the mailbox join memory, so that the final spill keeps them:
        a forced stop (a second signal, the budget spent) cancels the sink before it has
        read what the Executor told it last (its runs' killed records). A next
        incarnation after a crash replays them from the spill file instead."""
        while True:
            try:
                msg = self.inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            match msg:
                case Write(record):
                    self._accept(record)
                case Flush(reply):
                    self._ledger.add_flush(reply)
                case _:
                    pass  # a session change: nothing is written after this any more

    def statistics_detail(self) -> LogSinkStatistics:
        spill = self._spill
        return LogSinkStatistics(
            queued=self._ledger.queued,
            spilled=spill.pending if spill else 0,
            written_total=self._store.written_total,
            spilled_total=self._spilled_total,
            replayed_total=self._replayed_total,
            fence_spilled_total=self._fence.spilled_total,
            rejected_total=spill.rejected_total if spill else 0,
            batches=self._store.batches,
            last_error=self._store.last_error,
            store_up=self._store.up,
            spill_full=self._room.full,
        )

    # -- receiving ------------------------------------------------------------------

    def _accept(self, record: RunRecord) -> None:
        self._ledger.accept(record, trio.current_time())
        waiting = len(self._ledger.memory)
        if waiting == 1 or waiting >= self._batch_size:
            self._wake.set()

    async def _keep_memory_bounded(self) -> None:
        """While memory is over its bound: wait for a store write that is keeping up,
        else spill the oldest records; while the disk refuses, wait (the mailbox fills:
        backpressure) rather than drop."""
        while len(self._ledger.memory) > self._memory_bound:
            if (deadline := self._store.keeping_up_until()) is not None:
                with trio.move_on_at(deadline):
                    await self._store.write_finished()
                continue
            if trio.current_time() < self._spill_backoff.retry_at:
                await trio.sleep_until(self._spill_backoff.retry_at)
                continue
            excess = len(self._ledger.memory) - self._memory_bound
            await self._spill_entries(self._ledger.pop(max(excess, self._spill_chunk)))

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

    def _wake_writer(self) -> None:
        self._wake.set()

    async def _step(self) -> None:
        now = trio.current_time()
        if now < self._store.retry_at():  # not open, or backing off
            if self._ledger.flush_blocked() and now >= self._spill_backoff.retry_at:
                await self._spill_entries(self._ledger.pop(self._ledger.blocking_last_flush()))
            else:
                await self._wait_until(self._retry_deadline())
        elif self._spill is not None and self._spill.pending:
            await self._replay_batch()
        elif self._batch_due(now):
            await self._write_memory_batch()
        else:
            await self._wait_until(self._batch_deadline())

    def _retry_deadline(self) -> float:
        deadline = self._store.retry_at()
        if self._ledger.flush_blocked():
            deadline = min(deadline, self._spill_backoff.retry_at)
        return deadline

    def _batch_due(self, now: float) -> bool:
        memory = self._ledger.memory
        return bool(memory) and (
            len(memory) >= self._batch_size
            or now >= memory[0].received_at + self._commit_timeout_s
            or self._ledger.flush_blocked()
        )

    def _batch_deadline(self) -> float:
        memory = self._ledger.memory
        return memory[0].received_at + self._commit_timeout_s if memory else math.inf

    async def _wait_until(self, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await self._wake.wait()

    async def _write_memory_batch(self) -> None:
        entries = self._ledger.pop(self._batch_size)
        key = self._ledger.enter_transit(entries, to_store=True)
        records = [e.record for e in entries]
        ok = await self._store.write(records)
        self._fence.store_answered(key, ok)
        self._ledger.leave_transit(key, restore=not ok)  # a fence may have spilled it
        if ok:
            self._store_took_records()
            await self._durable(records)
            self._ledger.answer_flushes()

    def _store_took_records(self) -> None:
        """Nothing needs the spill while the store takes batches and memory is within
        its bound: the disk being full no longer matters."""
        if len(self._ledger.memory) <= self._memory_bound:
            self._room.has_room("the run store took the records")

    async def _durable(self, records: list[RunRecord]) -> None:
        """Tell the owner these records are safe (in the store or the spill file).

        Awaited before any Flush is answered: what follows a Flush may rely on it.
        """
        if self._on_durable is not None and records:
            await self._on_durable(records)

    async def _replay_batch(self) -> None:
        assert self._spill is not None
        batch = await self._spill.read_batch(self._batch_size)
        records = self._fence.unstored(batch.records)
        if not records or await self._store.write(records):
            await self._spill.commit(batch)
            self._fence.replayed(batch.records)
            self._replayed_total += len(records)
            self._store_took_records()
            if not self._spill.pending:
                log.info("spill file replayed: %d records in total", self._replayed_total)

    async def _reject(self, rejections: Sequence[Rejection]) -> None:
        assert self._spill is not None
        await self._spill.reject(rejections)

    # -- spilling -------------------------------------------------------------------

    async def _spill_entries(self, entries: list[Entry]) -> None:
        """Append to the spill file; on failure, back to memory and back off."""
        assert self._spill is not None
        key = self._ledger.enter_transit(entries)
        try:
            await self._spill.append([e.record for e in entries])
        except SpillError as exc:
            self._ledger.leave_transit(key, restore=True)
            self._spill_refused(exc, len(entries))
            return
        self._ledger.leave_transit(key, restore=False)
        self._spilled(len(entries))
        await self._durable([e.record for e in entries])
        self._ledger.answer_flushes()

    async def _secure_held(self) -> int:
        """Fenced: every record not yet known stored to the spill file at once (``fence``);
        how many. While the disk refuses, they stay, and go with the next record."""
        assert self._spill is not None
        if trio.current_time() < self._spill_backoff.retry_at:
            return 0
        try:
            count = await self._fence.secure(self._ledger, self._spill)
        except SpillError as exc:
            self._spill_refused(exc, self._ledger.queued)
            return 0
        if count:
            self._spilled(count)
            self._wake.set()  # the writer replays them once the store takes writes
        return count

    def _spilled(self, count: int) -> None:
        self._spill_backoff.succeeded()
        self._room.has_room("the spill file takes records again")
        self._spilled_total += count

    def _spill_refused(self, exc: SpillError, count: int) -> None:
        """A spill append failed: its records are back in memory; back off."""
        self._wake.set()  # the writer may have found memory empty meanwhile: look again
        delay_s = self._spill_backoff.failed()
        self._store.note_error(exc)
        if not self._room.refused(exc, self._ledger.queued):  # said once, per change
            log.debug("still cannot spill %d run records (%s); retry in %.1f s",
                      count, exc, delay_s)

    async def _spill_everything(self) -> None:
        """Memory and batches in flight to the spill file (SpillError: nothing changed)."""
        entries = self._ledger.everything()
        if entries:
            assert self._spill is not None
            await self._spill.append([e.record for e in entries])
            self._spilled_total += len(entries)
            log.info("spilled %d run records at stop", len(entries))
        self._ledger.clear()
        with trio.move_on_after(self._budget.durable_s, shield=True):
            await self._durable([e.record for e in entries])
        self._ledger.answer_flushes()

    async def _spill_rest(self) -> None:
        """After a crash, a cancel, or a failed drain: the last chance to keep records."""
        try:
            await self._spill_everything()
        except SpillError as exc:
            log.critical("%d run records LOST: the spill file failed at stop: %s",
                         self._ledger.queued, exc)
            self._ledger.fail_flushes(exc)
