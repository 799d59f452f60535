"""The JobCache: every job under ``jobs/``, decoded once, kept current by a watch, so
that a jobs list (``GET /api/v1/jobs``, a page of it, the dashboard's counts, a job's
``downstream``) answers from memory instead of reading and decoding 10,000 jobs.

Why: the range of 10,000 jobs took ~150-260 ms per page request (BENCHMARKS.md "The
jobs page with 10,000 jobs"), most of it the transfer and the decoding, every time.

Fed by the SchedulableWatch's ``jobs/`` mirror (``cluster.mirror.PrefixMirror``: read,
watch, read again when history is lost), the one watch of that range in the master:
``load`` gets each whole read, ``apply`` each change. A re-read (compaction, a watch
etcd refused, the actor restarted) replaces everything: the cache converges on it.

The consistency rule: an answer is never older than the request. ``current`` asks
etcd for the range's ``PrefixStamp`` (its key count and newest ``mod_revision``: one
key, no value, a millisecond) and answers from memory only once the cache shows the
same figures (any put after the cache's state raises the newest revision, a deletion
alone lowers the count, so equal figures mean nothing changed) or has seen a revision
at least as new as the stamp's, and holds whole transactions (the mirror is
``settled``); it waits for the watch up to FRESH_WAIT_S for that.
So a PUT or DELETE, the master's own or anybody's straight into etcd, acknowledged
before a list began is in that list. While the mirror is not following etcd (not read
yet, its watch broken and not back), or when the watch is behind for longer than the
wait, ``current`` answers None and the caller reads the range itself, as before.

Used only in the trio thread; ``apply`` and ``load`` never block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

from cluster.etcd import EventType, KeyValue, PrefixSnapshot, PrefixStamp, WatchEvent
from cluster.keyspace import Keyspace
from cluster.mirror import PrefixMirror
from cluster.spec import JobSpec

from .chains import downstream_map
from .stored_jobs import StoredJob

__all__ = ["CachedJobs", "FRESH_WAIT_S", "JobCache", "JobCacheStatistics"]

log = logging.getLogger(__name__)

FRESH_WAIT_S: Final = 0.5  # a watch this far behind etcd: read the range instead


@dataclass(frozen=True, slots=True)
class CachedJobs:
    """The valid jobs at one state of the cache, sorted by name, with who runs after
    whom (``chains.downstream_map``); built once per state, shared by the requests."""

    specs: list[JobSpec]
    downstream: dict[str, tuple[JobSpec, ...]]


@dataclass(frozen=True, slots=True)
class JobCacheStatistics:
    keys: int
    revision: int  # the newest change applied (or the last whole read's revision)
    synced: bool
    loads: int  # whole reads applied
    hits: int  # lists answered from memory
    misses: int  # lists that read the range (not synced, or the watch behind)


class JobCache:
    """See the module docstring. ``report`` is told each invalid stored job once per
    version decoded (the JobDecoder's log-once)."""

    def __init__(self, keyspace: Keyspace,
                 report: Callable[[StoredJob], None] | None = None) -> None:
        self._ks = keyspace
        self._report = report
        self._mirror: PrefixMirror | None = None
        self._loaded = False
        self._mods: dict[str, int] = {}  # every key under jobs/ -> its mod_revision
        self._newest = 0  # max(self._mods.values()), 0 when empty
        self._jobs: dict[str, StoredJob] = {}  # job name -> what is stored
        self._revision = 0
        self._changed = trio.Event()
        self._view: CachedJobs | None = None  # of the current state, made on demand
        self._loads = self._hits = self._misses = 0

    # -- fed by the mirror ----------------------------------------------------------

    def follow(self, mirror: PrefixMirror) -> None:
        """``mirror`` feeds the cache from now on (its first ``load`` makes it usable)."""
        self._mirror = mirror
        self._loaded = False

    def load(self, snapshot: PrefixSnapshot) -> None:
        """A whole read of ``jobs/``: the cache becomes exactly it."""
        mods: dict[str, int] = {}
        jobs: dict[str, StoredJob] = {}
        for kv in snapshot.kvs:
            mods[kv.key] = kv.mod_revision
            name = self._ks.name_from_job_key(kv.key)
            if name is None:
                continue
            old = self._jobs.get(name)
            jobs[name] = old if old is not None and old.kv.mod_revision == kv.mod_revision \
                else self._decoded(name, kv)
        self._mods, self._jobs = mods, jobs
        self._newest = max(mods.values(), default=0)
        self._loaded = True
        self._loads += 1
        self._moved(snapshot.revision)

    def apply(self, event: WatchEvent) -> None:
        """One change under ``jobs/``, in revision order."""
        key, name = event.key, self._ks.name_from_job_key(event.key)
        if event.type is EventType.DELETE:
            gone = self._mods.pop(key, None)
            if name is not None:
                self._jobs.pop(name, None)
            if gone is not None and gone == self._newest:
                self._newest = max(self._mods.values(), default=0)
        else:
            self._mods[key] = event.kv.mod_revision
            self._newest = max(self._newest, event.kv.mod_revision)
            if name is not None:
                self._jobs[name] = self._decoded(name, event.kv)
        self._moved(event.revision)

    # -- read by the JobManager -------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Loaded by the mirror that follows etcd now, and its watch connected."""
        return self._loaded and self._mirror is not None and self._mirror.synced

    def matches(self, stamp: PrefixStamp) -> bool:
        """The cache is at least as current as the read ``stamp`` came from, and holds
        whole transactions (a list never sees half of one)."""
        if self._mirror is not None and not self._mirror.settled:
            return False
        return (len(self._mods), self._newest) == (stamp.count, stamp.newest) \
            or self._revision >= stamp.revision

    async def current(self, stamp: PrefixStamp, wait_s: float = FRESH_WAIT_S
                      ) -> CachedJobs | None:
        """The jobs, once the cache is as current as ``stamp`` (waiting for the watch
        up to ``wait_s``); None if it is not synced or not current by then."""
        with trio.move_on_after(wait_s):
            while self.synced and not self.matches(stamp):
                await self._changed.wait()
        if not (self.synced and self.matches(stamp)):
            self._misses += 1
            return None
        self._hits += 1
        return self.jobs()

    def jobs(self) -> CachedJobs:
        """The current state's valid jobs (whatever its freshness: ``current`` checks)."""
        if self._view is None:
            specs = [self._jobs[name].spec for name in sorted(self._jobs)]
            valid = [spec for spec in specs if spec is not None]
            self._view = CachedJobs(valid, downstream_map(valid))
        return self._view

    def statistics(self) -> JobCacheStatistics:
        return JobCacheStatistics(len(self._mods), self._revision, self.synced, self._loads,
                                  self._hits, self._misses)

    # -- inside -------------------------------------------------------------------------

    def _decoded(self, name: str, kv: KeyValue) -> StoredJob:
        stored = StoredJob.decode(name, kv)
        if stored.spec is None and self._report is not None:
            self._report(stored)
        return stored

    def _moved(self, revision: int) -> None:
        self._revision = max(self._revision, revision)
        self._view = None
        self._changed.set()
        self._changed = trio.Event()
