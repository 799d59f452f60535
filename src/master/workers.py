"""The WorkerManager: the live worker list, mirrored from etcd's workers/ prefix.

Each worker republishes its info on its session lease every few seconds (DESIGN §3);
the key vanishes with the lease. We read the prefix, then watch it from the read's
revision + 1; the adapter resumes broken streams by itself, and on WatchCompacted we
read again (state converges). For each worker we keep:

- ``lastSeen``: the master's clock when its info last changed (every republication
  changes at least its wall clock, so this is its last sign of life);
- ``skewMs``: its wall clock minus ours when we saw the publication (on the first
  read the info may be a few seconds old: the next publication corrects it).

A list answered while etcd is unreachable could be stale without anyone knowing, so
``ListWorkers`` fails with EtcdDown until the first read is done, and whenever the
watch is disconnected (after waiting up to CONNECT_WAIT_S for it to come back, which
covers the moment right after a stream is re-created).

Mailbox full: callers wait (backpressure); answers come from memory.
"""

from __future__ import annotations

import logging

import trio

from actors import Actor, Inbox
from cluster.backoff import Backoff
from cluster.etcd import (
    Etcd,
    EtcdUnavailable,
    EventType,
    KeyValue,
    WatchCompacted,
    WatchEvent,
    WatchStream,
)
from cluster.presence import PresenceDecodeError, WorkerInfo

from .context import MasterContext
from .errors import EtcdDown
from .messages import ListWorkers, WorkerManagerMsg
from .views import WorkerView

__all__ = ["WorkerManager"]

log = logging.getLogger(__name__)

READ_RETRY_S = 0.1
READ_RETRY_MAX_S = 5.0
CONNECT_WAIT_S = 1.0
CONNECT_POLL_S = 0.05


class WorkerManager(Actor[WorkerManagerMsg]):
    def __init__(self, inbox: Inbox[WorkerManagerMsg], ctx: MasterContext, etcd: Etcd) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._etcd = etcd
        self._workers: dict[str, WorkerView] = {}
        self._synced = False  # a first read completed
        self._stream: WatchStream | None = None
        self._last_error = "the worker list is being read"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow)
            task_status.started()
            await self.serve()
            nursery.cancel_scope.cancel()

    async def handle(self, msg: WorkerManagerMsg) -> None:
        match msg:
            case ListWorkers(reply):
                try:
                    await self._wait_fresh()
                except EtcdDown as exc:
                    reply.fail(exc)
                else:
                    reply.send(sorted(self._workers.values(), key=lambda w: w.info.worker_id))

    def workers(self) -> list[WorkerView]:
        """The current table (for tests and statistics), sorted by id."""
        return sorted(self._workers.values(), key=lambda w: w.info.worker_id)

    async def _wait_fresh(self) -> None:
        with trio.move_on_after(CONNECT_WAIT_S):
            while not self._fresh():
                await trio.sleep(CONNECT_POLL_S)
        if not self._fresh():
            raise EtcdDown(f"the worker list may be stale ({self._last_error})")

    def _fresh(self) -> bool:
        stream = self._stream
        return self._synced and stream is not None and stream.statistics().connected

    # -- mirroring etcd ---------------------------------------------------------------------

    async def _follow(self) -> None:
        backoff = Backoff(READ_RETRY_S, READ_RETRY_MAX_S)
        prefix = self._ctx.keyspace.workers_prefix
        while True:
            try:
                snapshot = await self._etcd.get_prefix(prefix)
                self._load(snapshot.kvs)
                backoff.succeeded()
                async with self._etcd.watch_prefix(
                        prefix, start_revision=snapshot.revision + 1) as events:
                    self._stream = events
                    async for event in events:
                        self._apply(event)
            except WatchCompacted as exc:
                log.info("workers watch compacted (%s): reading again", exc)
            except EtcdUnavailable as exc:
                self._ctx.metrics.etcd_errors.inc()
                self._last_error = str(exc)
                self._synced = False
                log.warning("reading the worker list: %s; retrying", exc)
                await trio.sleep(backoff.failed())
            finally:
                self._stream = None

    def _load(self, kvs: tuple[KeyValue, ...]) -> None:
        now = self._ctx.clock()
        table: dict[str, WorkerView] = {}
        for kv in kvs:
            worker_id = self._ctx.keyspace.parse_worker(kv.key)
            view = None if worker_id is None else self._decode(kv, now)
            if worker_id is not None and view is not None:
                old = self._workers.get(worker_id)
                # Unchanged since we last saw it (a re-read): keep when we saw it.
                table[worker_id] = old if old is not None and old.info == view.info else view
        self._workers = table
        self._synced = True
        self._ctx.metrics.workers.set(len(table))

    def _apply(self, event: WatchEvent) -> None:
        worker_id = self._ctx.keyspace.parse_worker(event.key)
        if worker_id is None:
            return
        view = None if event.type is EventType.DELETE \
            else self._decode(event.kv, self._ctx.clock())
        if view is None:  # gone, or no longer readable: never show a stale entry
            self._workers.pop(worker_id, None)
        else:
            self._workers[worker_id] = view
        self._ctx.metrics.workers.set(len(self._workers))

    def _decode(self, kv: KeyValue, now_ms: int) -> WorkerView | None:
        try:
            info = WorkerInfo.from_bytes(kv.value)
        except PresenceDecodeError as exc:
            log.warning("ignoring %s: %s", kv.key, exc)
            return None
        return WorkerView(info, last_seen_ms=now_ms, skew_ms=info.wall_ms - now_ms)
