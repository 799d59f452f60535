"""The LogSink's ledger: where each record received is until it is durable, and the
Flushes that wait on them.

A record is in memory (oldest first), then in a *transit* batch (being written to the
store or appended to the spill file), then durable (the store or the spill file); a
failed transit goes back to memory in its place. A Flush is answered once every record
received before it has left memory and transit for good.

A fence (``secure``) takes the batches in flight to the store out of transit once the
spill file holds them too: the store's answer then finds nothing to restore.

Invariant: memory is sorted by seq; every record received is in exactly one of memory,
a transit batch, the store, the spill file (after a fence, a record may be in both the
store and the spill file: replay upserts on run_id).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import NamedTuple

from actors import Reply
from cluster.store import RunRecord


class Entry(NamedTuple):
    seq: int  # arrival order; unique, so entries sort without comparing records
    received_at: float  # trio time
    record: RunRecord


class Ledger:
    """Memory, transit batches and waiting Flushes. ``memory`` is for reading only."""

    def __init__(self) -> None:
        self.memory: deque[Entry] = deque()
        self.received = 0  # records accepted so far: the next one's seq
        self._transit: dict[int, list[Entry]] = {}
        self._transit_keys = itertools.count()
        self._to_store: set[int] = set()  # the transit batches in flight to the store
        self._flushes: deque[tuple[int, Reply[None]]] = deque()  # (records before it, reply)

    @property
    def queued(self) -> int:
        """In memory or in transit: not durable yet."""
        return len(self.memory) + sum(map(len, self._transit.values()))

    def accept(self, record: RunRecord, now: float) -> None:
        self.memory.append(Entry(self.received, now, record))
        self.received += 1

    def pop(self, n: int) -> list[Entry]:
        """The oldest ``n`` entries out of memory (put them in transit next)."""
        return [self.memory.popleft() for _ in range(min(n, len(self.memory)))]

    def enter_transit(self, entries: list[Entry], *, to_store: bool = False) -> int:
        key = next(self._transit_keys)
        if entries:
            self._transit[key] = entries
            if to_store:
                self._to_store.add(key)
        return key

    def leave_transit(self, key: int, *, restore: bool) -> bool:
        """The batch is durable, or (``restore``) failed and goes back to memory.

        False if it had left already (``secure``: it is in the spill file; or empty).
        """
        self._to_store.discard(key)
        entries = self._transit.pop(key, None)
        if entries is None:
            return False
        if restore:
            if not self.memory or entries[-1].seq < self.memory[0].seq:
                self.memory.extendleft(reversed(entries))
            else:  # records left memory meanwhile: merge, keeping it sorted by seq
                self.memory = deque(heapq.merge(entries, self.memory))
        return True

    def in_flight_to_store(self) -> dict[int, list[Entry]]:
        """The batches in flight to the store, by transit key (a fence spills them)."""
        return {key: self._transit[key] for key in self._to_store}

    def secure(self, keys: list[int]) -> None:
        """These batches in flight to the store are in the spill file now: durable."""
        for key in keys:
            self._to_store.discard(key)
            self._transit.pop(key, None)

    def everything(self) -> list[Entry]:
        """Memory and every transit batch, oldest first (they stay until ``clear``)."""
        return sorted([*self.memory, *itertools.chain(*self._transit.values())])

    def clear(self) -> None:
        """Forget memory and transit: ``everything`` was made durable at once."""
        self.memory.clear()
        self._transit.clear()
        self._to_store.clear()

    # -- flushes ----------------------------------------------------------------------

    def add_flush(self, reply: Reply[None]) -> None:
        """Answer ``reply`` once every record accepted so far is durable."""
        self._flushes.append((self.received, reply))
        self.answer_flushes()

    def flush_blocked(self) -> bool:
        """A Flush waits on a record still in memory."""
        return bool(self._flushes and self.memory
                    and self.memory[0].seq < self._flushes[-1][0])

    def blocking_last_flush(self) -> int:
        """How many of the oldest entries in memory the last Flush waits on."""
        target = self._flushes[-1][0] if self._flushes else 0
        return sum(1 for _ in itertools.takewhile(lambda e: e.seq < target, self.memory))

    def answer_flushes(self) -> None:
        durable_below = min((batch[0].seq for batch in self._transit.values()),
                            default=self.received)
        if self.memory:
            durable_below = min(durable_below, self.memory[0].seq)
        while self._flushes and self._flushes[0][0] <= durable_below:
            self._flushes.popleft()[1].send(None)

    def fail_flushes(self, exc: Exception) -> None:
        for _, reply in self._flushes:
            reply.fail(exc)
        self._flushes.clear()
