"""The LogManager: owns the run store and answers every run-history query.

The master must start, and serve jobs, while MySQL is down (DESIGN §9, §11): only run
queries answer 503 then. So the store is opened in the background by a child of the
supervision tree, ``StoreKeeper``, and kept open; a probe pings it every
PROBE_INTERVAL_S, which creates the table as soon as the server is reachable and keeps
the ``store_up`` gauge true without traffic. If opening itself fails, it is retried
with backoff; meanwhile queries fail with StoreDown.

The StoreKeeper reports started once the first check is done, up or down: before it,
``store_up`` would read 0 though nobody had looked (a fresh master's /metrics said
"store down" for its first moments). That check is bounded by the store's call timeout,
so a store that is down delays the start by at most that, and a refused connection
(the usual "down") not at all.

``LogManager`` itself is a plain service object, not an actor: a query runs in its
caller's task, under its caller's deadline, bounded by the store's own call timeout.
At most CONCURRENCY queries run at once (a capacity limiter); beyond that callers
wait for a slot (backpressure, never a drop). Retention's pruning comes through here
too (``prune``), and so does the audit trail (``write_audit`` from the AuditMover,
``query_audit`` from GET /api/v1/audit), so one component owns the connection pool.

Why the StoreKeeper is a supervised child: the store is a resource with a lifetime
(opened in the background, reopened after a failure, closed last at shutdown), and
its health check is a loop of its own. As the tree's first child it stops last: every
caller (HTTP, Retention, AuditMover) has stopped before it, and it waits for the
queries still in flight (within its grace) before closing the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

import trio

from cluster.backoff import Backoff
from cluster.alerts import AlertEvent
from cluster.store import (AuditEntry, FollowPage, InvalidQuery, LastRun, OutputChunk, RunPage,
                           RunRecord, RunStore, StatsSummary, StoreError, open_store)

from .audit import AuditQuery
from .context import MasterContext
from .errors import ShuttingDown, StoreDown

__all__ = ["LogManager", "RunQuery", "StoreKeeper"]

log = logging.getLogger(__name__)

R = TypeVar("R")

CONCURRENCY = 16  # the MySQL pool has 4 connections; SQLite one: the rest queue there
PROBE_INTERVAL_S = 15.0
FOLLOW_FROM_NOW = "now"  # after=now: a follow cursor at the newest record
OPEN_RETRY_S = 0.5
OPEN_RETRY_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters of a run listing; see RunStore.query."""

    job_name: str | None = None
    statuses: tuple[str, ...] = ()  # empty: any status
    since_ms: int | None = None
    until_ms: int | None = None
    cursor: str | None = None
    limit: int = 50


