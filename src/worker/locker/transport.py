"""The Locker: claims fires in etcd so that each runs exactly once in the cluster.

Every worker plans every job; for each fire the live eligible workers are ranked by
rendezvous hashing (``placement``). The first claims at once, the others after a
backoff that grows with their rank and load, so the fleet shares the work evenly and
a dead first choice is covered a step later. The claim itself is one transaction
(``claims``): a lost claim is dropped at once, never waited on.

Mailbox: bounded; senders wait. Each claim runs as a task of its own (a backoff must
not hold up other claims); at most ``mailbox_size`` are in flight, beyond which the
Locker stops taking messages and the Scheduler waits: backpressure, not loss.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from actors import Actor, Inbox
from cluster.etcd import (
    Compare,
    Etcd,
    EtcdError,
    EtcdOutcomeUnknown,
    EtcdUnavailable,
    GetResult,
    LeaseExpired,
    Put,
)
from cluster.presence import RunningInfo, WorkerInfo
from cluster.store import RunTrigger

from worker import claims
from worker.context import WorkerContext
from worker.executor.messages import StartRun
from worker.messages import Fire, Run
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import Denied, Granted, LostClaimed
from .claim_batch import BatchQueue, Outcome, PendingClaim, Result, distinct_jobs
from .messages import Claim, ClaimLost, LoadChanged, LockerMsg, WorkersChanged
from .placement import claim_delay_s, rank_of

log = logging.getLogger(__name__)

ETCD_RETRY_S = 0.1
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LockerStatistics:
    won: int
    taken: int  # another worker had it
    skipped: int  # we recorded it skipped (job busy, no capacity anywhere)
    failed: int  # etcd did not answer before the fire's grace ran out
    in_flight: int


class LockLeases:
    """Lock keys share one lease, replaced every ``ttl_s / 3``: never a lease per fire.

    A lock key therefore lives between 2/3 and all of ``ttl_s`` (kept above the largest
    tolerated clock skew), long enough that no worker can claim the same fire again.
    """

    def __init__(self, etcd: Etcd, ttl_s: int) -> None:
        self._etcd = etcd
        self._ttl_s = ttl_s
        self._lease: int | None = None
        self._granted_at = 0.0
        self._lock = trio.Lock()

    async def current(self) -> int:
        if self._fresh():
            return self._lease  # type: ignore[return-value]  # _fresh() checked it
        async with self._lock:
            if not self._fresh():
                self._lease = (await self._etcd.grant_lease(self._ttl_s)).id
                self._granted_at = trio.current_time()
        return self._lease  # type: ignore[return-value]

    def _fresh(self) -> bool:
        return self._lease is not None and trio.current_time() - self._granted_at < self._ttl_s / 3


class Locker(Actor[LockerMsg]):
    def __init__(self, inbox: Inbox[LockerMsg], ctx: WorkerContext, etcd: Etcd) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._etcd = etcd
        self._ks = ctx.keyspace
        self._lock_leases = LockLeases(etcd, ctx.config.lock_ttl_s)
        self._workers: tuple[WorkerInfo, ...] = ()
        self._session: int | None = None
        self._running = 0
        self._in_flight = trio.Semaphore(ctx.config.mailbox_size)
        self._idle = trio.Event()  # set exactly when no claim task is running
        self._idle.set()
        self._in_flight_max = ctx.config.mailbox_size
        self._stopping = False
        self._counts = {"won": 0, "taken": 0, "skipped": 0, "failed": 0}
        self._nursery: trio.Nursery | None = None
        # First choices claim together; backups check together whether it is still free.
        self._claims = BatchQueue(ctx.config.mailbox_size)
        self._checks = BatchQueue(ctx.config.mailbox_size)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._claims.serve, self._claim_batch)
            nursery.start_soon(functools.partial(self._checks.serve, self._check_batch,
                                                 min_batch=2))
            task_status.started()
            await self.serve()
            await self._idle.wait()  # claims in a transaction finish, through the batches
            self._claims.close()
            self._checks.close()

    async def drain(self) -> None:
        # Claims still backing off give up; those in a transaction finish (their
        # outcome must reach the Executor, or their keys would outlive the run).
        self._stopping = True

    def statistics_detail(self) -> LockerStatistics:
        return LockerStatistics(**self._counts, in_flight=self._in_flight_max - self._in_flight.value)

    async def handle(self, msg: LockerMsg) -> None:
        match msg:
            case Claim(fire):
                await self._spawn(self._claim, fire)
            case ClaimLost(info):
                if info.worker_id != self._ctx.worker_id:
                    await self._spawn(self._claim_lost, info)
            case WorkersChanged(workers):
                self._workers = workers
            case SessionChanged(lease_id):
                self._session = lease_id
            case LoadChanged(running):
                self._running = running

    async def _spawn(self, fn: Callable[[T], Awaitable[None]], arg: T) -> None:
        await self._in_flight.acquire()  # all taken: stop reading the mailbox
        assert self._nursery is not None
        if self._idle.is_set():
            self._idle = trio.Event()
        self._nursery.start_soon(self._release_after, fn, arg)

    async def _release_after(self, fn: Callable[[T], Awaitable[None]], arg: T) -> None:
        try:
            await fn(arg)
        except EtcdError as exc:
            # One refused claim must not restart the whole pipeline: say which, go on.
            self._counts["failed"] += 1
            log.error("%s(%r) failed: %s", fn.__name__, arg, exc)
        finally:
            self._in_flight.release()
            if self._in_flight.value == self._in_flight_max:
                self._idle.set()

    # -- claiming a fire ------------------------------------------------------------

    async def _claim(self, fire: Fire) -> None:
        delay_s = self._delay_for(fire)
        if delay_s is None:
            await self._skip_unless_claimed(fire)
            return
        if delay_s > 0:
            await trio.sleep(delay_s)
        if self._stopping or self._session is None:
            return
        run = await self._claim_batched(fire, first_choice=delay_s == 0)
        if run is not None:
            self._counts["won"] += 1
            await self._granted(run)

    async def _claim_batched(self, fire: Fire, *, first_choice: bool) -> Run | None:
        """Through a batch when the fire can share one (``claim_batch``), else alone."""
        if claims.batchable(fire):
            queue = self._claims if first_choice else self._checks
            match await queue.submit(fire):
                case Run() as run:
                    return run
                case Outcome.TAKEN:
                    self._counts["taken"] += 1
                    return None
                case Outcome.UNKNOWN:
                    return await self._claimed_anyway(fire)
                case Outcome.NO_SESSION:
                    return None
        return await self._try_claim(fire)

    async def _claim_batch(self, batch: list[PendingClaim]) -> None:
        """Claim several first-choice fires in one transaction (all or none)."""
        batch = distinct_jobs(batch)
        session = self._session
        if session is None:
            return  # unsettled: the single path decides
        fires = [p.item for p in batch]
        try:
            lock_lease = await self._lock_leases.current()
            compares, success, failure = claims.batch_claim_ops(
                self._ks, fires, self._ctx.worker_id, session=session, lock_lease=lock_lease,
                now_ms=self._ctx.clock.now_ms())
            result = await self._etcd.txn(compares, success, failure)
        except EtcdOutcomeUnknown:
            return _settle_all(batch, Outcome.UNKNOWN)
        except LeaseExpired:
            log.warning("batch claim of %d fires: session lease gone", len(batch))
            return _settle_all(batch, Outcome.NO_SESSION)
        except EtcdError as exc:  # unavailable, or refused: each fire retries alone
            log.warning("batch claim of %d fires failed (%s); claiming them one by one",
                        len(batch), exc)
            return
        if result.succeeded:
            for pending in batch:
                pending.settle(Run(pending.item, session, False))
            return
        for pending, probe in zip(batch, result.responses):
            if self._taken(pending.item, probe):
                pending.settle(Outcome.TAKEN)

    async def _check_batch(self, batch: list[PendingClaim]) -> None:
        """Backups: one read tells which fires their owner took; only the rest claim."""
        try:
            result = await self._etcd.txn([], claims.lock_reads(self._ks, [p.item for p in batch]))
        except EtcdError:
            return  # unsettled: the single path decides
        for pending, probe in zip(batch, result.responses):
            if self._taken(pending.item, probe):
                pending.settle(Outcome.TAKEN)

    async def _skip_unless_claimed(self, fire: Fire) -> None:
        """Not ours to run (full, or not eligible): if nobody runs it, record why.

        Waits until every eligible worker has had its turn; the skip is a claim of its
        own, so exactly one worker records it and only if no worker took the fire.
        """
        eligible = [w for w in self._workers if w.matches(fire.spec.selector)]
        me_eligible = all(self._ctx.config.labels.get(k) == v for k, v in fire.spec.selector.items())
        if eligible and not me_eligible:
            return  # the eligible ones run it, or record it
        await trio.sleep((len(self._workers) + 2) * 2 * self._ctx.config.claim_step_s)
        if self._stopping or self._session is None:
            return
        reason = "no worker had free capacity" if eligible else "no live worker matches the selector"
        try:
            await self._record_skip(fire, reason)
        except EtcdUnavailable as exc:
            log.error("job %r fire at %d: not run (%s), not recorded: %s",
                      fire.spec.name, fire.planned_ms, reason, exc)

    def _delay_for(self, fire: Fire) -> float | None:
        cfg = self._ctx.config
        # Manual runs have no fire time of their own to hash: their run id stands in.
        manual = fire.trigger is RunTrigger.MANUAL
        fire_key = fire.run_id if manual else f"{fire.spec.name}@{fire.planned_ms}#{fire.attempt}"
        rank = rank_of(self._ctx.worker_id, cfg.labels, fire_key, self._workers, fire.spec.selector)
        if rank is None:
            return None
        return claim_delay_s(rank, self._running, cfg.capacity, step_s=cfg.claim_step_s)

    async def _try_claim(self, fire: Fire) -> Run | None:
        """One claim transaction, retried while etcd is unreachable within the grace."""
        # A fire claimed again after its worker died is late already: its grace counts
        # from when it was handed over again.
        since_ms = max(fire.planned_ms, fire.fired_ms) if fire.recovers else fire.planned_ms
        deadline_ms = since_ms + round(self._ctx.config.misfire_grace_s * 1000)
        while True:
            try:
                return await self._claim_once(fire)
            except EtcdOutcomeUnknown:
                return await self._claimed_anyway(fire)
            except LeaseExpired:
                log.warning("claim of %s: session lease gone; waiting for a new one", fire.run_id)
                return None
            except EtcdUnavailable as exc:
                if self._ctx.clock.now_ms() >= deadline_ms or self._stopping:
                    self._counts["failed"] += 1
                    log.error("job %r fire at %d not claimed: %s", fire.spec.name, fire.planned_ms, exc)
                    return None
            await trio.sleep(ETCD_RETRY_S)

    async def _claim_once(self, fire: Fire) -> Run | None:
        session = self._session
        if session is None:
            return None
        lock_lease = await self._lock_leases.current()
        compares, ops = claims.claim_ops(self._ks, fire, self._ctx.worker_id, session=session,
                                         lock_lease=lock_lease, now_ms=self._ctx.clock.now_ms())
        result = await self._etcd.txn(compares, ops, claims.claim_probe(self._ks, fire))
        if result.succeeded:
            return Run(fire, session, claims.is_guarded(fire))
        if self._taken(fire, result.responses[0]):
            self._counts["taken"] += 1
            return None
        # Not taken: the job's guard is held, a run of it is still going somewhere. An
        # old fire claimed again never replaces a newer run: it is skipped, as for forbid.
        if fire.spec.concurrency == "replace" and not fire.recovers:
            return await self._replace(fire, session)
        await self._record_skip(fire, "still running (concurrency forbid)")
        return None

    @staticmethod
    def _taken(fire: Fire, probe: object) -> bool:
        """Did another worker claim it? (Else only the job's guard stopped us.)"""
        if not isinstance(probe, GetResult):
            return True
        if claims.by_trigger_key(fire):
            return not probe.kvs  # somebody deleted the trigger key: theirs
        return bool(probe.kvs)  # the lock key exists: theirs

    async def _claimed_anyway(self, fire: Fire) -> Run | None:
        """The answer was lost: read our running key back to learn if the claim went in."""
        session = self._session
        try:
            kv = await self._etcd.get(self._ks.running(fire.spec.name, fire.run_id))
        except EtcdUnavailable:
            kv = None  # unknowable now: if it went in, the key dies with our lease
        if kv is None or session is None or kv.lease_id != session:
            return None  # not ours: a run id claimed again lives on another worker's lease
        return Run(fire, session, claims.is_guarded(fire))

    async def _record_skip(self, fire: Fire, reason: str) -> None:
        lock_lease = await self._lock_leases.current()
        compares, ops = claims.skip_claim_ops(self._ks, fire, self._ctx.worker_id, lock_lease=lock_lease)
        if (await self._etcd.txn(compares, ops)).succeeded:
            self._counts["skipped"] += 1
            await self._tell_scheduler(Denied(fire, reason, record_skip=True))
        else:
            self._counts["taken"] += 1

    async def _replace(self, fire: Fire, session: int) -> Run | None:
        """Concurrency ``replace``: take the fire, kill the running instance, then start."""
        lock_lease = await self._lock_leases.current()
        compares, ops = claims.skip_claim_ops(self._ks, fire, self._ctx.worker_id, lock_lease=lock_lease)
        if not (await self._etcd.txn(compares, ops)).succeeded:
            self._counts["taken"] += 1
            return None
        name = fire.spec.name
        active = await self._etcd.get(self._ks.active(name))
        if active is not None:
            kill = json.dumps({"runId": active.value.decode(), "reason": "replaced"})
            await self._etcd.put(self._ks.killer(name), kill, lease_id=lock_lease)
            await self._wait_gone(self._ks.active(name))
        running = claims.running_info(fire, self._ctx.worker_id, self._ctx.clock.now_ms())
        result = await self._etcd.txn(
            [Compare.create_revision(self._ks.active(name), "==", 0)],
            [Put(self._ks.running(name, fire.run_id), running.to_bytes(), session),
             Put(self._ks.active(name), fire.run_id, session)],
        )
        if not result.succeeded:
            await self._tell_scheduler(Denied(fire, "previous run would not die", record_skip=True))
            return None
        return Run(fire, session, guarded=True)

    async def _wait_gone(self, key: str) -> None:
        with trio.move_on_after(self._ctx.config.kill_grace_s + 2.0):
            while await self._etcd.get(key) is not None:
                await trio.sleep(0.05)

    async def _granted(self, run: Run) -> None:
        if not await self._ctx.peers.scheduler.tell(Granted(run)):
            # Shutting down: the Scheduler is gone but the claim is ours; run it anyway.
            await self._ctx.peers.executor.send(StartRun(run))

    async def _tell_scheduler(self, msg: Denied | LostClaimed) -> None:
        if not await self._ctx.peers.scheduler.tell(msg):
            log.info("scheduler stopped: %s not delivered", type(msg).__name__)

    # -- runs of dead workers -------------------------------------------------------

    async def _claim_lost(self, info: RunningInfo) -> None:
        """Exactly one surviving worker records a vanished run as lost."""
        try:
            lock_lease = await self._lock_leases.current()
            key = claims.lost_key(self._ks, info)
            result = await self._etcd.txn(
                [Compare.create_revision(key, "==", 0)],
                [Put(key, self._ctx.worker_id, lock_lease)],
            )
        except EtcdUnavailable as exc:
            log.error("run %s of %r vanished; could not claim it: %s", info.run_id, info.job_name, exc)
            return
        if result.succeeded:
            await self._tell_scheduler(LostClaimed(info))


def _settle_all(batch: list[PendingClaim], result: Result) -> None:
    for pending in batch:
        pending.settle(result)
