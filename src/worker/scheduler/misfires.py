"""Counting fires passed over, and saying so without flooding the log.

An overloaded or stalled worker can pass over hundreds of fires a second; one warning
each would bury everything else in the log (and cost CPU the worker lacks). The first
is logged at once; the rest are summed up at most once per ``interval_s``.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("worker.scheduler")


class MisfireLog:
    def __init__(self, grace_ms: int, *, interval_s: float = 1.0) -> None:
        self.count = 0  # every fire passed over, for statistics
        self._grace_ms = grace_ms
        self._interval_s = interval_s
        self._unreported = 0
        self._worst_ms = 0
        self._reported_at: float | None = None

    def passed_over(self, name: str, planned_ms: int, late_ms: int, why: str) -> None:
        self.count += 1
        self._unreported += 1
        self._worst_ms = max(self._worst_ms, late_ms)
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < self._interval_s:
            return
        if self._unreported == 1:
            log.warning("job %r: fire at %d ms passed over, %d ms late (%s; grace %d ms)",
                        name, planned_ms, late_ms, why, self._grace_ms)
        else:
            log.warning("%d fires passed over, up to %d ms late (%s; grace %d ms), the "
                        "last: job %r at %d ms", self._unreported, self._worst_ms, why,
                        self._grace_ms, name, planned_ms)
        self._unreported, self._worst_ms, self._reported_at = 0, 0, now