class LogManager:
    """Every run-store query of the master; the public methods are its queries."""

    def __init__(self, ctx: MasterContext) -> None:
        self._ctx = ctx
        self._store: RunStore | None = None  # set by the StoreKeeper while open
        self._why_closed = "it is being opened"
        self._stopping = False
        self._up: bool | None = None  # last known state, for logging transitions only
        self._slots = trio.CapacityLimiter(CONCURRENCY)
        self._idle = trio.Event()

    @property
    def in_flight(self) -> int:
        return self._slots.borrowed_tokens

    async def query_runs(self, q: RunQuery) -> RunPage:
        return await self._request(lambda store: store.query(
            job_name=q.job_name, status=q.statuses or None, since_ms=q.since_ms,
            until_ms=q.until_ms, cursor=q.cursor, limit=q.limit))

    async def follow_runs(self, q: RunQuery, after: str) -> FollowPage:
        """Runs recorded after the follow cursor ``after``; ``now``: none, only the
        cursor at the newest record (``runs --follow`` starts there)."""
        now_ms = self._ctx.clock()
        if after == FOLLOW_FROM_NOW:
            cursor = await self._request(lambda store: store.follow_start(now_ms))
            return FollowPage([], cursor, caught_up=True)
        return await self._request(lambda store: store.follow(
            after, now_ms=now_ms, job_name=q.job_name, status=q.statuses or None,
            since_ms=q.since_ms, until_ms=q.until_ms, limit=q.limit))

    async def latest_runs(self, names: Collection[str] | None = None) -> dict[str, LastRun]:
        """Each job's newest run, by job name (the jobs list): one grouped query; of
        ``names`` only when given (a page of the list)."""
        return await self._request(lambda store: store.latest_runs(names))

    async def recent_runs(self, job_name: str, limit: int) -> list[LastRun]:
        """A job's newest runs without their outputs (the job page's duration plot)."""
        return await self._request(lambda store: store.recent_runs(job_name, limit))

    async def stats(self, window: str) -> StatsSummary:
        """The dashboard's figures of ``window`` (``1h``, ``24h``, ``7d``) ending now;
        older records are built into the rollup by the StatsBuilder, not here."""
        now_ms = self._ctx.clock()
        return await self._request(lambda store: store.stats.summary(window, now_ms,
                                                                     backfill_s=0))

    async def build_stats(self, budget_s: float) -> bool:
        """Build older records into the statistics' rollup for about ``budget_s``;
        True once it holds every record a window reaches (``stats_builder``)."""
        return await self._request(lambda store: store.stats.build(budget_s))

    async def read_output(self, run_id: str, after_seq: int, limit: int) -> list[OutputChunk]:
        """A run's live output chunks after ``after_seq`` (``output_api``)."""
        return await self._request(lambda store: store.output.read(run_id, after_seq, limit))

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self._request(lambda store: store.get(run_id))

    async def query_offset(self, job_name: str, offset: int, limit: int) -> list[RunRecord]:
        return await self._request(lambda store: store.query_offset(job_name, offset, limit))

    async def prune(self, older_than_ms: int | None, max_per_job: int | None,
                    batch_size: int) -> int:
        """Returns how many records were deleted. Finished alert deliveries older than
        ``older_than_ms`` go too (the outbox keeps pending ones whatever their age)."""
        async def prune(store: RunStore) -> int:
            deleted = await store.prune(older_than_ms=older_than_ms, max_per_job=max_per_job,
                                        batch_size=batch_size)
            if older_than_ms is not None:
                await store.alerts.prune(older_than_ms)
            return deleted
        return await self._request(prune)

    async def ping(self) -> None:
        await self._request(lambda store: store.ping())

    async def write_audit(self, entries: tuple[AuditEntry, ...]) -> None:
        await self._request(lambda store: store.write_audit(entries))

    async def enqueue_alert(self, event: AlertEvent) -> None:
        """A test event, into the outbox as one row for its channel."""
        await self._request(lambda store: store.alerts.enqueue_for(event, event.extra["channel"]))

    async def enqueue_event(self, event: AlertEvent) -> None:
        """An event into the outbox, to resolve by its job's policy (unschedulable)."""
        await self._request(lambda store: store.alerts.enqueue(event))

    async def recent_alerts(self, since_ms: int, limit: int) -> list[tuple[str, str, str, int]]:
        """Alert events raised at or after ``since_ms`` (the event stream's poll)."""
        return await self._request(lambda store: store.alerts.recent_events(since_ms, limit))

    async def query_audit(self, q: AuditQuery) -> list[AuditEntry]:
        """At most ``q.limit + 1`` entries, newest first."""
        return await self._request(lambda store: store.query_audit(
            job_name=q.job, token=q.token, before_id=q.before_id, limit=q.limit + 1))

    async def _request(self, query: Callable[[RunStore], Awaitable[R]]) -> R:
        """Run one query on the open store in a free slot (wait for one); a store
        error counts in ``store_errors_total`` and sets ``store_up`` to 0."""
        async with self._slots:
            try:
                store = self._open_store()
                result = await query(store)
            except StoreError as exc:
                if not isinstance(exc, InvalidQuery):
                    self._ctx.metrics.store_errors.inc()
                    self.mark(up=False, reason=str(exc))
                raise
            finally:
                if self._slots.borrowed_tokens == 1:  # ours, given back on leaving
                    self._idle.set()
        self.mark(up=True)
        return result

    def _open_store(self) -> RunStore:
        if self._stopping:
            raise ShuttingDown()
        if self._store is None:
            raise StoreDown(self._why_closed)
        return self._store

    async def _drained(self) -> None:
        """Returns once no query is in flight."""
        while self._slots.borrowed_tokens:
            self._idle = trio.Event()
            await self._idle.wait()
            await trio.lowlevel.checkpoint()  # the last one has left its slot by now

    def mark(self, *, up: bool, reason: str = "") -> None:
        self._ctx.metrics.store_up.set(1 if up else 0)
        if up != self._up:
            if up:
                log.info("run store %s is reachable", self._ctx.config.db.redacted())
            else:
                log.warning("run store unavailable: %s", reason)
        self._up = up


class StoreKeeper:
    """A supervisor child: opens the LogManager's store, checks it, closes it last.

    Build a fresh one per (re)start; the LogManager outlives it.
    """

    def __init__(self, runs: LogManager) -> None:
        self._runs = runs
        self._ctx = runs._ctx
        self._stop = trio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Keep the store open until asked to stop; then let queries in flight finish
        and close it. Reports started after the first check (``store_up`` set)."""
        runs = self._runs
        runs._stopping = False
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._keep_open)
                task_status.started()
                await self._stop.wait()
                runs._stopping = True  # new queries: ShuttingDown
                await runs._drained()
                nursery.cancel_scope.cancel()
        finally:
            runs._store = None

    async def _keep_open(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                         ) -> None:
        """Open the store and keep it open; reopen with backoff if opening fails.

        Reports started after the first check, whichever way it went.
        """
        runs = self._runs
        backoff = Backoff(OPEN_RETRY_S, OPEN_RETRY_MAX_S)
        while True:
            try:
                async with open_store(self._ctx.config.db, self._ctx.store_settings) as store:
                    runs._store = store
                    backoff.succeeded()
                    await self._check(store)
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED  # its started() is a no-op
                    await self._probe(store)  # never returns
            except StoreError as exc:
                runs._why_closed = str(exc)
                runs.mark(up=False, reason=str(exc))
            finally:
                runs._store = None
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            await trio.sleep(backoff.failed())

    async def _probe(self, store: RunStore) -> None:
        while True:
            await trio.sleep(PROBE_INTERVAL_S)
            await self._check(store)

    async def _check(self, store: RunStore) -> None:
        """Ping the store once, within its call timeout, and set ``store_up``."""
        try:
            with trio.fail_after(self._ctx.store_settings.call_timeout_s):
                await store.ping()
            self._runs.mark(up=True)
        except (StoreError, trio.TooSlowError) as exc:
            if not isinstance(exc, InvalidQuery):
                self._ctx.metrics.store_errors.inc()
            self._runs.mark(up=False, reason=str(exc) or "ping timed out")
