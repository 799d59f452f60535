"""The WorkerManager: the live worker list, mirrored from etcd's workers/ prefix.

Each worker republishes its info on its session lease every few seconds (DESIGN §3);
the key vanishes with the lease. A ``PrefixMirror`` follows the prefix (read, watch,
read again when history is lost: state converges). For each worker we keep:

- ``lastSeen``: the master's clock when its info last changed (every republication
  changes at least its wall clock, so this is its last sign of life);
- ``skewMs``: its wall clock minus ours when we saw the publication (on the first
  read the info may be a few seconds old: the next publication corrects it). Skews
  seen as they happen go to the ``ClockWatch``, which warns about those beyond
  ``max_clock_skew_s`` (``ClockWarnings`` asks it, for /healthz);
- ``problems``: what the worker says keeps it from taking work (``spill: disk full``:
  it claims no new fire). Shown as published; a change is logged once per worker
  (WARNING), and ``WorkerProblems`` lists them for /healthz.

A list answered while etcd is unreachable could be stale without anyone knowing, so
``ListWorkers`` fails with EtcdDown until the first read is done, and whenever the
watch is disconnected (after waiting up to CONNECT_WAIT_S for it to come back, which
covers the moment right after a stream is re-created). A watch on a member without a
leader stays connected but hears nothing: so the list also fails, with NoQuorum, while
etcd has no quorum (checked every QUORUM_POLL_S; no leader for LOST_AFTER_S, longer
than an election; logged and gauged once per change).

A worker of the seed registers its IP with an empty value: it is listed too, as the
seed's master listed it (``WorkerView.seed_registered``: no clock, no load).

Mailbox full: callers wait (backpressure); answers come from memory.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import trio

from actors import Actor, Inbox
from cluster.etcd import Etcd, EtcdUnavailable, EventType, KeyValue, PrefixSnapshot, WatchEvent
from cluster.mirror import PrefixMirror
from cluster.presence import PresenceDecodeError, WorkerInfo, is_seed_registration

from .clock_watch import ClockWatch
from .context import MasterContext
from .errors import EtcdDown, NoQuorum
from .messages import ClockWarnings, ListWorkers, WorkerManagerMsg, WorkerProblems
from .views import WorkerView

__all__ = ["WorkerManager"]

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 1.0
CONNECT_POLL_S = 0.05
QUORUM_POLL_S = 0.5
LOST_AFTER_S = 2.0  # no leader for this long: not an election, quorum is lost


class WorkerManager(Actor[WorkerManagerMsg]):
    def __init__(self, inbox: Inbox[WorkerManagerMsg], ctx: MasterContext, etcd: Etcd) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._etcd = etcd
        self._workers: dict[str, WorkerView] = {}
        self._clock = ClockWatch(ctx.config.max_clock_skew_s, ctx.metrics)
        self._mirror = PrefixMirror(etcd, ctx.keyspace.workers_prefix,
                                    on_unavailable=self._etcd_failed)
        self._mirror.last_error = "the worker list is being read"
        self._quorum_lost = False

    def background(self) -> Iterable[Callable[[], Awaitable[None]]]:
        # Not started-before-ready: the list answers EtcdDown until its first read.
        return (lambda: self._mirror.run(self._load, self._apply), self._watch_quorum)

    async def handle(self, msg: WorkerManagerMsg) -> None:
        match msg:
            case ListWorkers(reply):
                try:
                    await self._wait_fresh()
                except EtcdDown as exc:
                    reply.fail(exc)
                else:
                    reply.send(sorted(self._workers.values(), key=lambda w: w.info.worker_id))
            case ClockWarnings(reply):
                reply.send(self._clock.warnings())
            case WorkerProblems(reply):
                reply.send([f"worker {w.info.worker_id!r}: {p}" for w in self.workers()
                            for p in w.info.problems])

    def workers(self) -> list[WorkerView]:
        """The current table (for tests and statistics), sorted by id."""
        return sorted(self._workers.values(), key=lambda w: w.info.worker_id)

    async def _wait_fresh(self) -> None:
        if self._quorum_lost:
            raise NoQuorum()
        with trio.move_on_after(CONNECT_WAIT_S):
            while not self._fresh():
                await trio.sleep(CONNECT_POLL_S)
        if not self._fresh():
            raise EtcdDown(f"the worker list may be stale ({self._mirror.last_error})")

    def _fresh(self) -> bool:
        return self._mirror.synced

    # -- mirroring etcd ---------------------------------------------------------------------

    async def _watch_quorum(self) -> None:
        leaderless_since: float | None = None
        while True:
            try:
                leaderless = not await self._etcd.has_quorum()
            except EtcdUnavailable:
                # Nobody answers: the mirror says so (EtcdDown). Not news of a leader:
                # a lost quorum stays lost (one probe timing out under load must not
                # flip the state, and its log line, back and forth).
                leaderless = self._quorum_lost
            if not leaderless:
                leaderless_since = None
            elif leaderless_since is None:
                leaderless_since = trio.current_time()
            lost = leaderless_since is not None \
                and trio.current_time() - leaderless_since >= LOST_AFTER_S
            if lost != self._quorum_lost:
                self._quorum_lost = lost
                self._ctx.metrics.etcd_no_quorum.set(int(lost))
                if lost:
                    log.error("etcd: no quorum (its members answer, none has a leader): "
                              "/healthz and /api/v1/workers answer 503 until it is back")
                else:
                    log.warning("etcd: quorum is back")
            await trio.sleep(QUORUM_POLL_S)

    def _etcd_failed(self, exc: EtcdUnavailable) -> None:
        self._ctx.metrics.etcd_errors.inc()
    async def _load(self, snapshot: PrefixSnapshot, _resumed_after: int | None) -> None:
        now = self._ctx.clock()
        table: dict[str, WorkerView] = {}
        for kv in snapshot.kvs:
            worker_id = self._ctx.keyspace.parse_worker(kv.key)
            view = None if worker_id is None else self._decode(worker_id, kv, now)
            if worker_id is not None and view is not None:
                old = self._workers.get(worker_id)
                # Unchanged since we last saw it (a re-read): keep when we saw it.
                table[worker_id] = old if old is not None and old.info == view.info else view
        self._workers = table
        self._clock.retain(set(table))
        self._ctx.metrics.workers.set(len(table))

    async def _apply(self, event: WatchEvent) -> None:
        worker_id = self._ctx.keyspace.parse_worker(event.key)
        if worker_id is None:
            return
        view = None if event.type is EventType.DELETE \
            else self._decode(worker_id, event.kv, self._ctx.clock())
        if view is None:  # gone, or no longer readable: never show a stale entry
            self._workers.pop(worker_id, None)
            self._clock.retain(set(self._workers))
        else:
            old = self._workers.get(worker_id)
            self._workers[worker_id] = view
            if view.skew_ms is not None:
                self._clock.observed(worker_id, view.skew_ms)
            _note_problems(worker_id, old.info.problems if old else (), view.info.problems)
        self._ctx.metrics.workers.set(len(self._workers))

    def _decode(self, worker_id: str, kv: KeyValue, now_ms: int) -> WorkerView | None:
        if is_seed_registration(kv.value):
            return WorkerView.seed_registered(worker_id, now_ms)
        try:
            info = WorkerInfo.from_bytes(kv.value)
        except PresenceDecodeError as exc:
            log.warning("ignoring %s: %s", kv.key, exc)
            return None
        return WorkerView(info, last_seen_ms=now_ms, skew_ms=info.wall_ms - now_ms)


def _note_problems(worker_id: str, old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """One log line when a worker's problems change, not one per publication."""
    if new != old:
        log.warning("worker %r: %s", worker_id, "; ".join(new) if new else
                    f"no longer {'; '.join(old)}")
