"""The Locker: claims fires in etcd so that each runs exactly once in the cluster.

For each fire the live eligible workers (with shards on, its job's servers:
``claim_order``) are ranked by rendezvous hashing (``placement``). The first claims at
once, the others after a backoff that grows with their rank and load, so the fleet
shares the work evenly and a dead first choice is covered a step later. The claim itself
is one transaction (``transport``): a claim another worker won is dropped at once, never
waited on; one etcd did not answer (a member down, an election) is tried again within
the fire's misfire grace (``single_path``; the grace: ``claim_grace``), and counted.
While etcd has no quorum (``quorum``) no fire is claimed at all: one state, logged once;
the Scheduler catches up after. A fire whose job is still running is skipped
(concurrency ``forbid``: counted into that run's one record, ``worker.skips``) or takes
its place (``replace``). While the spill directory is full (``worker.spill_room``: the
store down and the disk refusing the spill), no new fire is claimed and no skip
recorded: each would add a run record with nowhere safe to go. Such fires are counted
(``spill_full``) and left to the other workers, after their rank's step; with none, they
are missed. The time each first-choice claim won took goes to the ``ClaimLead``, which
the claim lead follows, and so does the round trip of every claim and check transaction.

In: ``Claim`` (a fire), ``ClaimWindow`` (the fires of one of the Scheduler's wake-ups,
each taken as if it came alone), ``ClaimLost`` and ``PersistRetry`` (write a pending
retry to etcd) from the Scheduler, ``WorkersChanged`` from the JobWatcher,
``SessionChanged`` from the Registrar; the Executor's count of runs from a shared
``RunLoad``. Out: ``Granted``, ``GrantedBatch`` (the runs one batch won), ``Denied``
and ``LostClaimed`` to the Scheduler; ``StartRun`` to the
Executor when the Scheduler has stopped (the claim is ours: it runs).

Mailbox: bounded; senders wait. No fire has a task of its own (issue 14: each worker
spawned one per fire, and woke it after its wait). A first choice goes to its batch at
once; every wait (a backup's rank step, a retry's backoff, the turn of every eligible
worker before a skip is recorded) is an entry in one heap of due fires (``due_fires``)
that one task serves, handing each due fire to the group-commit batchers
(``claim_batch``: a first choice's claim, a backup's read-only check), whose tasks hand
each answer on. Only the single path (``single_path``: a fire no batch can take or its
batch left undecided: guarded, manual, retry, recovered) runs a task per attempt, for
its own transactions. At most ``mailbox_size`` fires are in flight (taken, not yet
decided), beyond which the Locker stops taking messages and the Scheduler waits:
backpressure, not loss (lost runs and pending retries to write are spawned tasks, at
most ``mailbox_size`` more). At a graceful stop (``drain``) the fires still waiting
their turn are dropped, a retry has its last attempt at once, and the stop waits until
every fire under way is decided and its outcome told; only then does the runtime stop
the background.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import trio

from actors import Actor, Address, Inbox
from cluster.etcd import Etcd, EtcdError, EtcdUnavailable
from cluster.presence import RunningInfo

from worker import claims
from worker.claim_lead import ClaimLead
from worker.context import WorkerContext
from worker.executor.messages import ExecutorMsg, StartRun
from worker.last_fires import note_fire
from worker.messages import Fire, Run
from worker.registrar.messages import SessionChanged
from worker.run_load import RunLoad
from worker.shards import ShardState
from worker.spill_room import SpillRoom
from worker.scheduler.messages import (Denied, Granted, GrantedBatch, LostClaimed, QuorumBack,
                                       SchedulerMsg)
from .claim_batch import (CHECK_GATHER_S, CLAIM_GATHER_S, ClaimBatcher, Outcome, PendingClaim,
                          ahead_patience)
from .claim_grace import ClaimAttempts
from .claim_order import ClaimOrder, fire_key
from .due_fires import DueFires
from .fleet_outage import QuorumOutage, fleet_outage_start
from .lock_leases import LockLeases
from .messages import Claim, ClaimLost, ClaimWindow, LockerMsg, PersistRetry, WorkersChanged
from .placement import first_of
from .quorum import QuorumWatch
from .replace import Replacer
from .single_path import SinglePath
from .statistics import LockerStatistics
from .transport import ClaimTransport

__all__ = ["Locker", "LockerStatistics"]

log = logging.getLogger(__name__)

SESSION_WAIT_S = 30.0  # after quorum's return, for the Registrar's new lease (if fenced)
# The due fires' task wakes on multiples of this (``due_fires``): a backup's check, a
# retry's backoff or a skip's wait may come up to this much after its time, never before.
DUE_TICK_S = 0.04


class _Act(enum.Enum):
    CLAIM = "claim"  # its rank's turn: claim it (a first choice) or check, then claim it
    SKIP = "skip"  # every eligible worker had its turn: record it skipped, if nobody ran it
    AGAIN = "again"  # etcd did not answer: the single path's next attempt


@dataclass(eq=False, slots=True)
class _Due:
    """A fire in flight: what to do with it when its time comes."""

    fire: Fire
    act: _Act
    first_choice: bool = False
    attempts: ClaimAttempts | None = None  # the single path's, once it took it


class Locker(Actor[LockerMsg]):
    def __init__(self, inbox: Inbox[LockerMsg], ctx: WorkerContext, etcd: Etcd, *,
                 scheduler: Address[SchedulerMsg], executor: Address[ExecutorMsg],
                 room: SpillRoom | None = None, lead: ClaimLead | None = None,
                 shards: ShardState | None = None, load: RunLoad | None = None) -> None:
        """``room``: the worker's ``SpillRoom``, ``shards`` its ``ShardState``, ``load``
        its ``RunLoad`` (all read only); ``lead``: its ``ClaimLead`` (this Locker writes
        its claims' round trips); fresh ones if not given (shards off)."""
        super().__init__(inbox, task_limit=ctx.config.mailbox_size)  # lost runs, retries
        self._ctx = ctx
        self._room = room if room is not None else SpillRoom()
        self._lead = lead if lead is not None else ClaimLead(ctx.clock, ctx.config.claim_lead_s)
        self._etcd = etcd
        self._scheduler = scheduler
        self._executor = executor
        lock_leases = LockLeases(etcd, ctx.config.lock_ttl_s)
        self._transport = ClaimTransport(etcd, ctx.keyspace, ctx.worker_id, ctx.clock, lock_leases,
                                         session=lambda: self._session)
        self._order = ClaimOrder(ctx, shards)  # who claims a fire when: the fleet, its clocks
        self._session: int | None = None
        self._load = load if load is not None else RunLoad()
        self._stopping = False
        self._counts = {"won": 0, "taken": 0, "skipped": 0, "skipped_running": 0,
                        "skipped_no_capacity": 0, "unschedulable": 0, "failed": 0,
                        "spill_full": 0, "retries": 0, "no_quorum": 0, "not_served": 0}
        self._quorum = QuorumWatch(etcd, ctx.clock, self._quorum_back)
        replacer = Replacer(etcd, ctx.keyspace, ctx.worker_id, ctx.clock,
                            kill_grace_s=ctx.config.kill_grace_s)
        self._alone = SinglePath(self._transport, replacer, lock_leases, self._quorum, self._counts,
                                 session=lambda: self._session, stopping=lambda: self._stopping,
                                 tell=self._tell_scheduler)
        # Fires in flight: taken from the mailbox, not yet decided (backpressure).
        self._slots = trio.Semaphore(ctx.config.mailbox_size)
        self._in_flight = 0
        self._idle = trio.Event()  # stopping, and no fire in flight
        self._due: DueFires[_Due] = DueFires(DUE_TICK_S)
        # First choices claim together; backups check together whether it is still free,
        # a lone check too: a read, never a losing claim transaction (a raft write per
        # backup per fire, issue 14); a check that finds the lock free claims alone.
        self._claims = ClaimBatcher(self._lead.timed(self._transport.claim_batch),
                                    functools.partial(self._settled, first_choice=True),
                                    patience=ahead_patience(ctx.clock, CLAIM_GATHER_S))
        self._checks = ClaimBatcher(self._lead.timed(self._transport.check_batch),
                                    functools.partial(self._settled, first_choice=False),
                                    patience=ahead_patience(ctx.clock, CHECK_GATHER_S))
        self._singles: trio.Nursery | None = None  # the single path's attempts

    def background(self) -> Iterable[Callable[..., Awaitable[None]]]:
        return self._serve_fires, self._quorum.run

    async def _serve_fires(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                           ) -> None:
        """The due fires' task, the two batchers, and the single path's attempts."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._claims.serve, name="Locker claims")
            nursery.start_soon(self._checks.serve, name="Locker checks")
            nursery.start_soon(self._due.serve, self._act, name="Locker due fires")
            self._singles = nursery
            task_status.started()

    async def drain(self) -> None:
        # Fires waiting their turn are dropped (a backup's step, a skip's wait: as the
        # claims backing off gave up before); a retry has its last attempt at once (read
        # back if its answer was lost, else missed); those in a transaction finish (their
        # outcome must reach the Executor, or their keys would outlive the run).
        self._stopping = True
        for due in self._due.clear():
            if due.act is _Act.AGAIN:
                self._act(due)
            else:
                self._done()
        if self._in_flight:
            await self._idle.wait()

    def statistics_detail(self) -> LockerStatistics:
        return LockerStatistics(**self._counts, in_flight=self._in_flight + self.tasks_running,
                                clock_offset_ms=self._order.clock_offset_ms,
                                out_of_step=self._order.out_of_step,
                                quorum_lost=self._quorum.lost)

    async def handle(self, msg: LockerMsg) -> None:
        match msg:
            case Claim(fire):
                await self._take_in_turn(fire)
            case ClaimWindow(fires):
                for fire in fires:
                    await self._take_in_turn(fire)
            case ClaimLost(info, chains):
                if info.worker_id != self._ctx.worker_id:
                    await self.spawn(self._claim_lost, info, chains)
            case PersistRetry(retry):
                await self.spawn(claims.persist_retry, self._etcd, self._ctx.keyspace, retry,
                                 self._ctx.clock.now_ms())
            case WorkersChanged(workers, offsets_ms):
                self._order.workers_changed(workers, offsets_ms)
            case SessionChanged(lease_id):
                self._session = lease_id

    def _failed(self, what: str, arg: object, exc: EtcdError) -> None:
        # One refused claim must not restart the whole pipeline: say which, go on.
        self._counts["failed"] += 1
        log.error("%s(%r) failed: %s", what, arg, exc)

    # -- a fire in flight: taken, due, decided ----------------------------------------

    async def _take_in_turn(self, fire: Fire) -> None:
        """Take ``fire`` once a slot is free: all taken, the mailbox is not read (a
        window's remaining fires wait with it). A free slot is taken without a
        schedule point: a window costs one task step, not one per fire."""
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._slots.acquire()
        self._in_flight += 1
        self._take(fire)

    def _take(self, fire: Fire) -> None:
        """A fire handed over: acted on at once (a first choice), or when its wait is over."""
        if not self._order.serves(fire):  # handed over meanwhile, or unschedulable
            unschedulable = self._order.nobody_serves(fire)
            self._counts["unschedulable" if unschedulable else "not_served"] += 1
            return self._done()
        delay_s = self._order.delay_for(fire, self._load.running)
        if delay_s is None:
            wait_s = self._skip_wait_s(fire)
            return self._done() if wait_s is None else self._later(wait_s, _Due(fire, _Act.SKIP))
        due = _Due(fire, _Act.CLAIM, first_choice=delay_s == 0)
        if delay_s > 0:
            return self._later(delay_s, due)
        self._act(due)

    def _later(self, delay_s: float, due: _Due) -> None:
        self._due.push(trio.current_time() + delay_s, due)

    def _act(self, due: _Due) -> None:
        """Its time came: into a batch, or to the single path (never blocks)."""
        fire = due.fire
        if due.act is _Act.AGAIN:
            return self._single(self._attempt, due)
        if self._stopping or self._session is None or self._spill_full():
            return self._done()
        if due.act is _Act.SKIP:
            return self._single(self._skip_unless_claimed, due)
        if self._quorum.lost:
            self._counts["no_quorum"] += 1
            return self._done()
        if claims.batchable(fire):
            (self._claims if due.first_choice else self._checks).submit(fire)
        else:
            self._single(self._attempt, due)

    async def _settled(self, batch: list[PendingClaim], *, first_choice: bool) -> None:
        """A batch's answers (in the batcher's task: it must not wait long). The runs it
        won go on to the Scheduler in one message."""
        won: list[Run] = []
        for pending in batch:
            fire = pending.item
            match pending.result:
                case Run() as run:
                    won.append(run)
                    if first_choice:  # a first choice: how long its claim took from hand-over
                        self._lead.claimed(fire)
                    continue
                case Outcome.TAKEN:
                    self._counts["taken"] += 1
                case Outcome.NO_SESSION:
                    pass
                case result:  # undecided, or its answer lost: the single path
                    attempts = ClaimAttempts.of(fire, self._ctx.clock,
                                                self._ctx.config.misfire_grace_s,
                                                answer_lost=result is Outcome.UNKNOWN)
                    self._single(self._attempt, _Due(fire, _Act.AGAIN, first_choice, attempts))
                    continue
            self._done()
        if won:
            self._counts["won"] += len(won)
            await self._granted_batch(won)
            for _ in won:
                self._done()

    def _done(self) -> None:
        """A fire decided (or dropped): its slot is free."""
        self._in_flight -= 1
        self._slots.release()
        if self._stopping and not self._in_flight:
            self._idle.set()

    async def _won(self, run: Run, *, first_choice: bool) -> None:
        if first_choice:  # a first choice: how long its claim took from hand-over
            self._lead.claimed(run.fire)
        self._counts["won"] += 1
        try:
            await self._granted(run)
        except EtcdError as exc:
            self._failed("claim", run.fire, exc)

    def _single(self, attempt: Callable[[_Due], Awaitable[bool]], due: _Due) -> None:
        """The single path: a task for one attempt, whose transactions are its own.
        ``attempt`` returns True if it put the fire back in the heap (still in flight)."""
        assert self._singles is not None, "the Locker's background has started"
        self._singles.start_soon(self._run_single, attempt, due)

    async def _run_single(self, attempt: Callable[[_Due], Awaitable[bool]], due: _Due) -> None:
        again = False
        try:
            again = await attempt(due)
        except EtcdError as exc:
            self._failed("claim", due.fire, exc)
        finally:
            if not again:
                self._done()

    # -- the single path --------------------------------------------------------------

    async def _attempt(self, due: _Due) -> bool:
        """One attempt of the claim alone (``single_path``); True: put back in the heap,
        to be tried again after a backoff."""
        if due.attempts is None:
            due.attempts = ClaimAttempts.of(due.fire, self._ctx.clock,
                                            self._ctx.config.misfire_grace_s)
        match await self._alone.try_once(due.fire, due.attempts):
            case Run() as run:
                await self._won(run, first_choice=due.first_choice)
            case float() as wait_s:
                due.act = _Act.AGAIN
                self._later(wait_s, due)
                return True
        return False

    def _skip_wait_s(self, fire: Fire) -> float | None:
        """Not ours to run (full, or not eligible): how long until every eligible worker
        has had its turn, after which this one records it skipped if nobody took it
        (``_skip_unless_claimed``); None: another worker does, or nobody at all."""
        eligible = [w for w in self._order.workers if w.matches(fire.spec.selector)]
        me_eligible = all(self._ctx.config.labels.get(k) == v for k, v in fire.spec.selector.items())
        if eligible and not me_eligible:
            return None  # the eligible ones run it, or record it
        if not me_eligible:
            # No live worker can run it: the master shows the job ``schedulable:
            # false`` (and raises the alert once); a record per fire would be noise.
            # One worker, the same for every worker's view of the fleet, counts it.
            if first_of(fire_key(fire), self._ctx.worker_id, self._order.workers):
                self._counts["unschedulable"] += 1
            return None
        return (len(self._order.workers) + 2) * 2 * self._ctx.config.claim_step_s

    async def _skip_unless_claimed(self, due: _Due) -> bool:
        """Every eligible worker had its turn (``_skip_wait_s``): the skip is a claim of
        its own, so exactly one worker records it and only if no worker took the fire."""
        fire = due.fire
        try:
            await self._alone.record_skip(fire, "no worker had free capacity",
                                          "skipped_no_capacity")
        except EtcdUnavailable as exc:
            log.error("job %r fire at %d: not run (no worker had free capacity), "
                      "not recorded: %s", fire.spec.name, fire.planned_ms, exc)
        return False

    def _spill_full(self) -> bool:
        """Counted once per fire; said once per change, by the ``SpillRoom``."""
        if self._room.full:
            self._counts["spill_full"] += 1
        return self._room.full

    async def _quorum_back(self, lost_since_ms: int) -> None:
        """Tell the Scheduler to catch up from the outage's start as the first worker
        back saw it (``fleet_outage``: one outage key fleet-wide); once we have a
        session again, if the Registrar fenced us meanwhile (else the catch-up claims
        would be dropped)."""
        with trio.move_on_after(SESSION_WAIT_S):
            while self._session is None and not self._stopping:
                await trio.sleep(0.05)
        mine = QuorumOutage(lost_since_ms, self._ctx.clock.now_ms(), self._ctx.worker_id)
        since_ms = await fleet_outage_start(
            self._etcd, self._ctx.keyspace.quorum_outage, mine,
            skew_ms=round(self._ctx.config.max_clock_skew_s * 1000))
        await self._scheduler.tell_or_log(QuorumBack(since_ms), log, logging.WARNING)

    async def _granted_batch(self, runs: list[Run]) -> None:
        """The runs go on to the Scheduler, in one message if more than one. Batched runs
        write their job's state in their claim (``claims.batchable``): nothing to note."""
        msg = Granted(runs[0]) if len(runs) == 1 else GrantedBatch(tuple(runs))
        if not await self._scheduler.tell(msg):
            # Shutting down: the Scheduler is gone but the claims are ours; run them anyway.
            for run in runs:
                await self._executor.send(StartRun(run))

    async def _granted(self, run: Run) -> None:
        await self._granted_batch([run])
        if not claims.writes_state(run.fire):  # manual, retry, recovered, chain
            await note_fire(self._etcd, self._ctx.keyspace, run.fire, self._ctx.worker_id,
                            self._ctx.clock.now_ms())

    async def _tell_scheduler(self, msg: Denied | LostClaimed) -> None:
        await self._scheduler.tell_or_log(msg, log, logging.INFO)

    # -- runs of dead workers -------------------------------------------------------

    async def _claim_lost(self, info: RunningInfo, chains: tuple[tuple[str, str], ...]) -> None:
        """Exactly one surviving worker records a vanished run as lost (and triggers the
        jobs chained after it on a failure: ``worker.chains``)."""
        try:
            won = await self._transport.claim_lost(info, chains)
        except EtcdUnavailable as exc:
            log.error("run %s of %r vanished; could not claim it: %s", info.run_id, info.job_name, exc)
            return
        except EtcdError as exc:
            self._failed("_claim_lost", info, exc)
            return
        if won:
            await self._tell_scheduler(LostClaimed(info))
