"""The flapping rule: which finished runs of a job raise an alert (pure, no I/O).

A job that keeps failing alerts on its first failure, then at most once per
``repeat_s`` with the count of failures since the last alert; its first success after
one or more failures raises ``recovered``. A ``replaced`` run (killed so that a newer
run of a ``concurrency: replace`` job could start) is neither: it changes no streak.
Time is the run's own (its end, else its schedule time), never a clock: every writer
that decides on the same record and the same state decides the same, which is what
makes the store's compare-and-set (``cluster.store``'s alert state) idempotent.

Records are taken in the order they reach the store. One older than the last one seen
(a spill replayed late, a survivor's ``lost`` record of a run whose own record came
first) changes nothing: the job's present state is already known.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ._kinds import FAILURE_KINDS, AlertKind

__all__ = ["AlertDecision", "JobAlertState", "decide"]

DEFAULT_REPEAT_S = 3600.0


@dataclass(frozen=True, slots=True)
class JobAlertState:
    """One job's alert state, kept in the run store (``alert_state``)."""

    job: str
    failing: bool = False
    failures: int = 0  # failures in the current streak
    unalerted: int = 0  # failures since the last alert (not counting the one alerted)
    last_alert_ms: int = 0
    last_time_ms: int = 0  # the time of the last record taken
    last_run_id: str = ""
    version: int = 0  # compare-and-set in the store


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """The state after a record, and the event it raises (None: none)."""

    state: JobAlertState
    kind: AlertKind | None
    count: int = 0  # failures this alert speaks for (since the previous one)
    streak: int = 0  # failures in the streak so far


def decide(state: JobAlertState, *, run_id: str, status: str, time_ms: int,
           repeat_s: float = DEFAULT_REPEAT_S) -> AlertDecision:
    """What the record (``run_id``, ``status`` at ``time_ms``) does to ``state``."""
    if run_id == state.last_run_id or time_ms < state.last_time_ms:
        return AlertDecision(state, None)  # a replay, or older than what we know
    seen = replace(state, last_time_ms=time_ms, last_run_id=run_id)
    if status == "succeeded":
        if not state.failing:
            return AlertDecision(seen, None)
        cleared = replace(seen, failing=False, failures=0, unalerted=0)
        return AlertDecision(cleared, AlertKind.RECOVERED, state.unalerted, state.failures)
    try:
        kind = AlertKind(status)
    except ValueError:
        return AlertDecision(seen, None)  # skipped, replaced: neither failure nor success
    if kind not in FAILURE_KINDS:
        return AlertDecision(seen, None)
    streak = state.failures + 1
    due = not state.failing or time_ms - state.last_alert_ms >= repeat_s * 1000
    if not due:
        return AlertDecision(replace(seen, failing=True, failures=streak,
                                     unalerted=state.unalerted + 1), None)
    alerted = replace(seen, failing=True, failures=streak, unalerted=0, last_alert_ms=time_ms)
    return AlertDecision(alerted, kind, state.unalerted + 1, streak)
