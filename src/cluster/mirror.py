"""Mirror one etcd key range: read it, watch it from there, read again when history is lost.

client-go calls this a reflector. The worker's JobWatcher follows five prefixes with
it, the master's worker list one, and a shard-scoped watch will be one more. The loop::

    read the prefix (retried with backoff while etcd is unreachable)
      → on_read(snapshot, resumed_after)     resumed_after: None on the first read, else
                                              the last revision handed over before it
      → watch from snapshot.revision + 1
          → on_event(event) for each change, in revision order
      on WatchCompacted, or a watch that etcd refuses: read again and go on from there

The adapter resumes broken streams by itself without losing or repeating events, so a
re-read happens only when the history the watch needs is gone: the listener then gets
the whole range again and must converge on it (``resumed_after`` tells it what it saw).
``on_read`` and ``on_event`` are awaited: a slow listener stops the pulling, and etcd
holds the rest (backpressure, never a drop).

A large range (the worker's ``jobs/``: 100k values) is not read in one response: the
listener loads it itself (``run_loading``: it reads in pages with ``fold_prefix`` and
says which revision it converged on), keeping of each page what it needs and dropping
the rest, so a read costs one page of memory, not the range's. A whole read of 100k
jobs costs ~1 KB a key at once, most of it gRPC's and protobuf's buffers on the heap
of whichever thread ran the call, which the allocator keeps after it is freed: each
read then raises the process's high-water mark (measured, DESIGN §6b "Memory"). Nor
does the mirror keep a read once it is handed over.

Whoever follows etcd may import this; it depends on ``cluster.etcd`` and
``cluster.backoff`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import trio

from .backoff import Backoff
from .etcd import (
    Etcd,
    EtcdUnavailable,
    KeyValue,
    PrefixPage,
    PrefixSnapshot,
    RangeCompacted,
    WatchCompacted,
    WatchEvent,
    WatchStream,
)

__all__ = ["Fold", "Load", "MirrorStatistics", "OnEvent", "OnRead", "PAGE_SIZE", "PrefixMirror",
           "fold_prefix", "read_prefix"]

log = logging.getLogger(__name__)

OnRead = Callable[[PrefixSnapshot, "int | None"], Awaitable[None]]
OnEvent = Callable[[WatchEvent], Awaitable[None]]
# Reads the range itself (``fold_prefix``) and converges on it; returns the revision
# of that read. Its argument is ``resumed_after``, as ``OnRead``'s.
Load = Callable[["int | None"], Awaitable[int]]

T = TypeVar("T")

PAGE_SIZE = 1000  # keys a page: ~100 KB of job specs, the memory a paged read costs

READ_RETRY_S = 0.1
READ_RETRY_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class MirrorStatistics:
    prefix: str
    reads: int  # whole-range reads handed over, the first included
    compactions: int  # re-reads because the watch's history was compacted away
    synced: bool  # a read was handed over and its watch is connected


class PrefixMirror:
    """Follows ``prefix``."""

    def __init__(self, etcd: Etcd, prefix: str, *,
                 on_unavailable: Callable[[EtcdUnavailable], None] | None = None) -> None:
        self.prefix = prefix
        self._etcd = etcd
        self._on_unavailable = on_unavailable
        self._stream: WatchStream | None = None
        self._reads = 0
        self._compactions = 0
        self.last_error = "not read yet"

    async def run(self, on_read: OnRead, on_event: OnEvent, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow forever; reports started once the first read is handed over."""

        async def load(resumed_after: int | None) -> int:
            snapshot = await self._read()  # not kept once handed over: it can be large
            await on_read(snapshot, resumed_after)
            return snapshot.revision

        await self.run_loading(load, on_event, task_status=task_status)

    async def run_loading(self, load: Load, on_event: OnEvent, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                          ) -> None:
        """``run`` for a listener that reads the range itself (``load``, in pages: the
        module doc says why); reports started once its first load returned."""
        handed_over = await self._load(load, None)  # every change up to here reached it
        task_status.started()
        refused = Backoff(READ_RETRY_S, READ_RETRY_MAX_S)  # a watch etcd keeps refusing
        while True:
            try:
                async with self._etcd.watch_prefix(
                        self.prefix, start_revision=handed_over + 1) as events:
                    self._stream = events
                    async for event in events:
                        refused.succeeded()
                        await on_event(event)
                        handed_over = event.revision
            except WatchCompacted as exc:
                self._compactions += 1
                log.warning("watch of %s lost its history (%s): reading again", self.prefix, exc)
            except EtcdUnavailable as exc:
                self._stream = None
                self._failed(exc)
                delay_s = refused.failed()
                log.warning("watch of %s refused (%s): reading again in %.1f s",
                            self.prefix, exc, delay_s)
                await trio.sleep(delay_s)
            finally:
                self._stream = None
            handed_over = await self._load(load, handed_over)

    @property
    def synced(self) -> bool:
        """Changes reach the listener now: its view is as fresh as etcd's answers."""
        stream = self._stream
        return stream is not None and stream.statistics().connected

    @property
    def settled(self) -> bool:
        """No event received waits to be handed over: the listener has every change of
        the revisions it saw (etcd sends a transaction's events in one response), so
        its view is one of etcd's states, not half of a transaction."""
        stream = self._stream
        return stream is None or stream.statistics().buffered == 0

    def statistics(self) -> MirrorStatistics:
        return MirrorStatistics(self.prefix, self._reads, self._compactions, self.synced)

    async def _read(self) -> PrefixSnapshot:
        return await read_prefix(self._etcd, self.prefix, on_unavailable=self._failed)

    async def _load(self, load: Load, resumed_after: int | None) -> int:
        revision = await load(resumed_after)
        self._reads += 1
        return revision

    def _failed(self, exc: EtcdUnavailable) -> None:
        self.last_error = str(exc)
        if self._on_unavailable is not None:
            self._on_unavailable(exc)


