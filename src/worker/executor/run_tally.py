"""What the Executor counts per run, on its hot path: runs by final status, lateness.

Counted with plain integers in the trio thread (no lock, no metric object): the
Executor puts a snapshot in its statistics, and ``worker.metrics`` exports it at
scrape time as ``runs_total{status}`` and the ``fire_lateness_seconds`` histogram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cluster.metrics import BucketCounter, BucketCounts
from cluster.store import RunStatus, RunTrigger

__all__ = ["LATENESS_BOUNDS_S", "RunTally", "RunTallyStatistics"]

# 1 ms .. 10 s: the design's latency goal is milliseconds; beyond the misfire grace
# (5 s by default) a fire is passed over, so longer lateness cannot be observed.
LATENESS_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                     5.0, 10.0)


@dataclass(frozen=True, slots=True)
class RunTallyStatistics:
    ended: Mapping[RunStatus, int]  # run records handed on, by status (a copy)
    lateness: BucketCounts  # start minus planned time of scheduled fires, seconds


class RunTally:
    """The counts; one per Executor incarnation (``worker.metrics`` adds them up)."""

    def __init__(self) -> None:
        self._ended: dict[RunStatus, int] = {}
        self._lateness = BucketCounter(LATENESS_BOUNDS_S)

    def started(self, trigger: RunTrigger, planned_ms: int, start_ms: int) -> None:
        """A command was told to start: the lateness of a scheduled fire (only: catch-up,
        retries and manual runs are late or early on purpose)."""
        if trigger is RunTrigger.SCHEDULE:
            self._lateness.observe((start_ms - planned_ms) / 1000)

    def ended(self, status: RunStatus) -> None:
        self._ended[status] = self._ended.get(status, 0) + 1

    def statistics(self) -> RunTallyStatistics:
        return RunTallyStatistics(dict(self._ended), self._lateness.snapshot())
