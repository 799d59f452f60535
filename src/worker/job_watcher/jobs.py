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
for the chain index); the other jobs' specs are never kept, only the names of its own
slots' jobs that their selector keeps from it (``ShardState.excluded``: with
``served``, what tells a run request of a job served elsewhere from one of a job not
seen yet, ``ShardState.elsewhere``). The first read waits for
the cold start's cohort (``ShardState.settle``), so that workers starting together
each plan only their share from the start. When the membership changes (``reload``,
from the workers/ listener) jobs/ is read again, but only the jobs it did not plan are
parsed: those it planned and still plans (judged by their name's slot and the selector
remembered for them) are only named (``kept``: the plan keeps their entries, which the
watch has kept current); the snapshot drops the jobs other workers serve now
(``handed_over``: their runs here end as they would; it names every handed-over job
that still exists, so that one absent was deleted) and plans those gained, whose
pending run requests are then replayed (``gained``); then the worker may publish
``serving``. A re-read after a compaction parses everything again (events were
missed). Each put is parsed (puts are rare) and becomes ``JobSaved`` with ``serve``
saying whether this worker plans it; a job of another worker's slot that it starts
to plan so (a fallback of its selector) has its pending run requests replayed too
(``gained``): they came before it was its.

Memory: jobs/ and state/ are read in pages (``cluster.mirror.fold_prefix``), each page
parsed and dropped, keeping only what the worker plans; a whole-range read of 100k jobs
cost ~100 MB at once and raised the worker's RSS for good at every membership change
(DESIGN §6b "Memory"). Not parsing the kept jobs again spares the allocator a fresh
copy of every spec it plans at each membership change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

import trio

from actors import Address
from cluster.etcd import Etcd, EventType, KeyValue, WatchEvent
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire, LastFireDecodeError
from cluster.mirror import fold_prefix, read_prefix
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
        # Shards on: the jobs it handed over that still exist (the plan keeps them apart
        # from deleted ones: ``PlanTable.replace_all``), and the selectors of those it
        # plans, by which a reload judges without parsing whether it still plans one.
        self._handed: set[str] = set()
        self._selectors: dict[str, Mapping[str, str]] = {}
        self._lock = trio.Lock()  # a reload and the mirror's read or events, one at a time
        self._read_once = False
        self._etcd = etcd
        self._ks = keyspace
        self._scheduler = scheduler
        self._worker_id = worker_id  # "": catches up every job itself (``returns``)
        self.snapshots = 0  # JobsSnapshot sent: one at start-up, one per re-read
        self.invalid_specs = 0  # job values rejected (logged)

    async def load(self, _resumed_after: int | None) -> int:
        """The mirror's read (``PrefixMirror.run_loading``): jobs/ in pages, converged
        on; returns the read's revision."""
        await self._shards.settle()  # the cold start's cohort (not under the lock: the
        # fleet listener's reloads take it, and the settle waits for its events)
        async with self._lock:
            revision, _ = await self._converge(keep=False)
            self._read_once = True
        return revision

    async def reload(self) -> None:
        """The membership changed (``ShardState.adopt``): plan what it serves now. The
        jobs it planned and still plans are not parsed again (``JobsSnapshot.kept``):
        their watch events have kept the plan current since the last read."""
        async with self._lock:
            if not self._read_once:
                return  # the mirror's first read will use the new membership
            _, gained = await self._converge(keep=self._shards.on)
        if gained and self._gained is not None:
            await self._gained(gained)

    async def _converge(self, keep: bool) -> tuple[int, frozenset[str]]:
        """Read jobs/ and send one ``JobsSnapshot``; returns the read's revision and the
        jobs planned now that were not before. ``keep``: a membership change, whose
        read parses only what it did not plan (not after a compaction: events may have
        been missed, every value is read again)."""
        shards = self._shards
        before = frozenset(shards.served)
        fleet = shards.fleet  # a change while it reads: another reload follows (the lock)
        read, revision = await fold_prefix(
            self._etcd, self._ks.jobs_prefix,
            lambda: _JobsRead(self, before, frozenset(self._handed), keep))
        specs, chained = tuple(read.mine), tuple(read.chained)
        names = {spec.name for spec in specs}
        cursors, _ = await fold_prefix(self._etcd, self._ks.state_prefix,
                                       lambda: _Cursors(self._ks, names))
        workers = await read_prefix(self._etcd, self._ks.workers_prefix)
        self.snapshots += 1
        serves = ((lambda worker_id, spec: worker_id in shards.servers(spec.name, spec.selector))
                  if shards.on else None)
        elsewhere = (caught_up_elsewhere(self._ks, self._worker_id, workers.kvs,
                                         cursors.revisions, specs, serves)
                     if self._worker_id else frozenset())
        handed, kept = frozenset(), frozenset(read.kept)
        if shards.on:
            handed = frozenset(read.handed)
            self._handed = set(handed)
            self._selectors = {name: selector for name, selector in self._selectors.items()
                               if name in kept}
            self._selectors.update((spec.name, spec.selector) for spec in specs
                                   if spec.selector)
            shards.served, shards.excluded = names | kept, read.excluded
        msg = JobsSnapshot(specs, revision, cursors.last_fired, elsewhere, chained, handed,
                           kept)
        await self._scheduler.tell_or_log(msg, log)
        if shards.fleet is fleet:  # else part was read for the older one: not loaded yet
            shards.loaded()
        return revision, (frozenset(names - before) if shards.on else frozenset())

    def keeps(self, name: str) -> bool:
        """Does it still plan ``name``, planned before, under the membership now?"""
        return self._shards.plans(name, self._selectors.get(name, {}))

    def wants(self, name: str, value: bytes) -> bool:
        """Must a read parse this value? Shards off, every one; on, its own slots' and
        those that may concern it (a selector: a fallback; an ``after``: the chain
        index): the other jobs' specs are never kept."""
        shards = self._shards
        return (not shards.on or shards.owns_slot_of(name) or b'"selector"' in value
                or b'"after"' in value)

    def planned(self, spec: JobSpec) -> bool:
        return self._shards.plans(spec.name, spec.selector)

    def owns_slot_of(self, name: str) -> bool:
        return self._shards.owns_slot_of(name)

    def job_name(self, key: str) -> str | None:
        return self._ks.name_from_job_key(key)

    async def on_event(self, event: WatchEvent) -> None:
        name = self._ks.name_from_job_key(event.key)
        if name is None:
            log.warning("ignoring %s: not a job key", event.key)
            return
        async with self._lock:
            fallback = self._shards.on and name not in self._shards.served \
                and not self._shards.owns_slot_of(name)
            msg = self._change(name, event)
            await self._scheduler.tell_or_log(msg, log)
        if fallback and isinstance(msg, JobSaved) and msg.serve and self._gained is not None:
            # Planned as a fallback (its selector): run requests of it that came before
            # its put were not this worker's then (``ShardState.elsewhere``).
            await self._gained(frozenset({name}))

    def _change(self, name: str, event: WatchEvent) -> JobSaved | JobDeleted:
        spec = self.spec_of(event.kv) if event.type is EventType.PUT else None
        shards = self._shards
        shards.excluded.discard(name)
        self._selectors.pop(name, None)
        if spec is None:
            shards.served.discard(name)
            self._handed.discard(name)
            return JobDeleted(name)
        if shards.plans(spec.name, spec.selector):
            if shards.on:
                shards.served.add(name)
                self._handed.discard(name)
                if spec.selector:
                    self._selectors[name] = spec.selector
            return JobSaved(spec)
        if name in shards.served:  # the plan hands it over: not deleted
            shards.served.discard(name)
            self._handed.add(name)
        if shards.owns_slot_of(name):
            shards.excluded.add(name)
        return JobSaved(spec, serve=False)

    def spec_of(self, kv: KeyValue) -> JobSpec | None:
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


