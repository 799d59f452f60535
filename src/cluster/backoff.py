"""Exponential backoff with a cap and jitter, on the trio clock: written once.

Every retry loop of the project (etcd reads, registration, the run store, spills,
watches, the audit mover) waits ``initial_s``, then twice that, up to ``max_s``, and
starts again from ``initial_s`` after a success::

    backoff = Backoff(initial_s=0.1, max_s=5.0)
    while (result := await try_once()) is None:
        await trio.sleep(backoff.failed())

Jitter only ever *shortens* a wait (a fraction ``jitter`` of it at most), so the cap is
a true upper bound and a fleet of workers that lost etcd together does not retry in
lock-step. ``jitter=0`` gives exact delays, for loops whose tests expect them.

Times are trio's (``trio.current_time``), so a MockClock drives ``retry_at``. Whoever
imports this may: it depends on trio alone.
"""

from __future__ import annotations

import math
import random

import trio

__all__ = ["Backoff", "exponential_s"]

DEFAULT_JITTER = 0.2  # waits fall in [0.8, 1.0] x the exponential delay


def exponential_s(initial_s: float, max_s: float, failures: int) -> float:
    """The wait after ``failures + 1`` consecutive failures, without jitter: pure."""
    # Invariant: the exponent is bounded so that 2.0**n never overflows a float.
    return min(initial_s * 2.0 ** min(failures, 1000), max_s)


class Backoff:
    """Consecutive failures, and when the next attempt is due; reset by a success."""

    __slots__ = ("failures", "initial_s", "jitter", "max_s", "retry_at", "_random")

    def __init__(self, initial_s: float, max_s: float, *, jitter: float = DEFAULT_JITTER,
                 rng: random.Random | None = None) -> None:
        if not (initial_s > 0 and max_s > 0):  # initial_s > max_s: every wait is max_s
            raise ValueError(f"backoff needs positive delays, not {initial_s}, {max_s}")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff jitter is a fraction in [0, 1), not {jitter}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self.failures = 0  # consecutive, since the last success
        self.retry_at = -math.inf  # trio time; -inf: no wait pending
        self._random = rng or random  # type: ignore[assignment]  # the module's functions

    def failed(self) -> float:
        """Count one failure; returns how long to wait before the next attempt.

        The first failure waits ``initial_s``, each next one twice the last, never more
        than ``max_s`` (less by up to ``jitter`` of it). Also sets ``retry_at``.
        """
        delay_s = exponential_s(self.initial_s, self.max_s, self.failures)
        if self.jitter:
            delay_s *= 1.0 - self.jitter * self._random.random()
        self.failures += 1
        self.retry_at = trio.current_time() + delay_s
        return delay_s

    def succeeded(self) -> None:
        """Back to the first delay; no wait pending."""
        self.failures = 0
        self.retry_at = -math.inf
