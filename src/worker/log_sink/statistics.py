"""The LogSink's statistics: what ``worker.metrics`` exports of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogSinkStatistics:
    queued: int  # in memory, including batches in flight
    spilled: int  # in the spill file now, not yet replayed
    written_total: int  # written to the store (replayed ones included)
    spilled_total: int  # appended to the spill file
    replayed_total: int  # written to the store from the spill file
    fence_spilled_total: int  # appended to the spill file because the worker was fenced
    rejected_total: int  # refused for good: in the rejected file
    batches: int  # batches written
    last_error: str | None
    store_up: bool  # open, and the last write did not fail
    spill_full: bool  # the last spill append failed; the Locker claims no new fire
