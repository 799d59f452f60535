"""Due fires: what the Locker acts on next, by when, served by one task (issue 14).

A backup claims a fire only after its rank's step, and a claim etcd did not answer is
tried again after a backoff. Each of these waits was a task sleeping of its own: every
fire cost the Locker a task on every worker (at 100 fires/s over 2 workers, two task
spawns and their wake-ups a fire). Here every wait is one entry in a min-heap keyed
by the trio time it is due, and one task sleeps until the earliest, then hands over
every due entry at once (``act``: synchronous, it never blocks; it starts whatever
must happen then). O(log n) per entry; no polling, no per-fire sleep.

``tick_s``: the task wakes on a multiple of it (the earliest entry's time rounded up),
never before an entry is due, so that entries due close together share a wake-up: a
backup's checks, one per fire at 50 fires/s, gather for their transaction anyway
(``claim_batch``), and woke the task once each.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Generic, NoReturn, TypeVar

import trio

__all__ = ["DueFires"]

T = TypeVar("T")


class DueFires(Generic[T]):
    """Entries waiting for their trio time; ``serve`` acts on each once it is due."""

    def __init__(self, tick_s: float = 0.0) -> None:
        self._tick_s = tick_s
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()  # ties: first pushed, first acted on
        self._wake = trio.Event()  # an entry became the earliest

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def next_at(self) -> float:
        """The trio time the earliest entry is due (inf: none)."""
        return self._heap[0][0] if self._heap else math.inf

    def push(self, at: float, entry: T) -> None:
        """Act on ``entry`` at trio time ``at`` (at once if it has passed); never blocks."""
        earliest = self.next_at
        heapq.heappush(self._heap, (at, next(self._order), entry))
        if at < earliest:
            self._wake.set()  # the server sleeps until a later time: wake it

    def pop_due(self, now: float) -> list[T]:
        """The entries due by ``now``, earliest first, taken out."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def clear(self) -> list[T]:
        """Every entry, due or not, taken out (a graceful stop)."""
        entries = [entry for _, _, entry in sorted(self._heap)]
        self._heap.clear()
        return entries

    async def serve(self, act: Callable[[T], None]) -> NoReturn:
        """Forever: sleep until the earliest entry is due (or an earlier one comes),
        then ``act`` on every due one. ``act`` must not block; it may push."""
        while True:
            for entry in self.pop_due(trio.current_time()):
                act(entry)
            self._wake = trio.Event()
            with trio.move_on_at(self._wake_at()):
                await self._wake.wait()

    def _wake_at(self) -> float:
        """The earliest entry's time, rounded up to a multiple of ``tick_s``."""
        at = self.next_at
        if self._tick_s <= 0 or math.isinf(at):
            return at
        return max(at, math.ceil(at / self._tick_s) * self._tick_s)  # never early, by an ulp
