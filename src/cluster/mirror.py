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

Whoever follows etcd may import this; it depends on ``cluster.etcd`` and
``cluster.backoff`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from .backoff import Backoff
from .etcd import Etcd, EtcdUnavailable, PrefixSnapshot, WatchCompacted, WatchEvent, WatchStream

__all__ = ["MirrorStatistics", "OnEvent", "OnRead", "PrefixMirror", "read_prefix"]

log = logging.getLogger(__name__)

OnRead = Callable[[PrefixSnapshot, "int | None"], Awaitable[None]]
OnEvent = Callable[[WatchEvent], Awaitable[None]]

READ_RETRY_S = 0.1
READ_RETRY_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class MirrorStatistics:
    prefix: str
    reads: int  # whole-range reads handed over, the first included
    compactions: int  # re-reads because the watch's history was compacted away
    synced: bool  # a read was handed over and its watch is connected


class PrefixMirror:
    """Follows ``prefix``; ``deletions_only`` asks etcd for deletions with their last value."""

    def __init__(self, etcd: Etcd, prefix: str, *, deletions_only: bool = False,
                 on_unavailable: Callable[[EtcdUnavailable], None] | None = None) -> None:
        self.prefix = prefix
        self._etcd = etcd
        self._deletions_only = deletions_only
        self._on_unavailable = on_unavailable
        self._stream: WatchStream | None = None
        self._reads = 0
        self._compactions = 0
        self.last_error = "not read yet"

    async def run(self, on_read: OnRead, on_event: OnEvent, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow forever; reports started once the first read is handed over."""
        snapshot = await self._read()
        await on_read(snapshot, None)
        task_status.started()
        handed_over = snapshot.revision  # every change up to here reached the listener
        refused = Backoff(READ_RETRY_S, READ_RETRY_MAX_S)  # a watch etcd keeps refusing
        while True:
            try:
                async with self._etcd.watch_prefix(
                        self.prefix, start_revision=handed_over + 1,
                        prev_kv=self._deletions_only, no_put=self._deletions_only) as events:
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
            snapshot = await self._read()
            await on_read(snapshot, handed_over)
            handed_over = snapshot.revision

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
        snapshot = await read_prefix(self._etcd, self.prefix, on_unavailable=self._failed)
        self._reads += 1
        return snapshot

    def _failed(self, exc: EtcdUnavailable) -> None:
        self.last_error = str(exc)
        if self._on_unavailable is not None:
            self._on_unavailable(exc)


async def read_prefix(etcd: Etcd, prefix: str, *,
                      on_unavailable: Callable[[EtcdUnavailable], None] | None = None,
                      ) -> PrefixSnapshot:
    """One read of ``prefix``, retried with backoff while etcd is unreachable: the mirror's
    reads, and a listener's read of a range it needs beside its own (never a stale view)."""
    backoff = Backoff(READ_RETRY_S, READ_RETRY_MAX_S)
    while True:
        try:
            return await etcd.get_prefix(prefix)
        except EtcdUnavailable as exc:
            if on_unavailable is not None:
                on_unavailable(exc)
            delay_s = backoff.failed()
            log.warning("reading %s: %s; retrying in %.1f s", prefix, exc, delay_s)
            await trio.sleep(delay_s)
