"""The JobWatcher: mirrors etcd into messages for the Scheduler, Executor and Locker.

It follows five prefixes (DESIGN §3, §4), each with a ``cluster.mirror.PrefixMirror``
(read the prefix, hand over what it holds, watch from the read's revision + 1; the
adapter resumes broken streams by itself, no event lost or repeated; when the watch's
history is compacted away the mirror reads again and the listener is given the last
revision it handed over, ``resumed_after``, so state converges instead of drifting).
Each prefix has a listener beside this module that turns it into messages::

    workers/   every change → WorkersChanged → Locker              (fleet.py)
               a deletion → the runs that went with it, read at the
               revision before → RunVanished → Scheduler           (lost_runs.py)
    jobs/      read (in pages) → JobsSnapshot, put → JobSaved / JobDeleted,
               delete → JobDeleted → Scheduler                      (jobs.py)
    killer/    put → KillRun → Executor                             (run_requests.py)
    trigger/   create → TriggerRequested → Scheduler                (run_requests.py)
    retry/     read, create → RetryRequested → Scheduler            (run_requests.py)

running/ is not followed: a run's release would cost every worker a watch event per
fire, and a worker's deletion says when to read what it left (``lost_runs``).

Start-up: the mirrors start in that order, each once its first read is delivered (they
are background tasks taking ``task_status``), and the actor is started after the last:
a started worker has its plan table loaded, its Locker already knew the fleet, and
triggers found their jobs.

Shards (``worker.shards``, DESIGN §6b): the listeners share the worker's
``ShardState``; the first load waits for the registrations to settle (the cold
start's cohort, ``ShardState.settle``); a change of the membership re-plans
(``JobsListener.reload``) and replays the gained jobs' pending run requests
(``_gained``). A graceful stop first
hands over (``drain``): the worker says it is leaving and keeps planning and claiming
until every other serving worker has loaded its slots without it, at most
``HANDOVER_S``.

Mailbox-full policy: every send awaits (``Address.tell_or_log``). A full peer stalls that prefix's
mirror, which then stops pulling from etcd (the adapter reads a stream only when asked,
so etcd holds the rest): backpressure, never a drop. A peer that stopped during a
shutdown is skipped. The JobWatcher's own inbox carries no messages (``JobWatcherMsg``
is empty): sealing it stops the actor, and with it the mirrors.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actors import Actor, Address, Inbox
import trio

from cluster.etcd import Etcd
from cluster.mirror import OnEvent, OnRead, PrefixMirror, read_prefix

from worker.executor.messages import ExecutorMsg
from worker.locker.messages import LockerMsg
from worker.scheduler.messages import SchedulerMsg
from worker.shards import ShardState, handed_over
from .fleet import FleetListener
from .jobs import JobsListener
from .messages import JobWatcherMsg
from .run_requests import KillsListener, RetriesListener, TriggersListener

if TYPE_CHECKING:
    from worker.context import WorkerContext

log = logging.getLogger(__name__)

HANDOVER_S = 1.2  # a leaving worker's longest wait for its successors (within its grace)


@dataclass(frozen=True, slots=True)
class JobWatcherStatistics:
    jobs_snapshots: int  # JobsSnapshot sent: one at start-up, one per jobs/ re-read
    compactions: int  # watches (any prefix) that had to re-read
    invalid_specs: int  # job values rejected (logged)
    lost_runs: int  # RunVanished sent
    workers: int
    lost_reads: int  # reads of running/ at a worker's departure
    lost_untold: int  # departures whose runs could not be told lost or ended (logged)


class JobWatcher(Actor[JobWatcherMsg]):
    """Five mirrors and their listeners; the peers' addresses stay on the actor (the flow
    diagram finds them here) and go to the listeners that send to them."""

    def __init__(self, inbox: Inbox[JobWatcherMsg], ctx: WorkerContext, etcd: Etcd, *,
                 scheduler: Address[SchedulerMsg], executor: Address[ExecutorMsg],
                 locker: Address[LockerMsg], shards: ShardState | None = None) -> None:
        """``shards``: the worker's ``ShardState`` (module doc); none: shards off."""
        super().__init__(inbox)
        self._scheduler = scheduler
        self._executor = executor
        self._locker = locker
        self._etcd = etcd
        self._ks = ks = ctx.keyspace
        self._shards = shards = shards if shards is not None else ShardState(ctx.worker_id)
        shards.leave(False)  # a new incarnation after a restart serves again
        self._fleet = FleetListener(ks, ctx.worker_id, locker=locker, scheduler=scheduler,
                                    clock=ctx.clock, shards=shards, etcd=etcd,
                                    on_membership=self._membership_changed)
        self._jobs = JobsListener(etcd, ks, scheduler, ctx.worker_id, shards, self._gained)
        kills = KillsListener(ks, executor)
        self._triggers = triggers = TriggersListener(ks, ctx.clock, scheduler, shards)
        self._retries = retries = RetriesListener(ks, scheduler, shards)
        jobs = PrefixMirror(etcd, ks.jobs_prefix)  # loads itself, in pages (``JobsListener.load``)
        follow: list[tuple[PrefixMirror, OnRead, OnEvent]] = [  # in start-up order
            (PrefixMirror(etcd, ks.workers_prefix),
             self._fleet.workers_read, self._fleet.worker_event),
            (PrefixMirror(etcd, ks.killer_prefix), kills.on_read, kills.on_event),
            (PrefixMirror(etcd, ks.trigger_prefix), triggers.on_read, triggers.on_event),
            (PrefixMirror(etcd, ks.retry_prefix), retries.on_read, retries.on_event),
        ]
        self._follow = [functools.partial(mirror.run, on_read, on_event)
                        for mirror, on_read, on_event in follow]
        self._follow.insert(1, functools.partial(jobs.run_loading, self._jobs.load,
                                                 self._jobs.on_event))
        self._mirrors = [mirror for mirror, _, _ in follow] + [jobs]

    def background(self) -> Iterable[Callable[..., Awaitable[None]]]:
        # each mirror takes task_status: started once its first read is handed over
        return (*self._follow, self._cohort_timeout)

    async def _cohort_timeout(self) -> None:
        """A cold start's cohort not done by its deadline falls back (``worker.shards``)
        even if workers/ says nothing more."""
        shards = self._shards
        if not shards.on:
            return
        await shards.wait_settled()
        if shards.cohort_deadline_s is not None:
            await trio.sleep_until(shards.cohort_deadline_s)
            await self._fleet.recheck()

    async def drain(self) -> None:
        """A graceful stop hands this worker's slots over first (module doc)."""
        if not self._shards.on:
            return
        self._shards.leave()
        with trio.move_on_after(HANDOVER_S) as waited:
            while not handed_over(self._shards.me.worker_id, self._fleet.workers.values()):
                await trio.sleep(0.05)
        log.info("shards: %s", "handed over to the other workers" if not waited.cancelled_caught
                 else f"not every other worker had loaded this one's slots in {HANDOVER_S} s")

    async def _membership_changed(self) -> None:
        await self._jobs.reload()

    async def _gained(self, names: frozenset[str]) -> None:
        """The run-nows and retries already pending for jobs this worker just gained."""
        await self._triggers.replay(await read_prefix(self._etcd, self._ks.trigger_prefix), names)
        await self._retries.replay(await read_prefix(self._etcd, self._ks.retry_prefix), names)

    async def handle(self, msg: JobWatcherMsg) -> None:
        log.warning("job watcher: unexpected message %r ignored", msg)

    def statistics_detail(self) -> JobWatcherStatistics:
        fleet = self._fleet
        return JobWatcherStatistics(
            jobs_snapshots=self._jobs.snapshots,
            compactions=sum(mirror.statistics().compactions for mirror in self._mirrors),
            invalid_specs=self._jobs.invalid_specs,
            lost_runs=fleet.lost_runs,
            workers=len(fleet.workers),
            lost_reads=fleet.lost.reads,
            lost_untold=fleet.lost.untold,
        )
