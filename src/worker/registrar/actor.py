"""The Registrar: holds the worker's session lease, and with it its place in the fleet.

The session lease carries ``workers/<id>`` and every ``running``/``active`` key of this
worker (DESIGN §4, §6): while it lives, others see the worker and its runs; when it
goes, they vanish in one revision and another worker records the runs lost. So:

- Start: grant a lease of ``session_ttl_s``, publish ``WorkerInfo`` on it, tell the
  Locker and the Executor (``SessionChanged``): ``setup``, whose lease id is reported
  as started.
- Every ``ttl / 3`` s: renew it (``keepalive_once``), then republish the info (running
  count asked of the Executor, wall clock for the master's skew display, and the
  worker's ``problems``: "spill: disk full" while its ``SpillRoom`` is full, so the
  master's /api/v1/workers and /healthz show it within ttl/3; in a sharded cluster,
  its ``serving``, the membership its slots are loaded for, DESIGN §6b, published
  also at once whenever it changes: ``wait_changed``, the hand-over of a join or a
  leave waits on it).
- Fenced: once etcd says the lease is gone (LeaseExpired), or no renewal was confirmed
  for a whole TTL less ``FENCE_LEAD_S`` (etcd unreachable: the lease may soon be gone
  and the runs taken over), the worker can no longer vouch for its runs. It tells the Locker and the Executor
  ``SessionChanged(None)`` (claim nothing), the Executor ``Fenced`` (kill every run,
  SIGKILL at the latest ``KILL_MARGIN_S`` before the lease can have expired), then the
  LogSink ``SessionChanged(None)`` (the records it holds, and the fenced runs' records
  to come, go to its spill file at once), revokes the old lease if it still lives, then
  registers anew (retrying with backoff while etcd is down) and announces the new lease
  to all three.
- Graceful stop (``drain``): flush the LogSink while the lease is still renewed, stop
  the keep-alive and wait until it has ended, then revoke the lease (bounded, shielded)
  so the worker leaves at once, not a TTL later. The supervisor stops the Executor
  first: its runs are over by then.

Time: a renewal counts from when it was *sent* (etcd renewed no earlier), so "a whole
TTL without renewal" never overestimates how long the lease lives. Trio clock. The
fence comes ``FENCE_LEAD_S`` (at most ttl/3) before that instant, so that the runs are
dead, and the worker claims nothing, before the lease can be gone on the server.

Sends to: the Locker, the Executor and the LogSink (``SessionChanged``), the Executor
(``Fenced``, ``RunningCount``), the LogSink (``Flush``); their addresses are constructor
arguments.

Mailbox-full policy: sends to the Locker, the Executor and the LogSink await
(backpressure); at a fence the LogSink is told last, so that a full LogSink never
delays the kills. The
running-count call gives up after RUNNING_COUNT_TIMEOUT_S and the last count is
published. A peer that has stopped (``Address.tell`` answers False) is skipped. The
Registrar's own inbox carries no messages (``RegistrarMsg`` is empty): sealing it is
the graceful stop; its flush and revocation then fit ``RegistrarBudget``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from actors import Actor, Address, CallFailed, Inbox, MailboxClosed, call
from cluster.backoff import Backoff
from cluster.etcd import Etcd, EtcdError, EtcdUnavailable, Lease, LeaseExpired
from cluster.presence import Serving, WorkerInfo

from worker.executor.messages import ExecutorMsg, Fenced, RunningCount
from worker.locker.messages import LockerMsg
from worker.log_sink.messages import Flush, LogSinkMsg
from worker.shutdown_budget import RegistrarBudget
from .messages import RegistrarMsg, SessionChanged

if TYPE_CHECKING:
    from worker.context import WorkerContext

log = logging.getLogger(__name__)

RUNNING_COUNT_TIMEOUT_S = 0.5
REVOKE_TIMEOUT_S = 2.0  # a revocation when fenced; at a graceful stop: RegistrarBudget
REGISTER_RETRY_S = 0.1  # first wait before registering again while etcd is down
REGISTER_RETRY_MAX_S = 5.0
# Fence this long (at most a renewal interval) before the lease can have expired, and
# have every fenced run SIGKILLed KILL_MARGIN_S before then: a run that ignores SIGTERM
# must not outlive the lease, or it would run beside the fire's next owner.
FENCE_LEAD_S = 1.0
KILL_MARGIN_S = 0.2


def package_version() -> str:
    try:
        return importlib.metadata.version("scheduler")
    except importlib.metadata.PackageNotFoundError:
        return "0"


@dataclass(frozen=True, slots=True)
class Session:
    lease: Lease
    granted_at: float  # trio clock, read before the grant (or its first renewal) was asked for


@dataclass(frozen=True, slots=True)
class RegistrarStatistics:
    lease_id: int | None  # None while fenced and not yet registered again
    registrations: int
    fenced: int
    renewals_failed: int  # etcd unreachable or too slow for one renewal


class Registrar(Actor[RegistrarMsg]):
    """The session holder (module doc): ``setup`` registers and reports the lease id,
    the keep-alive is its one background task, ``drain`` leaves the fleet."""

    def __init__(self, inbox: Inbox[RegistrarMsg], ctx: WorkerContext, etcd: Etcd, *,
                 log_sink: Address[LogSinkMsg], executor: Address[ExecutorMsg],
                 locker: Address[LockerMsg],
                 budget: RegistrarBudget = RegistrarBudget(),
                 problems: Callable[[], tuple[str, ...]] = tuple,
                 serving: Callable[[], Serving | None] = lambda: None,
                 serving_changed: Callable[[], Awaitable[None]] | None = None) -> None:
        """``problems``: what keeps the worker from taking work now, read at each
        publication (``SpillRoom.problems``). ``serving``: the membership its slots are
        loaded for in a sharded cluster (DESIGN §6b), read likewise; None, the default,
        publishes nothing, as before shards. ``serving_changed``: returns when it may
        have changed; the registration is then published at once."""
        super().__init__(inbox)
        self._problems = problems
        self._serving = serving
        self._serving_changed = serving_changed
        self._ctx = ctx
        self._budget = budget
        self._etcd = etcd
        self._log_sink = log_sink
        self._executor = executor
        self._locker = locker
        self._key = ctx.keyspace.worker(ctx.worker_id)
        self._host = socket.gethostname()
        self._version = package_version()
        self._started_ms = ctx.clock.now_ms()
        self._running = 0  # the Executor's last answer
        self._session: Session | None = None
        self._counts = {"registrations": 0, "fenced": 0, "renewals_failed": 0}
        # The keep-alive runs inside this scope; drain cancels it and waits for the
        # task to end, so no renewal or re-registration races the revocation.
        self._keep_scope = trio.CancelScope()
        self._keep_stopped = trio.Event()

    async def setup(self) -> int:
        """Register (retrying while etcd is down); the lease id is reported as started."""
        session = await self._register()
        return session.lease.id

    def background(self) -> tuple[Callable[..., Awaitable[None]], ...]:
        if self._serving_changed is None:
            return (self._keep_alive,)
        return (self._keep_alive, self._publish_serving)

    async def _publish_serving(self) -> None:
        """Publish each change of ``serving`` at once, not at the next ttl/3."""
        assert self._serving_changed is not None
        while True:
            await self._serving_changed()
            session = self._session
            if session is not None:
                try:
                    await self._republish(session.lease.id)
                except LeaseExpired:
                    pass  # the keep-alive fences and registers anew, with it

    async def handle(self, msg: RegistrarMsg) -> None:
        log.warning("registrar: unexpected message %r ignored", msg)

    async def drain(self) -> None:
        """Leave the fleet: flush the run records, stop the keep-alive, revoke the lease.

        The flush comes first because a run's ``running`` key lives until its record is
        durable: revoking earlier would make the survivors record finished runs as lost.
        The lease is kept alive meanwhile; then the keep-alive is stopped and awaited,
        so that no renewal (nor a re-registration) races the revocation.
        """
        with trio.move_on_after(self._budget.flush_s):
            try:
                await call(self._log_sink, Flush)
            except (MailboxClosed, CallFailed) as exc:
                log.warning("could not flush the run records before leaving: %s", exc)
        self._keep_scope.cancel()
        await self._keep_stopped.wait()
        session, self._session = self._session, None
        if session is None:
            return
        with trio.move_on_after(self._budget.revoke_s, shield=True):
            try:
                await self._etcd.revoke_lease(session.lease.id)
                log.info("worker %s left: lease %#x revoked", self._ctx.worker_id,
                         session.lease.id)
            except EtcdError as exc:
                log.warning("could not revoke lease %#x (%s): it expires within %d s",
                            session.lease.id, exc, session.lease.ttl_s)

    def statistics_detail(self) -> RegistrarStatistics:
        lease_id = self._session.lease.id if self._session else None
        return RegistrarStatistics(lease_id, **self._counts)

    # -- the session ------------------------------------------------------------------

    async def _keep_alive(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The background task: hold the session ``setup`` made until ``drain`` stops it."""
        try:
            with self._keep_scope:
                task_status.started()
                assert self._session is not None  # setup registered
                await self._keep(self._session)
        finally:
            self._keep_stopped.set()

    async def _keep(self, session: Session) -> None:
        """Hold the session; whenever it is lost, fence and register anew. Forever."""
        while True:
            kill_within_s = 0.0
            try:
                vouched_until = await self._hold(session)
                kill_within_s = max(0.0, vouched_until - KILL_MARGIN_S - trio.current_time())
            except LeaseExpired:
                log.error("session lease %#x is gone: fencing worker %s", session.lease.id,
                          self._ctx.worker_id)
            await self._fence(session.lease.id, kill_within_s)
            session = await self._register()

    async def _hold(self, session: Session) -> float:
        """Renew every ttl/3 s. Returns, with the earliest instant the lease can expire,
        once no renewal was confirmed for a TTL less the fence lead; raises
        LeaseExpired when etcd says the lease is gone."""
        ttl_s = session.lease.ttl_s
        interval_s = ttl_s / 3
        lead_s = min(FENCE_LEAD_S, interval_s)
        vouched_until = session.granted_at + ttl_s
        next_at = session.granted_at + interval_s
        while True:
            fence_at = vouched_until - lead_s
            await trio.sleep_until(min(next_at, fence_at))
            sent_at = trio.current_time()
            if sent_at >= fence_at:
                log.error("no renewal of lease %#x confirmed for %.1f s (it may expire in "
                          "%.1f s): fencing worker %s", session.lease.id, ttl_s - lead_s,
                          lead_s, self._ctx.worker_id)
                return vouched_until
            next_at = sent_at + interval_s
            renewed_ttl_s = await self._renew(session.lease.id, min(next_at, fence_at))
            if renewed_ttl_s is not None:
                vouched_until = sent_at + renewed_ttl_s
                with trio.move_on_at(next_at):
                    await self._republish(session.lease.id)

    async def _renew(self, lease_id: int, deadline: float) -> int | None:
        """The lease's new TTL, or None if etcd did not answer by ``deadline``."""
        with trio.move_on_at(deadline):
            try:
                return await self._etcd.keepalive_once(lease_id)
            except EtcdUnavailable as exc:
                log.warning("renewing lease %#x: %s", lease_id, exc)
        self._counts["renewals_failed"] += 1
        return None

    async def _register(self) -> Session:
        """A new lease with our info on it, retrying with backoff while etcd is down."""
        backoff = Backoff(REGISTER_RETRY_S, REGISTER_RETRY_MAX_S)
        while (session := await self._try_register()) is None:
            await trio.sleep(backoff.failed())
        self._session = session
        self._counts["registrations"] += 1
        log.info("worker %s registered on lease %#x (ttl %d s)", self._ctx.worker_id,
                 session.lease.id, session.lease.ttl_s)
        await self._announce(session.lease.id)
        return session

    async def _try_register(self) -> Session | None:
        granted_at = trio.current_time()
        try:
            lease = await self._etcd.grant_lease(self._ctx.config.session_ttl_s)
            # If this put fails, the lease holds nothing and expires by itself.
            await self._etcd.put(self._key, self._info().to_bytes(), lease_id=lease.id)
            if trio.current_time() - granted_at > lease.ttl_s / 3:
                granted_at = await self._vouch_afresh(lease)
        except (EtcdUnavailable, LeaseExpired) as exc:
            log.warning("registering worker %s: %s; retrying", self._ctx.worker_id, exc)
            return None
        return Session(lease, granted_at)

    async def _vouch_afresh(self, lease: Lease) -> float:
        """The grant was answered late (a link just back, a slow etcd): it vouches only
        from when it was asked, most of a TTL ago, and holding it would fence at once.
        A renewal sent now vouches from now; the instant it was sent is returned."""
        sent_at = trio.current_time()
        with trio.move_on_after(lease.ttl_s / 3):
            await self._etcd.keepalive_once(lease.id)
            return sent_at
        raise EtcdUnavailable("lease keepalive", "no answer to the renewal after a late grant")

    async def _fence(self, lease_id: int, kill_within_s: float) -> None:
        self._session = None
        self._counts["fenced"] += 1
        await self._announce(None)
        await self._executor.tell_or_log(Fenced(lease_id, kill_within_s), log)
        await self._log_sink.tell_or_log(SessionChanged(None), log)
        # If etcd still holds it (we only lost touch), its keys must go now: they
        # stand for runs that are being killed.
        with trio.move_on_after(REVOKE_TIMEOUT_S):
            try:
                await self._etcd.revoke_lease(lease_id)
            except EtcdError as exc:
                log.info("old lease %#x not revoked (%s): it expires by itself", lease_id, exc)

    async def _republish(self, lease_id: int) -> None:
        """Rewrite our info on the lease; raises LeaseExpired, other failures wait."""
        await self._refresh_running()
        try:
            await self._etcd.put(self._key, self._info().to_bytes(), lease_id=lease_id)
        except EtcdUnavailable as exc:
            log.warning("republishing %s: %s", self._key, exc)

    async def _refresh_running(self) -> None:
        with trio.move_on_after(RUNNING_COUNT_TIMEOUT_S):
            try:
                self._running = await call(self._executor, RunningCount)
            except (MailboxClosed, CallFailed) as exc:
                log.debug("running count unavailable: %s", exc)

    def _info(self) -> WorkerInfo:
        cfg = self._ctx.config
        return WorkerInfo(
            worker_id=self._ctx.worker_id, host=self._host, pid=os.getpid(),
            labels=cfg.labels, version=self._version, started_ms=self._started_ms,
            running=self._running, capacity=cfg.capacity, wall_ms=self._ctx.clock.now_ms(),
            problems=self._problems(), serving=self._serving(),
        )

    # -- telling the peers --------------------------------------------------------------

    async def _announce(self, lease_id: int | None) -> None:
        """To the Locker and the Executor; a new lease to the LogSink too (it learns of
        a fence from ``_fence``, after the Executor's ``Fenced``)."""
        await self._locker.tell_or_log(SessionChanged(lease_id), log)
        await self._executor.tell_or_log(SessionChanged(lease_id), log)
        if lease_id is not None:
            await self._log_sink.tell_or_log(SessionChanged(lease_id), log)
