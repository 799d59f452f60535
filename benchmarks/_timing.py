"""Wall-clock helpers: fire times are epoch milliseconds, trio sleeps on its own clock."""

from __future__ import annotations

import time

import trio


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def sleep_until_ms(target_ms: int) -> None:
    """Sleep until the wall clock reads ``target_ms`` (returns at once if it has passed)."""
    await trio.sleep(max(0.0, (target_ms - wall_ms()) / 1000))


def next_second_ms(after_ms: int, *, plus_s: int = 0) -> int:
    """The first whole second strictly after ``after_ms``, plus ``plus_s`` seconds."""
    return (after_ms // 1000 + 1 + plus_s) * 1000
