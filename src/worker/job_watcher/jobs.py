"""jobs/ → the Scheduler's plan table: a full snapshot per read, one message per change.

A read (start-up, or after the watch's history was compacted away) becomes a
``JobsSnapshot``, with the last fired times read from state/ beside it (and the jobs
whose outage a worker back before this one catches up, ``returns``), so the table
converges on etcd instead of drifting. A put becomes ``JobSaved``, or ``JobDeleted`` when
the spec is invalid (an invalid spec must not keep running its older version); a
deletion becomes ``JobDeleted``. Invalid specs are logged (operators must see them) and
counted.

Shards on (``worker.shards``): only the jobs this worker serves are planned. A read
parses only the values that may concern it (its own slots' jobs, and the others'
whose bytes name a selector, by which it may serve one as a fallback, or an ``after``,
for the chain index); the other jobs' specs are never kept. When the membership
changes (``reload``, from the workers/ listener) jobs/ is read again: the snapshot
drops the jobs other workers serve now (``handed_over``: their runs here end as they
would) and plans those gained, whose pending run requests are then replayed
(``gained``); then the worker may publish ``serving``. Each put is parsed (puts are
rare) and becomes ``JobSaved`` with ``serve`` saying whether this worker plans it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors import Address
from cluster.etcd import Etcd, EventType, KeyValue, PrefixSnapshot, WatchEvent
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire, LastFireDecodeError
from cluster.mirror import read_prefix
from cluster.spec import JobSpec, SpecError

from worker.scheduler.messages import JobDeleted, JobSaved, JobsSnapshot, SchedulerMsg
from worker.shards import ShardState
from .returns import caught_up_elsewhere

log = logging.getLogger(__name__)


class JobsListener:
    """The jobs/ mirror's listener; ``scheduler`` receives what it makes of it."""

    def __init__(self, etcd: Etcd, keyspace: Keyspace, scheduler: Address[SchedulerMsg],
                 worker_id: str = "", shards: ShardState | None = None,
                 gained: Callable[[frozenset[str]], Awaitable[None]] | None = None) -> None:
        """``shards``: the worker's (inert when off); ``gained``: replays the pending run
        requests of jobs this worker serves from now on."""
        self._shards = shards if shards is not None else ShardState(worker_id)
        self._gained = gained
        self._lock = trio.Lock()  # a reload and the mirror's read or events, one at a time
        self._read_once = False
        self._etcd = etcd
        self._ks = keyspace
        self._scheduler = scheduler
        self._worker_id = worker_id  # "": catches up every job itself (``returns``)
        self.snapshots = 0  # JobsSnapshot sent: one at start-up, one per re-read
        self.invalid_specs = 0  # job values rejected (logged)

    async def on_read(self, snapshot: PrefixSnapshot, _resumed_after: int | None) -> None:
        async with self._lock:
            await self._converge(snapshot)
            self._read_once = True

    async def reload(self) -> None:
        """The membership changed (``ShardState.adopt``): plan what it serves now."""
        async with self._lock:
            if not self._read_once:
                return  # the mirror's first read will use the new membership
            gained = await self._converge(await read_prefix(self._etcd, self._ks.jobs_prefix))
        if gained and self._gained is not None:
            await self._gained(gained)

    async def _converge(self, snapshot: PrefixSnapshot) -> frozenset[str]:
        """One ``JobsSnapshot``; returns the jobs planned now that were not before."""
        state = await read_prefix(self._etcd, self._ks.state_prefix)
        workers = await read_prefix(self._etcd, self._ks.workers_prefix)
        shards = self._shards
        specs, chained = self._split(snapshot)
        self.snapshots += 1
        revisions = {name: kv.mod_revision for kv in state.kvs
                     if (name := self._ks.parse_state(kv.key)) is not None}
        elsewhere = (caught_up_elsewhere(self._ks, self._worker_id, workers.kvs, revisions, specs)
                     if self._worker_id else frozenset())
        names = {spec.name for spec in specs}
        before = shards.served
        handed = frozenset()
        if shards.on:
            existing = {self._ks.name_from_job_key(kv.key) for kv in snapshot.kvs}
            handed = frozenset((before - names) & existing)
            shards.served = names
        msg = JobsSnapshot(specs, snapshot.revision, self._last_fired(state), elsewhere,
                           chained, handed)
        await self._scheduler.tell_or_log(msg, log)
        shards.loaded()
        return frozenset(names - before) if shards.on else frozenset()

    def _split(self, snapshot: PrefixSnapshot) -> tuple[tuple[JobSpec, ...], tuple[JobSpec, ...]]:
        """(the specs this worker plans, the others' that are chained after a job)."""
        shards = self._shards
        if not shards.on:
            return tuple(spec for kv in snapshot.kvs if (spec := self._spec(kv)) is not None), ()
        mine: list[JobSpec] = []
        chained: list[JobSpec] = []
        for kv in snapshot.kvs:
            name = self._ks.name_from_job_key(kv.key)
            if name is None:
                continue
            if not (shards.owns_slot_of(name) or b'"selector"' in kv.value
                    or b'"after"' in kv.value):
                continue  # not its slot, no fallback, no chain: never parsed
            spec = self._spec(kv)
            if spec is None:
                continue
            if shards.plans(spec.name, spec.selector):
                mine.append(spec)
            elif spec.after is not None:
                chained.append(spec)
        return tuple(mine), tuple(chained)

    async def on_event(self, event: WatchEvent) -> None:
        name = self._ks.name_from_job_key(event.key)
        if name is None:
            log.warning("ignoring %s: not a job key", event.key)
            return
        async with self._lock:
            await self._scheduler.tell_or_log(self._change(name, event), log)

    def _change(self, name: str, event: WatchEvent) -> JobSaved | JobDeleted:
        spec = self._spec(event.kv) if event.type is EventType.PUT else None
        shards = self._shards
        if spec is None:
            shards.served.discard(name)
            return JobDeleted(name)
        if shards.plans(spec.name, spec.selector):
            if shards.on:
                shards.served.add(name)
            return JobSaved(spec)
        shards.served.discard(name)
        return JobSaved(spec, serve=False)

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
        self.invalid_specs += 1
        log.warning("job %r has an invalid spec, not scheduled: %s", name, reason)

    def _last_fired(self, state: PrefixSnapshot) -> dict[str, int]:
        """Each job's catch-up cursor: its latest scheduled time claimed."""
        last: dict[str, int] = {}
        for kv in state.kvs:
            name = self._ks.parse_state(kv.key)
            cursor = last_fired_of(kv.value) if name is not None else None
            if name is None or cursor is None:
                log.warning("ignoring %s = %r: no last scheduled fire", kv.key, kv.value[:40])
                continue
            last[name] = cursor
        return last


def last_fired_of(value: bytes) -> int | None:
    """The catch-up cursor of a ``state/`` value (``cluster.last_fire``), or None."""
    try:
        return LastFire.from_bytes(value).cursor_ms
    except LastFireDecodeError:
        return None
