"""The JobWatcher: mirrors etcd into messages for the Scheduler, Executor and Locker.

Five loops, one per prefix (DESIGN §3, §4), all alike: read the prefix, hand over what
it holds, then watch from the read's revision + 1. The adapter resumes broken streams
by itself (no event lost or repeated); on ``WatchCompacted`` the loop re-reads the
prefix and watches on from that read, so state converges instead of drifting::

    workers/   every change → WorkersChanged (live workers, sorted by id) → Locker
    running/   a deletion that went with its worker's key → RunVanished (with the run's
               last value: claimed or started) → Scheduler; etcd sends no puts here
    jobs/      read → JobsSnapshot (+ last fired times from state/) → Scheduler;
               put → JobSaved, or JobDeleted when the spec is invalid (an invalid
               spec must not keep running its older version); delete → JobDeleted
    killer/    put → KillRun → Executor (keys present at start-up are old news:
               they concern runs that began before this worker)
    trigger/   create → TriggerRequested → Scheduler, keys present at start-up
               included (a run-now asked while no worker watched is not lost)

Start-up: the loops start in that order, each once its first read is delivered, and
``started()`` fires after the last: a started worker has its plan table loaded, its
Locker already knew the fleet, and triggers found their jobs.

Lost runs: when a worker's lease expires etcd deletes its ``workers/<id>`` key and its
``running/…`` keys in one revision R. Another worker's run deleted at R is therefore
lost iff that worker's key was deleted at R too: a run that ends deletes its key at a
revision of its own while its worker lives, and a graceful shutdown deletes the
running keys of the runs it recorded before revoking the lease (it leaves only those
it left for another worker to run, still ``claimed``). The two deletions arrive on different streams
in either order; ``LostRunMatcher`` keeps each side a while for the other.

After a compaction, kill keys written and trigger keys created in the gap are still
delivered (their revisions tell); running keys that vanished in the gap cannot be
told lost from ended, and are only logged (those the last read had seen).

Mailbox-full policy: every send awaits (``Address.tell``). A full peer stalls that
watch loop, which then stops pulling from etcd (the adapter reads a stream only when
asked, so etcd holds the rest): backpressure, never a drop. A peer that stopped
during a shutdown (``tell`` answers False) is skipped. The JobWatcher's own
inbox carries no messages (``JobWatcherMsg`` is empty): sealing it stops the loops.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import trio

from actors import Actor, Address, Inbox
from cluster.backoff import Backoff
from cluster.etcd import (
    Etcd,
    EtcdUnavailable,
    EventType,
    KeyValue,
    PrefixSnapshot,
    WatchCompacted,
    WatchEvent,
)
from cluster.keyspace import KillValueError, parse_kill_value
from cluster.presence import STARTED, PresenceDecodeError, RunningInfo, WorkerInfo
from cluster.spec import JobSpec, SpecError
from cluster.store import RunStatus

from worker.executor.messages import KillRun
from worker.locker.messages import WorkersChanged
from worker.scheduler.messages import (
    JobDeleted,
    JobSaved,
    JobsSnapshot,
    RunVanished,
    TriggerRequested,
)
from .messages import JobWatcherMsg

if TYPE_CHECKING:
    from worker.context import WorkerContext

log = logging.getLogger(__name__)

LOST_MATCH_WINDOW_S = 10.0  # how long one half of a lost run waits for the other
READ_RETRY_S = 0.1  # first wait before re-reading a prefix while etcd is down
READ_RETRY_MAX_S = 5.0
_DECIMAL_MS = re.compile(rb"\s*\d{1,16}\s*")

M = TypeVar("M")
# A loop's handlers: the read (with the last revision handed over before it, None at
# start-up) and one watched change.
OnRead = Callable[[PrefixSnapshot, "int | None"], Awaitable[None]]
OnEvent = Callable[[WatchEvent], Awaitable[None]]


class LostRunMatcher:
    """Pairs deletions of running keys with deletions of worker keys at one revision.

    Synchronous, and ``now`` (trio clock) is passed in, so it can be tested alone.
    Each side waits ``window_s`` for the other, then is forgotten. A worker's deletion
    stays until it expires, because all of its runs share its revision and may come
    after it; a run's deletion leaves once matched, so each run is reported once.
    """

    def __init__(self, window_s: float = LOST_MATCH_WINDOW_S) -> None:
        self._window_s = window_s
        # Invariant: insertion order is time order (now never decreases), so expiry
        # pops from the front.
        self._runs: dict[int, tuple[float, list[RunningInfo]]] = {}  # revision → (seen, runs)
        self._workers: dict[tuple[str, int], float] = {}  # (worker id, revision) → seen

    def run_deleted(self, info: RunningInfo, revision: int, now: float) -> bool:
        """True if the run is lost: its worker's key went at the same revision."""
        self._expire(now)
        if (info.worker_id, revision) in self._workers:
            return True
        self._runs.setdefault(revision, (now, []))[1].append(info)
        return False

    def worker_deleted(self, worker_id: str, revision: int, now: float) -> list[RunningInfo]:
        """The runs already seen deleted at ``revision`` with this worker: all lost."""
        self._expire(now)
        self._workers[(worker_id, revision)] = now
        seen, runs = self._runs.get(revision, (now, []))
        lost = [run for run in runs if run.worker_id == worker_id]
        rest = [run for run in runs if run.worker_id != worker_id]
        if rest:
            self._runs[revision] = (seen, rest)  # keeps its place in the order
        else:
            self._runs.pop(revision, None)
        return lost

    def pending(self) -> int:
        """Deletions waiting for their other half."""
        return sum(len(runs) for _, runs in self._runs.values()) + len(self._workers)

    def _expire(self, now: float) -> None:
        horizon = now - self._window_s
        while self._runs and next(iter(self._runs.values()))[0] <= horizon:
            del self._runs[next(iter(self._runs))]
        while self._workers and next(iter(self._workers.values())) <= horizon:
            del self._workers[next(iter(self._workers))]