async def read_prefix(etcd: Etcd, prefix: str, *,
                      on_unavailable: Callable[[EtcdUnavailable], None] | None = None,
                      ) -> PrefixSnapshot:
    """One read of ``prefix``, retried with backoff while etcd is unreachable: the mirror's
    reads, and a listener's read of a range it needs beside its own (never a stale view)."""
    return await _retried(lambda: etcd.get_prefix(prefix), prefix, on_unavailable)


async def _retried(read: Callable[[], Awaitable[T]], prefix: str,
                   on_unavailable: Callable[[EtcdUnavailable], None] | None) -> T:
    backoff = Backoff(READ_RETRY_S, READ_RETRY_MAX_S)
    while True:
        try:
            return await read()
        except EtcdUnavailable as exc:
            if on_unavailable is not None:
                on_unavailable(exc)
            delay_s = backoff.failed()
            log.warning("reading %s: %s; retrying in %.1f s", prefix, exc, delay_s)
            await trio.sleep(delay_s)


class Fold(Protocol):
    """What a paged read keeps of each page (``fold_prefix``)."""

    def add(self, kvs: Sequence[KeyValue]) -> None: ...


F = TypeVar("F", bound=Fold)


async def fold_prefix(etcd: Etcd, prefix: str, start: Callable[[], F], *,
                      page_size: int | None = None,
                      on_unavailable: Callable[[EtcdUnavailable], None] | None = None,
                      ) -> tuple[F, int]:
    """One consistent read of ``prefix`` in pages of ``page_size`` keys, each handed to
    the fold ``start()`` made and then dropped; returns the fold and the read's revision.
    Every page is read at the first one's revision; if etcd compacts that away midway
    the read starts over with a fresh fold (what the first one kept would mix two
    states). A page etcd does not answer is asked again with backoff, as ``read_prefix``.
    ``page_size`` None: ``PAGE_SIZE``."""
    page_size = page_size or PAGE_SIZE
    while True:
        fold = start()
        revision = 0
        after: str | None = None
        try:
            while True:
                page = await _page(etcd, prefix, page_size, after, revision, on_unavailable)
                revision = page.revision
                fold.add(page.kvs)
                if not page.more or not page.kvs:
                    return fold, revision
                after = page.kvs[-1].key
                del page  # the next page replaces it: one page held at a time
        except RangeCompacted as exc:
            log.warning("reading %s: %s", prefix, exc)


async def _page(etcd: Etcd, prefix: str, limit: int, after: str | None, revision: int,
                on_unavailable: Callable[[EtcdUnavailable], None] | None) -> PrefixPage:
    return await _retried(lambda: etcd.get_prefix_page(prefix, limit=limit, after=after,
                                                       revision=revision),
                          prefix, on_unavailable)
