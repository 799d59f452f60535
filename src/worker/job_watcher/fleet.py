"""workers/ → the live fleet for the Locker, and the runs lost with a worker for the Scheduler.

Every change → ``WorkersChanged`` (the live workers, sorted by id, and the offset of
each one's clock from ours, learnt from its publications as they happen:
``worker.locker.fleet_clock``). A deletion is a worker leaving: its session lease
ended, and etcd deleted its key and its runs' keys in that one revision, so one read
of running/ as it was just before (``lost_runs.LostRuns``) gives the runs it left,
each with its last state (claimed or started) → ``RunVanished``. running/ itself is
not watched: a run's release costs no watch event (issue 14). Hence the lease of every
worker key is kept as its puts are seen. Workers that left during a compaction gap of
this watch are only logged: no revision of their leaving is known, their runs cannot
be told lost from ended.

Shards on (``worker.shards``): every change of workers/ is noted for a cold start's
settle and cohort, and every one that changes the membership (who serves, and this
worker; a cold start's cohort) is adopted and the jobs are planned again
(``on_membership``: ``JobsListener.reload``); a vanished run goes to the Scheduler only
if this worker serves its job, or, for a job that no longer exists, owns its slot:
those are the workers that would run it again, and one of them records it lost. Which
it is, is known without asking etcd (``ShardState.elsewhere``): a worker's departure
costs no read per run of jobs served elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors import Address
from worker.clock import WallClock
from cluster.etcd import Etcd, EventType, KeyValue, PrefixSnapshot, WatchEvent
from cluster.keyspace import Keyspace
from cluster.presence import PresenceDecodeError, RunningInfo, WorkerInfo, is_seed_registration

from worker.locker.messages import LockerMsg, WorkersChanged
from worker.scheduler.messages import RunVanished, SchedulerMsg
from worker.shards import ShardState
from .lost_runs import LostRuns

log = logging.getLogger(__name__)


class FleetListener:
    """Listens to the workers/ mirror (``workers_read``, ``worker_event``)."""

    def __init__(self, keyspace: Keyspace, worker_id: str, *, locker: Address[LockerMsg],
                 scheduler: Address[SchedulerMsg], clock: WallClock,
                 shards: ShardState | None = None, etcd: Etcd | None = None,
                 on_membership: Callable[[], Awaitable[None]] | None = None) -> None:
        """``etcd``: to read the runs a worker left (none: nothing is found lost);
        ``shards`` and ``on_membership``: for a sharded cluster (module doc)."""
        self._shards = shards if shards is not None else ShardState(worker_id)
        self._on_membership = on_membership
        self._ks = keyspace
        self._worker_id = worker_id  # our own runs are never ours to report lost
        self._clock = clock
        self._locker = locker
        self._scheduler = scheduler
        self.workers: dict[str, WorkerInfo] = {}
        # worker id → its clock minus ours (ms), from a publication seen as it happened;
        # a read's values may be seconds old and teach nothing about clocks.
        self.offsets_ms: dict[str, int] = {worker_id: 0}
        # worker id → the lease its key was last put with (its runs' keys share it)
        self.leases: dict[str, int] = {}
        self.lost = LostRuns(etcd, keyspace, worker_id)
        self.lost_runs = 0  # RunVanished sent

    # -- workers/ -----------------------------------------------------------------------

    async def workers_read(self, snapshot: PrefixSnapshot, resumed_after: int | None) -> None:
        known, self.workers, self.leases = self.leases, {}, {}
        for kv in snapshot.kvs:
            self._add_worker(kv)
        # Gone, or back on another lease: their old lease ended somewhere in the gap.
        gone = sorted(w for w, lease in known.items() if w != self._worker_id and lease
                      and self.leases.get(w) != lease)
        if resumed_after is not None and gone:
            self.lost.untold += len(gone)
            log.warning("%d workers left during a compaction gap (%s): whether any of "
                        "their runs was lost cannot be told", len(gone), ", ".join(gone))
        self.offsets_ms = {w: o for w, o in self.offsets_ms.items()
                           if w in self.workers or w == self._worker_id}
        await self._send_workers()

    async def worker_event(self, event: WatchEvent) -> None:
        worker_id = self._ks.parse_worker(event.key)
        if worker_id is None:
            log.warning("ignoring %s: not a worker key", event.key)
            return
        if event.type is EventType.PUT:
            info = self._add_worker(event.kv)
            if info is not None and worker_id != self._worker_id:
                self.offsets_ms[worker_id] = info.wall_ms - self._clock.now_ms()
            await self._send_workers()
            return
        info = self.workers.pop(worker_id, None)
        lease_id = self.leases.pop(worker_id, 0)
        if worker_id != self._worker_id:
            self.offsets_ms.pop(worker_id, None)
        await self._send_workers()
        published = info.running if info is not None else None
        for run in await self.lost.left(worker_id, lease_id, event.revision, published):
            await self._vanished(run)

    def _add_worker(self, kv: KeyValue) -> WorkerInfo | None:
        """Record a registration; an unreadable one makes its worker ineligible."""
        worker_id = self._ks.parse_worker(kv.key)
        if worker_id is None:
            return None
        self.workers.pop(worker_id, None)
        seed = is_seed_registration(kv.value)
        self.leases[worker_id] = 0 if seed else kv.lease_id  # a seed worker runs none of ours
        if seed:  # the seed's worker: it never claims our fires
            log.info("worker %r is a seed worker (empty registration): no fire is placed on it",
                     worker_id)
            return None
        try:
            info = WorkerInfo.from_bytes(kv.value)
        except PresenceDecodeError as err:
            log.warning("worker %r is ignored: %s", worker_id, err)
            return None
        if info.worker_id != worker_id:
            log.warning("worker key %r holds worker %r: ignored", worker_id, info.worker_id)
            return None
        self.workers[worker_id] = info
        return info

    async def _send_workers(self) -> None:
        workers = tuple(sorted(self.workers.values(), key=lambda w: w.worker_id))
        offsets = {w: o for w, o in self.offsets_ms.items()
                   if w in self.workers or w == self._worker_id}
        await self._locker.tell_or_log(WorkersChanged(workers, offsets), log)
        if self._shards.on:
            self._shards.seen(workers, trio.current_time())
            await self.recheck()

    async def recheck(self) -> None:
        """Adopt the membership the registrations call for, if it changed, and plan
        again (also when a cold start's cohort times out: ``worker.shards``)."""
        workers = tuple(sorted(self.workers.values(), key=lambda w: w.worker_id))
        fleet = self._shards.proposed(workers, trio.current_time())
        if fleet is not None:
            self._shards.adopt(fleet)
            log.info("shards: %d workers counted now (%s); planning this worker's jobs",
                     len(fleet), ", ".join(w.worker_id for w in fleet))
            if self._on_membership is not None:
                await self._on_membership()

    # -- lost runs -------------------------------------------------------------------

    async def _vanished(self, info: RunningInfo) -> None:
        if self._shards.elsewhere(info.job_name):
            return  # its servers run it again or record it lost (module doc)
        self.lost_runs += 1
        log.warning("run %s of job %r vanished with worker %r", info.run_id, info.job_name,
                    info.worker_id)
        await self._scheduler.tell_or_log(RunVanished(info), log)
