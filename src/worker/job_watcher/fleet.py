"""workers/ and running/ → the live fleet for the Locker, lost runs for the Scheduler.

workers/: every change → ``WorkersChanged`` (the live workers, sorted by id, and the
offset of each one's clock from ours, learnt from its publications as they happen:
``worker.locker.fleet_clock``). running/:
a deletion that went with its worker's key → ``RunVanished`` with the run's last value
(claimed or started); both prefixes feed one ``LostRunMatcher``, hence one listener for
the two mirrors. Every run is put twice (claimed, started) and deleted once: only its
deletion matters, so its mirror asks etcd for deletions only, with their last value.
Running keys that vanished during a compaction gap cannot be told lost from ended, and
are only logged (those the last read had seen).

Shards on (``worker.shards``): every change of workers/ that changes the membership
(who serves, and this worker) is adopted and the jobs are planned again
(``on_membership``: ``JobsListener.reload``); a vanished run goes to the Scheduler only
if this worker serves its job, or, for a job that no longer exists, owns its slot:
those are the workers that would run it again, and one of them records it lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors import Address
from worker.clock import WallClock
from cluster.etcd import Etcd, EtcdError, EventType, KeyValue, PrefixSnapshot, WatchEvent
from cluster.keyspace import Keyspace
from cluster.presence import (STARTED, PresenceDecodeError, RunningInfo, WorkerInfo,
                              is_seed_registration)

from worker.locker.messages import LockerMsg, WorkersChanged
from worker.scheduler.messages import RunVanished, SchedulerMsg
from worker.shards import ShardState
from .lost_runs import LostRunMatcher

log = logging.getLogger(__name__)


class FleetListener:
    """Listens to the workers/ and running/ mirrors (``workers_*``, ``running_*``)."""

    def __init__(self, keyspace: Keyspace, worker_id: str, *, locker: Address[LockerMsg],
                 scheduler: Address[SchedulerMsg], clock: WallClock,
                 shards: ShardState | None = None, etcd: Etcd | None = None,
                 on_membership: Callable[[], Awaitable[None]] | None = None) -> None:
        """``shards``, ``etcd`` and ``on_membership``: for a sharded cluster (module doc)."""
        self._shards = shards if shards is not None else ShardState(worker_id)
        self._etcd = etcd
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
        # key → another worker's run, as of the last read of running/ (puts are not watched)
        self.running: dict[str, RunningInfo] = {}
        self.lost = LostRunMatcher()
        self.lost_runs = 0  # RunVanished sent

    # -- workers/ -----------------------------------------------------------------------

    async def workers_read(self, snapshot: PrefixSnapshot, _resumed_after: int | None) -> None:
        self.workers = {}
        for kv in snapshot.kvs:
            self._add_worker(kv)
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
        self.workers.pop(worker_id, None)
        if worker_id != self._worker_id:
            self.offsets_ms.pop(worker_id, None)
        await self._send_workers()
        for info in self.lost.worker_deleted(worker_id, event.revision, trio.current_time()):
            await self._vanished(info)

    def _add_worker(self, kv: KeyValue) -> WorkerInfo | None:
        """Record a registration; an unreadable one makes its worker ineligible."""
        worker_id = self._ks.parse_worker(kv.key)
        if worker_id is None:
            return None
        self.workers.pop(worker_id, None)
        if is_seed_registration(kv.value):  # the seed's worker: it never claims our fires
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
        if self._shards.on and (fleet := self._shards.proposed(workers)) is not None:
            self._shards.adopt(fleet)
            log.info("shards: %d workers serve now (%s); planning this worker's jobs",
                     len(fleet), ", ".join(w.worker_id for w in fleet))
            if self._on_membership is not None:
                await self._on_membership()

    # -- running/ -----------------------------------------------------------------------

    async def running_read(self, snapshot: PrefixSnapshot, resumed_after: int | None) -> None:
        fresh = {kv.key: info for kv in snapshot.kvs
                 if (info := self._running_info(kv)) is not None}
        vanished = self.running.keys() - fresh.keys()
        if resumed_after is not None and vanished:
            log.warning("%d runs of other workers ended during a compaction gap: "
                        "whether any was lost cannot be told", len(vanished))
        self.running = fresh

    async def running_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT:  # only if etcd ignored the filter: nothing to do
            return
        # Its last value tells whether it had started. Without it (etcd omits prev_kv
        # once that revision is compacted), the value of our last read may predate its
        # mark (no puts are watched): take it as started, never run anything twice.
        known = self.running.pop(event.key, None)
        if event.prev is not None:
            info = self._running_info(event.prev)
        else:
            info = known.with_state(STARTED) if known is not None else None
            log.warning("run deletion %s came without its last value%s", event.key,
                        "" if known else ": not known, ignored")
        if info is not None and self.lost.run_deleted(info, event.revision, trio.current_time()):
            await self._vanished(info)

    def _running_info(self, kv: KeyValue) -> RunningInfo | None:
        """Another worker's run under ``kv``; None for ours or an unreadable one."""
        if self._ks.parse_running(kv.key) is None:
            log.warning("ignoring %s: not a running key", kv.key)
            return None
        try:
            info = RunningInfo.from_bytes(kv.value)
        except PresenceDecodeError as err:
            log.warning("ignoring %s: %s", kv.key, err)
            return None
        return None if info.worker_id == self._worker_id else info

    async def _vanished(self, info: RunningInfo) -> None:
        if not await self._handles(info.job_name):
            return
        self.lost_runs += 1
        log.warning("run %s of job %r vanished with worker %r", info.run_id, info.job_name,
                    info.worker_id)
        await self._scheduler.tell_or_log(RunVanished(info), log)

    async def _handles(self, job_name: str) -> bool:
        """Is this worker one of those that recover a run of ``job_name`` (module doc)?"""
        shards = self._shards
        if not shards.on or job_name in shards.served:
            return True
        try:
            if self._etcd is not None and await self._etcd.get(self._ks.job(job_name)):
                return False  # its servers recover it
        except EtcdError as exc:  # better two candidates (the lost key decides) than none
            log.warning("run of %r vanished; is the job still there? %s", job_name, exc)
            return True
        return shards.owns_slot_of(job_name)
