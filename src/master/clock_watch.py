"""Which workers' clocks are off from the master's, said once per change.

Why: a worker reads fire times on its own clock, so one whose clock is off starts fires
off by as much, unless the fleet outvotes it (``worker.locker.fleet_clock``: with three
or more workers, one off from their median claims only as a last resort, and one ahead
never early). The operator must hear of it either way, once and not at every
republication: one log line when a worker goes beyond ``max_clock_skew_s`` from the
master's clock and one when it comes back (or leaves), two gauges
(``worker_clock_skew_max_seconds``, ``workers_clock_skewed``: no per-worker label, so
the series stay bounded), and the names in ``/healthz`` for a caller with a token.

Only publications seen as they happen (watch events) are judged: a value read at
start-up may be seconds old, which would look like skew.
"""

from __future__ import annotations

import logging

from .metrics import Metrics

__all__ = ["ClockWatch"]

log = logging.getLogger(__name__)


class ClockWatch:
    def __init__(self, limit_s: float, metrics: Metrics) -> None:
        self._limit_ms = limit_s * 1000
        self._limit_s = limit_s
        self._metrics = metrics
        self._skews: dict[str, int] = {}  # worker id → its clock minus ours, last seen
        self._over: set[str] = set()

    def observed(self, worker_id: str, skew_ms: int) -> None:
        """A publication of ``worker_id`` seen as it happened: its clock minus ours."""
        self._skews[worker_id] = skew_ms
        over = abs(skew_ms) > self._limit_ms
        if over and worker_id not in self._over:
            self._over.add(worker_id)
            log.warning("clock skew: worker %r: clock %+d ms from the master's "
                        "(limit --max-clock-skew-s %g s)", worker_id, skew_ms, self._limit_s)
        elif not over and worker_id in self._over:
            self._over.discard(worker_id)
            log.warning("clock skew: worker %r: clock back within %g s of the master's "
                        "(%+d ms)", worker_id, self._limit_s, skew_ms)
        self._publish()

    def retain(self, live: set[str]) -> None:
        """Forget workers no longer registered."""
        for worker_id in set(self._skews) - live:
            del self._skews[worker_id]
            if worker_id in self._over:
                self._over.discard(worker_id)
                log.warning("clock skew: worker %r, whose clock was off, has left", worker_id)
        self._publish()

    def warnings(self) -> list[str]:
        """One line per worker whose clock is off now, by id."""
        return [f"worker {w!r} clock {self._skews[w]:+d} ms from the master's "
                f"(limit {self._limit_s:g} s)" for w in sorted(self._over)]

    def _publish(self) -> None:
        largest = max((abs(s) for s in self._skews.values()), default=0)
        self._metrics.worker_clock_skew_max.set(largest / 1000)
        self._metrics.workers_clock_skewed.set(len(self._over))
