"""The wall clock, behind one small interface so tests can drive it with a mock clock.

Fire times are wall-clock instants (epoch milliseconds in the job's zone); trio sleeps on
a monotonic clock. The Scheduler converts between the two at each sleep and re-reads the
wall clock at least every ``max_sleep_s`` so that a stepped system clock (NTP) delays
nothing for long.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio


class WallClock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class TrioWallClock:
    """Wall time that advances with trio's clock: under ``MockClock`` it jumps with it."""

    def __init__(self, epoch_ms: int) -> None:
        self._epoch_ms = epoch_ms
        self._trio_start = trio.current_time()

    def now_ms(self) -> int:
        return self._epoch_ms + round((trio.current_time() - self._trio_start) * 1000)


def trio_deadline_for(clock: WallClock, wall_ms: int, *, max_sleep_s: float) -> float:
    """The trio-clock deadline at which the wall clock reads ``wall_ms`` (capped)."""
    delay_s = max(0.0, (wall_ms - clock.now_ms()) / 1000)
    return trio.current_time() + min(delay_s, max_sleep_s)
