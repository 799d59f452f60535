"""Which missed fires a job runs after an outage: the arithmetic of ``catchUp``.

An outage is any time no worker could claim a job's fires: every worker down (the
last fire is ``state/<name>``), or etcd without quorum (``QuorumBack``). The fires
missed are the job's times after the last one that fired, up to now, and no older
than ``startingDeadline`` (the boundary itself counts: a fire exactly
``startingDeadline`` old may still run). ``catchUp: last`` (the default) runs one
fire for all of them, the most recent: a job that syncs or cleans up needs one run,
not one per missed minute. ``catchUp: all`` runs each, oldest first, the most recent
``MAX_CATCHUP_FIRES`` (100) at most. Either way each run's record says how many were
missed and the first of them, so an operator sees what the single run stood for.

Pure: no clock, no I/O; the Scheduler passes the times (tests use a mock clock).
"""

from __future__ import annotations

import datetime
from collections import deque
from dataclasses import dataclass

from cluster.spec import MAX_CATCHUP_FIRES, CatchUp, JobSpec

__all__ = ["Missed", "missed_fires", "utc"]


@dataclass(frozen=True, slots=True)
class Missed:
    """The fires to run again (planned times, oldest first), how many fire times were
    missed within startingDeadline, and the first of them."""

    run: tuple[int, ...]
    count: int
    first_ms: int | None

    def __bool__(self) -> bool:
        return bool(self.run)


NONE = Missed((), 0, None)


def missed_fires(spec: JobSpec, after_ms: int, now_ms: int,
                 upto_ms: int | None = None) -> Missed:
    """The fires of ``spec`` planned after ``after_ms`` and up to ``upto_ms`` (default:
    ``now_ms``) that are within its ``startingDeadline`` of ``now_ms``.

    A paused job, or one with no ``startingDeadline``, catches nothing up. Cost: one
    step of the schedule per missed time (about 20 us): every-second jobs with a
    deadline of a day take nearly two seconds.
    """
    if spec.starting_deadline_s <= 0 or spec.paused:
        return NONE
    earliest_ms = now_ms - round(spec.starting_deadline_s * 1000)
    end_ms = now_ms if upto_ms is None else upto_ms
    schedule = spec.schedule()
    recent: deque[int] = deque(maxlen=MAX_CATCHUP_FIRES)
    count, first_ms = 0, None
    t = schedule.next_after(max(after_ms, earliest_ms - 1))
    while t is not None and t <= end_ms:
        if first_ms is None:
            first_ms = t
        count += 1
        recent.append(t)
        t = schedule.next_after(t)
    if not recent:
        return NONE
    run = tuple(recent) if spec.catch_up is CatchUp.ALL else (recent[-1],)
    return Missed(run, count, first_ms)


def utc(ms: int) -> str:
    """An epoch-ms time as the catch-up log lines show it."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(timespec="milliseconds")