@dataclass(frozen=True, slots=True)
class JobWatcherStatistics:
    jobs_snapshots: int  # JobsSnapshot sent: one at start-up, one per jobs/ compaction
    compactions: int  # watches (any prefix) that had to re-read
    invalid_specs: int  # job values rejected (logged)
    lost_runs: int  # RunVanished sent
    workers: int
    running: int  # other workers' runs seen at the last read of running/, minus deletions
    pending_lost: int


class JobWatcher(Actor[JobWatcherMsg]):
    def __init__(self, inbox: Inbox[JobWatcherMsg], ctx: WorkerContext, etcd: Etcd) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._etcd = etcd
        self._ks = ctx.keyspace
        self._workers: dict[str, WorkerInfo] = {}
        # key → another worker's run, as of the last read of running/ (puts are not watched)
        self._running: dict[str, RunningInfo] = {}
        self._lost = LostRunMatcher()
        self._counts = {"jobs_snapshots": 0, "compactions": 0, "invalid_specs": 0,
                        "lost_runs": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        ks = self._ks
        loops: list[tuple[str, OnRead, OnEvent, bool]] = [  # (…, deletions only)
            (ks.workers_prefix, self._workers_read, self._worker_event, False),
            # Every run is put twice (claimed, started) and deleted once: only its
            # deletion matters here, with its last value (prev_kv), so etcd sends no puts.
            (ks.running_prefix(), self._running_read, self._running_event, True),
            (ks.jobs_prefix, self._jobs_read, self._job_event, False),
            (ks.killer_prefix, self._kills_read, self._kill_event, False),
            (ks.trigger_prefix, self._triggers_read, self._trigger_event, False),
        ]
        async with trio.open_nursery() as nursery:
            for prefix, on_read, on_event, deletions in loops:
                await nursery.start(functools.partial(
                    self._follow, prefix, on_read, on_event, deletions_only=deletions))
            task_status.started()
            await self.serve()  # returns once the inbox is sealed: the graceful stop
            nursery.cancel_scope.cancel()

    async def handle(self, msg: JobWatcherMsg) -> None:
        log.warning("job watcher: unexpected message %r ignored", msg)

    def statistics_detail(self) -> JobWatcherStatistics:
        return JobWatcherStatistics(**self._counts, workers=len(self._workers),
                                    running=len(self._running), pending_lost=self._lost.pending())

    # -- the loop every prefix runs ---------------------------------------------------

    async def _follow(self, prefix: str, on_read: OnRead, on_event: OnEvent, *,
                      deletions_only: bool,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        snapshot = await self._read(prefix)
        await on_read(snapshot, None)
        task_status.started()
        handed_over = snapshot.revision  # every change up to here went to the peers
        while True:
            try:
                async with self._etcd.watch_prefix(prefix, start_revision=handed_over + 1,
                                                   prev_kv=deletions_only,
                                                   no_put=deletions_only) as events:
                    async for event in events:
                        await on_event(event)
                        handed_over = event.revision
            except WatchCompacted as exc:
                self._counts["compactions"] += 1
                log.warning("watch of %s lost its history (%s): re-reading", prefix, exc)
                snapshot = await self._read(prefix)
                await on_read(snapshot, handed_over)
                handed_over = snapshot.revision

    async def _read(self, prefix: str) -> PrefixSnapshot:
        """A prefix read, retried with backoff while etcd is unreachable."""
        backoff = Backoff(READ_RETRY_S, READ_RETRY_MAX_S)
        while True:
            try:
                return await self._etcd.get_prefix(prefix)
            except EtcdUnavailable as exc:
                delay_s = backoff.failed()
                log.warning("reading %s: %s; retrying in %.1f s", prefix, exc, delay_s)
            await trio.sleep(delay_s)

    async def _send(self, address: Address[M], msg: M) -> None:
        if not await address.tell(msg):
            log.debug("%s has stopped: %s not delivered", address.name, type(msg).__name__)

    # -- jobs/ --------------------------------------------------------------------------

    async def _jobs_read(self, snapshot: PrefixSnapshot, _handed_over: int | None) -> None:
        state = await self._read(self._ks.state_prefix)
        specs = tuple(spec for kv in snapshot.kvs if (spec := self._spec(kv)) is not None)
        self._counts["jobs_snapshots"] += 1
        await self._send(self._ctx.peers.scheduler,
                         JobsSnapshot(specs, snapshot.revision, self._last_fired(state)))

    async def _job_event(self, event: WatchEvent) -> None:
        name = self._ks.name_from_job_key(event.key)
        if name is None:
            log.warning("ignoring %s: not a job key", event.key)
            return
        spec = self._spec(event.kv) if event.type is EventType.PUT else None
        msg = JobDeleted(name) if spec is None else JobSaved(spec)
        await self._send(self._ctx.peers.scheduler, msg)

    def _spec(self, kv: KeyValue) -> JobSpec | None:
        """The valid spec under a job key, else None (logged: operators must see it)."""
        name = self._ks.name_from_job_key(kv.key)
        if name is None:
            log.warning("ignoring %s: not a job key", kv.key)
            return None
        try:
            spec = JobSpec.from_json(kv.value)
        except SpecError as err:
            return self._reject(name, str(err))
        except Exception as exc:  # one poisoned value must not take every worker down
            log.exception("job %r: validating its spec crashed", name)
            return self._reject(name, f"validation crashed: {exc!r}")
        if spec.name != name:
            return self._reject(name, f"name: {spec.name!r} differs from its key")
        return spec

    def _reject(self, name: str, reason: str) -> None:
        self._counts["invalid_specs"] += 1
        log.warning("job %r has an invalid spec, not scheduled: %s", name, reason)

    def _last_fired(self, state: PrefixSnapshot) -> dict[str, int]:
        last: dict[str, int] = {}
        for kv in state.kvs:
            name = self._ks.parse_state(kv.key)
            if name is None or not _DECIMAL_MS.fullmatch(kv.value):
                log.warning("ignoring %s = %r: not a last fire time in ms", kv.key, kv.value[:40])
                continue
            last[name] = int(kv.value)
        return last

    # -- killer/ and trigger/ -----------------------------------------------------------

    async def _kills_read(self, snapshot: PrefixSnapshot, handed_over: int | None) -> None:
        if handed_over is None:
            return  # start-up: these concern runs that began before this worker
        for kv in snapshot.kvs:
            if kv.mod_revision > handed_over:  # written during the compaction gap
                await self._kill(kv)

    async def _kill_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT:
            await self._kill(event.kv)

    async def _kill(self, kv: KeyValue) -> None:
        name = self._ks.parse_killer(kv.key)
        if name is None:
            log.warning("ignoring %s: not a kill key", kv.key)
            return
        try:
            request = parse_kill_value(kv.value)
        except KillValueError as err:
            log.warning("job %r: ignoring kill request: %s", name, err)
            return
        await self._send(self._ctx.peers.executor,
                         KillRun(name, request.run_id, RunStatus.KILLED, "kill requested"))

    async def _triggers_read(self, snapshot: PrefixSnapshot, handed_over: int | None) -> None:
        for kv in snapshot.kvs:
            if handed_over is None or kv.create_revision > handed_over:
                await self._trigger(kv)

    async def _trigger_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT and event.kv.version == 1:  # created, not rewritten
            await self._trigger(event.kv)

    async def _trigger(self, kv: KeyValue) -> None:
        parsed = self._ks.parse_trigger(kv.key)
        if parsed is None:
            log.warning("ignoring %s: not a trigger key", kv.key)
            return
        name, run_id = parsed
        await self._send(self._ctx.peers.scheduler,
                         TriggerRequested(name, run_id, self._ctx.clock.now_ms()))

    # -- workers/ -----------------------------------------------------------------------

    async def _workers_read(self, snapshot: PrefixSnapshot, _handed_over: int | None) -> None:
        self._workers = {}
        for kv in snapshot.kvs:
            self._add_worker(kv)
        await self._send_workers()

    async def _worker_event(self, event: WatchEvent) -> None:
        worker_id = self._ks.parse_worker(event.key)
        if worker_id is None:
            log.warning("ignoring %s: not a worker key", event.key)
            return
        if event.type is EventType.PUT:
            self._add_worker(event.kv)
            await self._send_workers()
            return
        self._workers.pop(worker_id, None)
        await self._send_workers()
        for info in self._lost.worker_deleted(worker_id, event.revision, trio.current_time()):
            await self._vanished(info)

    def _add_worker(self, kv: KeyValue) -> None:
        """Record a registration; an unreadable one makes its worker ineligible."""
        worker_id = self._ks.parse_worker(kv.key)
        if worker_id is None:
            return
        self._workers.pop(worker_id, None)
        try:
            info = WorkerInfo.from_bytes(kv.value)
        except PresenceDecodeError as err:
            log.warning("worker %r is ignored: %s", worker_id, err)
            return
        if info.worker_id != worker_id:
            log.warning("worker key %r holds worker %r: ignored", worker_id, info.worker_id)
            return
        self._workers[worker_id] = info

    async def _send_workers(self) -> None:
        workers = tuple(sorted(self._workers.values(), key=lambda w: w.worker_id))
        await self._send(self._ctx.peers.locker, WorkersChanged(workers))

    # -- running/ -----------------------------------------------------------------------

    async def _running_read(self, snapshot: PrefixSnapshot, handed_over: int | None) -> None:
        fresh = {kv.key: info for kv in snapshot.kvs
                 if (info := self._running_info(kv)) is not None}
        vanished = self._running.keys() - fresh.keys()
        if handed_over is not None and vanished:
            log.warning("%d runs of other workers ended during a compaction gap: "
                        "whether any was lost cannot be told", len(vanished))
        self._running = fresh

    async def _running_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT:  # only if etcd ignored the filter: nothing to do
            return
        # Its last value tells whether it had started. Without it (etcd omits prev_kv
        # once that revision is compacted), the value of our last read may predate its
        # mark (no puts are watched): take it as started, never run anything twice.
        known = self._running.pop(event.key, None)
        if event.prev is not None:
            info = self._running_info(event.prev)
        else:
            info = known.with_state(STARTED) if known is not None else None
            log.warning("run deletion %s came without its last value%s", event.key,
                        "" if known else ": not known, ignored")
        if info is not None and self._lost.run_deleted(info, event.revision, trio.current_time()):
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
        return None if info.worker_id == self._ctx.worker_id else info

    async def _vanished(self, info: RunningInfo) -> None:
        self._counts["lost_runs"] += 1
        log.warning("run %s of job %r vanished with worker %r", info.run_id, info.job_name,
                    info.worker_id)
        await self._send(self._ctx.peers.scheduler, RunVanished(info))
