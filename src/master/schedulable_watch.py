"""The SchedulableWatch: where the master notices that no live worker can run a job,
and says so once per transition.

It mirrors ``jobs/`` and ``workers/`` (two ``PrefixMirror``s: read, watch, read again)
and feeds each job's state (``schedulable.no_worker_reason`` over the live workers'
labels) to a ``SchedulableTracker``. Each change that has held ``settle_s`` is
announced, in this one place (``_announce``), in three ways:

- a log line: ``job 'x' is unschedulable: no live worker has zone=b`` (warning) or
  ``job 'x' is schedulable again`` (info);
- the metrics ``scheduler_master_jobs_unschedulable`` (gauge) and
  ``scheduler_master_schedulable_changes_total{to="unschedulable"|"schedulable"}``;
- the hook ``on_change(SchedulableChanged)`` given to the actor (``app.build_tree``'s
  ``on_schedulable_changed``): the alerts raise and clear the ``unschedulable`` alert
  there. It is awaited in this actor's task; one that raises is logged and the change
  stays announced (a hook that must not lose an alert writes it durably first).

The open spells are kept in etcd (``unschedulable/<name>``, ``schedulable.Spell``; this
actor is their only writer): put after the hook of a job turning unschedulable,
deleted when it is schedulable again or deleted. At start they are read (retried until
etcd answers) before anything is announced, so that a restarted master goes on with a
spell rather than announcing (and alerting) it again; a spell of a job deleted
meanwhile is closed. The put comes after the hook, and only if the hook returned: a
master that dies between the two, or whose hook failed (the alert not queued: the
store down), announces the spell again after a restart, with a new start: an alert
twice rather than never. A write etcd refuses is logged; the spell then lives in
memory only.

Its ``jobs/`` mirror is the master's one watch of that range: it also feeds the
JobManager's ``JobCache`` (``jobs_cache``), which the jobs list answers from; the cache
is told first, before anything here can await.

Cost: a worker republishes its info every few seconds; the jobs are looked at again
only when the set of live workers' labels changes, and a job alone when it changes.
Nothing is announced before both ranges and the open spells have been read. The actor takes no messages
(its inbox only stops it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

import trio

from actors import Actor, Inbox
from cluster.etcd import Etcd, EtcdError, EventType, PrefixSnapshot, WatchEvent
from cluster.mirror import PrefixMirror, read_prefix
from cluster.presence import PresenceDecodeError, WorkerInfo
from cluster.spec import JobSpec, SpecError

from .context import MasterContext
from .job_cache import JobCache
from .messages import SchedulableWatchMsg
from .schedulable import SchedulableChanged, SchedulableTracker, Spell, no_worker_reason

__all__ = ["OnSchedulableChanged", "SchedulableWatch", "SETTLE_S"]

log = logging.getLogger(__name__)

SETTLE_S = 5.0  # a state must hold this long to be announced (a worker's restart does not)
IDLE_WAKE_S = 60.0

T = TypeVar("T")
OnSchedulableChanged = Callable[[SchedulableChanged], Awaitable[None]]
Selector = tuple[tuple[str, str], ...]


class SchedulableWatch(Actor[SchedulableWatchMsg]):
    def __init__(self, inbox: Inbox[SchedulableWatchMsg], ctx: MasterContext, etcd: Etcd, *,
                 on_change: OnSchedulableChanged | None = None,
                 settle_s: float = SETTLE_S, jobs_cache: JobCache | None = None) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._etcd = etcd
        self._on_change = on_change
        self._tracker = SchedulableTracker(round(settle_s * 1000))
        self._jobs_mirror = PrefixMirror(etcd, ctx.keyspace.jobs_prefix)
        self._cache = jobs_cache
        if jobs_cache is not None:
            jobs_cache.follow(self._jobs_mirror)
        self._workers_mirror = PrefixMirror(etcd, ctx.keyspace.workers_prefix)
        self._jobs: dict[str, tuple[Selector, bool]] = {}  # name -> (selector, paused)
        self._workers: dict[str, Mapping[str, str]] = {}  # worker id -> labels
        self._fleet: frozenset[Selector] = frozenset()  # the distinct label sets
        self._read = {"jobs": False, "workers": False, "spells": False}
        self._closing: set[str] = set()  # deleted jobs whose open spell is to delete
        self._changed = trio.Event()
        ctx.metrics.jobs_unschedulable.set(0)

    def background(self) -> Iterable[Callable[[], Awaitable[None]]]:
        return (lambda: self._jobs_mirror.run(self._load_jobs, self._job_event),
                lambda: self._workers_mirror.run(self._load_workers, self._worker_event),
                self._restore_then_announce)

    async def handle(self, msg: SchedulableWatchMsg) -> None:
        pass  # nothing is sent to it

    # -- the two ranges ---------------------------------------------------------------

    async def _load_jobs(self, snapshot: PrefixSnapshot, _after: int | None) -> None:
        if self._cache is not None:
            self._cache.load(snapshot)
        jobs = _decoded(snapshot, self._ctx.keyspace.name_from_job_key, _job)
        for gone in self._jobs.keys() - jobs.keys():
            self._forget(gone)
        self._jobs = jobs
        self._read["jobs"] = True
        self._observe_all()

    async def _job_event(self, event: WatchEvent) -> None:
        if self._cache is not None:
            self._cache.apply(event)
        name = _apply(event, self._ctx.keyspace.name_from_job_key, _job, self._jobs)
        if name is not None and name in self._jobs:
            self._observe(name)
        elif name is not None:
            self._forget(name)

    def _forget(self, name: str) -> None:
        """A deleted job: nothing more to say about it (no alert clears by itself); its
        open spell is closed (a job of that name made later starts a spell of its own)."""
        if self._tracker.is_announced(name):
            self._closing.add(name)
            self._changed.set()
        self._tracker.forget(name)
        self._ctx.metrics.jobs_unschedulable.set(self._tracker.unschedulable)

    async def _load_workers(self, snapshot: PrefixSnapshot, _after: int | None) -> None:
        self._workers = _decoded(snapshot, self._ctx.keyspace.parse_worker, _labels)
        self._read["workers"] = True
        self._fleet_changed(force=True)

    async def _worker_event(self, event: WatchEvent) -> None:
        if _apply(event, self._ctx.keyspace.parse_worker, _labels, self._workers) is not None:
            self._fleet_changed()

    def _fleet_changed(self, *, force: bool = False) -> None:
        fleet = frozenset(tuple(sorted(labels.items())) for labels in self._workers.values())
        if fleet != self._fleet or force:
            self._fleet = fleet
            self._observe_all()

    # -- states and transitions ---------------------------------------------------------

    def _observe_all(self) -> None:
        if not all(self._read.values()):
            return
        for name in self._tracker.announced() - self._jobs.keys():
            self._forget(name)  # a spell restored for a job deleted meanwhile
        for name in self._jobs:
            self._observe(name)

    def _observe(self, name: str) -> None:
        if not all(self._read.values()):
            return
        selector, paused = self._jobs[name]
        fleet = [dict(labels) for labels in self._fleet]
        reason = None if paused else no_worker_reason(dict(selector), fleet)
        self._tracker.observe(name, reason, self._ctx.clock())
        self._changed.set()

    async def _restore_then_announce(self) -> None:
        """The spells a master before this one left open, then the announcements."""
        ks = self._ctx.keyspace
        snapshot = await read_prefix(self._etcd, ks.unschedulable_prefix)
        for kv in snapshot.kvs:
            name = ks.parse_unschedulable(kv.key)
            spell = None if name is None else Spell.from_bytes(kv.value)
            if spell is not None:
                self._tracker.restore(name, spell.reason)
                log.info("job %r is still unschedulable (since %d): %s", name,
                         spell.since_ms, spell.reason)
            elif name is not None:
                log.warning("unschedulable/%s in etcd is not a spell: closed", name)
                self._closing.add(name)
        self._ctx.metrics.jobs_unschedulable.set(self._tracker.unschedulable)
        self._read["spells"] = True
        self._observe_all()
        self._changed.set()  # the spells not read as spells are closed at once
        await self._announcer()

    async def _announcer(self) -> None:
        while True:
            due_ms = self._tracker.next_due_ms()
            wait_s = IDLE_WAKE_S if due_ms is None else max(0.0, (due_ms - self._ctx.clock()) / 1000)
            with trio.move_on_after(wait_s):
                await self._changed.wait()
            self._changed = trio.Event()
            while self._closing:
                await self._keep(self._closing.pop(), None)
            for change in self._tracker.due(self._ctx.clock()):
                await self._announce(change)

    async def _announce(self, change: SchedulableChanged) -> None:
        """THE place a job's schedulability changes: log, metrics, hook (alerts)."""
        metrics = self._ctx.metrics
        if change.schedulable:
            log.info("job %r is schedulable again: a live worker matches its selector",
                     change.job)
        else:
            log.warning("job %r is unschedulable: %s", change.job, change.reason)
        metrics.schedulable_changes.labels(
            "schedulable" if change.schedulable else "unschedulable").inc()
        metrics.jobs_unschedulable.set(self._tracker.unschedulable)
        hooked = True
        if self._on_change is not None:
            try:
                await self._on_change(change)
            except Exception:
                hooked = False
                log.exception("the schedulable-change hook failed for job %r", change.job)
        if change.schedulable:
            await self._keep(change.job, None)
        elif hooked:  # else a restarted master announces it again: its alert is retried
            await self._keep(change.job, Spell(change.since_ms, change.reason or ""))

    async def _keep(self, name: str, spell: Spell | None) -> None:
        """The job's open spell into etcd (None: closed, its key deleted)."""
        key = self._ctx.keyspace.unschedulable(name)
        try:
            if spell is None:
                await self._etcd.delete(key)
            else:
                await self._etcd.put(key, spell.to_bytes())
        except EtcdError as exc:
            log.warning("the unschedulable spell of job %r is not %s in etcd (%s)", name,
                        "deleted" if spell is None else "kept", exc)


def _decoded(snapshot: PrefixSnapshot, parse: Callable[[str], str | None],
             decode: Callable[[bytes], T | None]) -> dict[str, T]:
    """Every key of the range that parses, with its value if it decodes."""
    out: dict[str, T] = {}
    for kv in snapshot.kvs:
        key = parse(kv.key)
        value = None if key is None else decode(kv.value)
        if key is not None and value is not None:
            out[key] = value
    return out


def _apply(event: WatchEvent, parse: Callable[[str], str | None],
           decode: Callable[[bytes], T | None], table: dict[str, T]) -> str | None:
    """One change of the range into ``table`` (a value that does not decode removes
    its key); the key it was about, None if it was none of ours."""
    key = parse(event.key)
    if key is None:
        return None
    value = None if event.type is EventType.DELETE else decode(event.value)
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
    return key


def _job(value: bytes) -> tuple[Selector, bool] | None:
    try:
        spec = JobSpec.from_json(value)
    except SpecError:
        return None  # the JobManager logs invalid jobs; they are not listed either
    return tuple(sorted(spec.selector.items())), spec.paused


def _labels(value: bytes) -> Mapping[str, str] | None:
    try:
        return WorkerInfo.from_bytes(value).labels
    except PresenceDecodeError:
        return None
