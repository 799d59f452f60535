"""The LogSink's store side: holds the run store open, writes one batch at a time.

The store is opened in the background (``hold``, retried with backoff), since the
worker must start and run jobs while the database is down; until it is open,
``write`` answers False and the sink keeps (or spills) its records.

Failures
    StoreUnavailable, a store-wide error (wrong credentials, a TLS certificate refused,
    unusable table) or a store not open yet: ``write`` answers False, the batch goes
    back to the sink and it retries after a backoff (0.1 s doubling to 5 s). Any other
    error is blamed on the rows: the batch is bisected, so a bad row costs O(log n)
    extra writes and never its neighbours (DESIGN §11: one oversize output must not
    lose a batch of 100); a row that fails alone goes to the rejected file with the
    reason (``reject``), counted and logged at ERROR (see ``spill``).

Slow writes: a write in flight for less than ``SLOW_WRITE_S`` on a healthy store is
*keeping up* (``keeping_up_until``): the sink waits for it rather than spill (see
``worker.log_sink.actor``).

Alerts (issue 12): with ``alert_repeat_s``, a batch is written together with its alert
decisions, in one transaction (``RunStore.write_batch(records, repeat_s=...)``): a
worker that dies mid-write leaves neither, and its batch is written again (from the
spill file) or recorded ``lost`` by a survivor, decided then. A row that fails alone
is tried once more without the rule before it is rejected: an alert that can never be
decided (logged at ERROR) must not cost the record too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import trio

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
)

from .spill import Rejection

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
SLOW_WRITE_S = 1.0  # a write in flight longer than this: the store is slow, spill
# Errors of the store as a whole, not of the rows: retrying later is the only cure.
STORE_WIDE_ERRORS = (StoreUnavailable, StoreConfigError, StoreSchemaError, StoreClosedError)


class BatchStore(Protocol):
    """What the LogSink needs of a RunStore (``repeat_s``: only if the sink decides
    alerts; a store without alerts, a test's, is never given it)."""

    async def write_batch(self, records: Sequence[RunRecord], *,
                          repeat_s: float | None = None) -> object: ...


StoreOpener = Callable[[DbUrl, StoreSettings], AbstractAsyncContextManager[BatchStore]]
# The alert settings' repeat_s, read at each batch (they change in etcd).
RepeatS = Callable[[], float]
Reject = Callable[[Sequence[Rejection]], Awaitable[None]]


def retry_backoff() -> Backoff:
    """The sink's retries, of the store and of the spill file alike."""
    return Backoff(BACKOFF_MIN_S, BACKOFF_MAX_S)


def store_settings(db_timeout_s: float) -> StoreSettings:
    """``db_timeout_s`` bounds the connect and the query of one store call, each."""
    return StoreSettings(connect_timeout_s=db_timeout_s, query_timeout_s=db_timeout_s)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class StoreWriter:
    """The store, once ``hold`` opened it; ``write`` for one batch at a time.

    ``on_open`` is called whenever the store opens; ``reject`` keeps the rows the
    store refused for good. ``last_error`` is the sink's last error, store or disk
    (``note_error``), for its statistics and to say a repeated reason once.
    """

    def __init__(self, opener: StoreOpener, target: DbUrl, settings: StoreSettings, *,
                 on_open: Callable[[], None], reject: Reject,
                 alert_repeat_s: RepeatS | None = None) -> None:
        self._opener = opener
        self._target = target  # parsed: the password never enters a string
        self._settings = settings
        self._on_open = on_open
        self._reject = reject
        self._alert_repeat_s = alert_repeat_s
        self._store: BatchStore | None = None
        self._backoff = retry_backoff()
        self._write_started_at: float | None = None  # trio time; None: no write in flight
        self._write_done = trio.Event()  # set after each write attempt
        self.written_total = 0  # records written (replayed ones included)
        self.batches = 0
        self.last_error: str | None = None

    @property
    def up(self) -> bool:
        """Open, and the last write did not fail."""
        return self._store is not None and not self._backoff.failures

    def retry_at(self) -> float:
        """When a write may be tried (trio time; inf while the store is not open)."""
        return math.inf if self._store is None else self._backoff.retry_at

    def note_error(self, exc: BaseException) -> str:
        self.last_error = describe(exc)
        return self.last_error

    async def hold(self) -> None:
        """Open the store and keep it open; retry with backoff while it cannot be. Forever."""
        backoff = retry_backoff()
        while True:
            try:
                async with self._opener(self._target, self._settings) as store:
                    self._store = store
                    self._on_open()
                    try:
                        await trio.sleep_forever()
                    finally:
                        self._store = None
            except (StoreError, OSError) as exc:
                delay_s = backoff.failed()
                said = describe(exc)
                # One line per new reason: a CA file that stays unreadable is said once.
                level = logging.WARNING if said != self.last_error else logging.DEBUG
                self.last_error = said
                log.log(level, "run store %s cannot be opened (%s); retry in %.1f s",
                        self._target.redacted(), exc, delay_s)
                await trio.sleep(delay_s)

    def keeping_up_until(self) -> float | None:
        """While a write to a healthy store is in flight and not yet slow: when it
        becomes slow. Spilling costs more than waiting for such a write (module doc)."""
        started = self._write_started_at
        if started is None or self._backoff.failures:
            return None
        deadline = started + SLOW_WRITE_S
        return deadline if trio.current_time() < deadline else None

    async def write_finished(self) -> None:
        """Wait for the end of the write attempt in flight (or of the next one)."""
        await self._write_done.wait()

    async def write(self, records: list[RunRecord]) -> bool:
        """One batch to the store, bisecting around bad rows; False: retry later."""
        store = self._store
        if store is None:
            return False
        self._write_started_at = trio.current_time()
        try:
            rejected = await self._write_bisecting(store, records)
        except STORE_WIDE_ERRORS as exc:
            self._failed(exc)
            return False
        finally:
            self._write_started_at = None
            self._write_done.set()
            self._write_done = trio.Event()
        if rejected:
            await self._reject(rejected)
        if self._backoff.failures:
            log.info("run store back after %d failed attempts", self._backoff.failures)
        self._backoff.succeeded()
        self.written_total += len(records) - len(rejected)
        self.batches += 1
        return True

    async def _write_bisecting(
        self, store: BatchStore, records: list[RunRecord]
    ) -> list[Rejection]:
        """Write ``records``; return those that failed alone. Raises STORE_WIDE_ERRORS
        (the caller retries the whole batch: upserts make rewriting the rest harmless)."""
        try:
            await self._write_batch(store, records)
            return []
        except STORE_WIDE_ERRORS:
            raise
        except Exception as exc:  # blamed on the rows: one bad row must not sink the others
            if len(records) == 1:
                return await self._write_alone(store, records[0], exc)
            log.warning("a batch of %d run records failed (%s); bisecting", len(records), exc)
            mid = len(records) // 2
            return [*await self._write_bisecting(store, records[:mid]),
                    *await self._write_bisecting(store, records[mid:])]

    async def _write_batch(self, store: BatchStore, records: list[RunRecord]) -> None:
        if self._alert_repeat_s is None:
            await store.write_batch(records)
        else:
            await store.write_batch(records, repeat_s=self._alert_repeat_s())

    async def _write_alone(self, store: BatchStore, record: RunRecord,
                           exc: Exception) -> list[Rejection]:
        """A row that failed alone: without the alert rule, if it was on (module doc)."""
        if self._alert_repeat_s is not None:
            try:
                await store.write_batch([record])
            except STORE_WIDE_ERRORS:
                raise
            except Exception:
                pass  # the row's own fault: rejected below
            else:
                log.error("run %s of job %r written without its alert decision: %s",
                          record.run_id, record.job_name, describe(exc))
                return []
        return [Rejection(describe(exc), record=record)]

    def _failed(self, exc: StoreError) -> None:
        delay_s = self._backoff.failed()
        self.last_error = describe(exc)
        level = logging.WARNING if isinstance(exc, StoreUnavailable) else logging.ERROR
        if self._backoff.failures == 1:
            log.log(level, "run store failed (%s): keeping records, retrying with backoff", exc)
        else:
            log.debug("run store still failing (%s); retry in %.1f s", exc, delay_s)