class _JobsRead:
    """What a read of jobs/ keeps, page by page (``cluster.mirror.fold_prefix``): the
    specs this worker plans, the others' chained after a job (the chain index), which
    of the jobs it planned or had handed over it does not plan now though they exist
    (``handed``), and, with ``keep``, which it planned and still plans (``kept``: not
    parsed, their specs are in the plan already)."""

    def __init__(self, listener: JobsListener, before: frozenset[str],
                 handed_before: frozenset[str], keep: bool) -> None:
        self._listener = listener
        self._before = before
        self._handed_before = handed_before
        self._keep = keep
        self.mine: list[JobSpec] = []
        self.chained: list[JobSpec] = []
        self.handed: set[str] = set()
        self.kept: set[str] = set()
        self.excluded: set[str] = set()  # ``ShardState.excluded``

    def add(self, kvs: Sequence[KeyValue]) -> None:
        listener = self._listener
        for kv in kvs:
            name = listener.job_name(kv.key)
            if name is None:
                continue
            if self._keep and name in self._before and listener.keeps(name):
                self.kept.add(name)
                continue
            spec = listener.spec_of(kv) if listener.wants(name, kv.value) else None
            if spec is not None and listener.planned(spec):
                self.mine.append(spec)
                continue
            if name in self._before or name in self._handed_before:
                self.handed.add(name)
            if spec is not None and listener.owns_slot_of(name):  # its selector rules us out
                self.excluded.add(name)
            if spec is not None and spec.after is not None:
                self.chained.append(spec)


class _Cursors:
    """Of a read of state/, the last fires and mod revisions of the jobs in ``names``
    (the others' are not this worker's to catch up)."""

    def __init__(self, ks: Keyspace, names: Collection[str]) -> None:
        self._ks = ks
        self._names = names
        self.last_fired: dict[str, int] = {}  # each job's catch-up cursor
        self.revisions: dict[str, int] = {}  # its state/ key's mod revision (``returns``)

    def add(self, kvs: Sequence[KeyValue]) -> None:
        for kv in kvs:
            name = self._ks.parse_state(kv.key)
            if name is not None and name not in self._names:
                continue
            cursor = last_fired_of(kv.value) if name is not None else None
            if name is None or cursor is None:
                log.warning("ignoring %s = %r: no last scheduled fire", kv.key, kv.value[:40])
                continue
            self.last_fired[name] = cursor
            self.revisions[name] = kv.mod_revision


def last_fired_of(value: bytes) -> int | None:
    """The catch-up cursor of a ``state/`` value (``cluster.last_fire``), or None."""
    try:
        return LastFire.from_bytes(value).cursor_ms
    except LastFireDecodeError:
        return None
