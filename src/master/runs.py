"""The LogManager: owns the run store and answers every run-history query.

The master must start, and serve jobs, while MySQL is down (DESIGN §9, §11): only run
queries answer 503 then. So the store is opened here, in the background, and kept
open; a probe pings it every PROBE_INTERVAL_S, which creates the table as soon as the
server is reachable and keeps the ``store_up`` gauge true without traffic. If opening
itself fails, it is retried with backoff; meanwhile queries fail with StoreDown.

The LogManager reports started once the first check is done, up or down: before it,
``store_up`` would read 0 though nobody had looked (a fresh master's /metrics said
"store down" for its first moments). That check is bounded by the store's call timeout,
so a store that is down delays the start by at most that, and a refused connection
(the usual "down") not at all.

Queries run concurrently (RequestActor); each is bounded by the store's own call
timeout. Mailbox full: callers wait (backpressure). Retention's pruning comes through
here too (``Prune``), and so does the audit trail (``WriteAudit`` from the AuditMover,
``QueryAudit`` from GET /api/v1/audit), so one component owns the connection pool.
"""

from __future__ import annotations

import logging

import trio

from actors import Inbox
from cluster.backoff import Backoff
from cluster.store import InvalidQuery, RunStore, StoreError, open_store

from .context import MasterContext
from .errors import StoreDown
from .messages import (GetRun, LogManagerMsg, PingStore, Prune, QueryAudit, QueryOffset,
                       QueryRuns, WriteAudit)
from .request_actor import RequestActor

__all__ = ["LogManager"]

log = logging.getLogger(__name__)

CONCURRENCY = 16  # the MySQL pool has 4 connections; SQLite one: the rest queue there
PROBE_INTERVAL_S = 15.0
OPEN_RETRY_S = 0.5
OPEN_RETRY_MAX_S = 30.0


class LogManager(RequestActor[LogManagerMsg]):
    def __init__(self, inbox: Inbox[LogManagerMsg], ctx: MasterContext) -> None:
        super().__init__(inbox, concurrency=CONCURRENCY)
        self._ctx = ctx
        self._store: RunStore | None = None
        self._why_closed = "it is being opened"
        self._up: bool | None = None  # last known state, for logging transitions only

    async def start_background(self, nursery: trio.Nursery) -> None:
        await nursery.start(self._keep_open)  # returns once the first check is done

    async def answer(self, msg: LogManagerMsg) -> object:
        store = self._store
        if store is None:
            raise StoreDown(self._why_closed)
        result = await self._query(store, msg)
        self._mark(up=True)
        return result

    def on_error(self, msg: LogManagerMsg, error: Exception) -> None:
        if isinstance(error, StoreError) and not isinstance(error, InvalidQuery):
            self._ctx.metrics.store_errors.inc()
            self._mark(up=False, reason=str(error))

    async def _query(self, store: RunStore, msg: LogManagerMsg) -> object:
        match msg:
            case QueryRuns(q):
                return await store.query(
                    job_name=q.job_name, status=q.statuses or None, since_ms=q.since_ms,
                    until_ms=q.until_ms, cursor=q.cursor, limit=q.limit)
            case GetRun(run_id):
                return await store.get(run_id)
            case QueryOffset(job_name, offset, limit):
                return await store.query_offset(job_name, offset, limit)
            case Prune(older_than_ms, max_per_job, batch_size):
                return await store.prune(older_than_ms=older_than_ms, max_per_job=max_per_job,
                                         batch_size=batch_size)
            case PingStore():
                await store.ping()
                return None
            case WriteAudit(entries):
                await store.write_audit(entries)
                return None
            case QueryAudit(q):
                return await store.query_audit(job_name=q.job, token=q.token,
                                               before_id=q.before_id, limit=q.limit + 1)

    # -- the store's lifetime ---------------------------------------------------------------

    async def _keep_open(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                         ) -> None:
        """Open the store and keep it open; reopen with backoff if opening fails.

        Reports started after the first check, whichever way it went (``store_up`` set).
        """
        backoff = Backoff(OPEN_RETRY_S, OPEN_RETRY_MAX_S)
        while True:
            try:
                async with open_store(self._ctx.config.db, self._ctx.store_settings) as store:
                    self._store = store
                    backoff.succeeded()
                    await self._check(store)
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED  # its started() is a no-op
                    await self._probe(store)  # never returns
            except StoreError as exc:
                self._why_closed = str(exc)
                self._mark(up=False, reason=str(exc))
            finally:
                self._store = None
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
            self._mark(up=True)
        except (StoreError, trio.TooSlowError) as exc:
            if not isinstance(exc, InvalidQuery):
                self._ctx.metrics.store_errors.inc()
            self._mark(up=False, reason=str(exc) or "ping timed out")

    def _mark(self, *, up: bool, reason: str = "") -> None:
        self._ctx.metrics.store_up.set(1 if up else 0)
        if up != self._up:
            if up:
                log.info("run store %s is reachable", self._ctx.config.db.redacted())
            else:
                log.warning("run store unavailable: %s", reason)
        self._up = up
