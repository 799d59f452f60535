"""The kinds of alert event, and which run statuses raise which kind."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["AlertKind", "FAILURE_KINDS", "JOB_KINDS"]


class AlertKind(StrEnum):
    """What happened. ``recovered`` is the first success after one or more failures;
    ``unschedulable`` a job no live worker may run; ``test`` is `schedctl alerts test`."""

    FAILED = "failed"
    TIMEOUT = "timeout"
    LOST = "lost"
    KILLED = "killed"
    RECOVERED = "recovered"
    UNSCHEDULABLE = "unschedulable"
    TEST = "test"


# A run that ended with one of these statuses is a failure of its job (same names).
FAILURE_KINDS: Final = frozenset({AlertKind.FAILED, AlertKind.TIMEOUT, AlertKind.LOST,
                                  AlertKind.KILLED})
# What a job's `alerts.on` may name (`test` is no job's event).
JOB_KINDS: Final = (AlertKind.FAILED, AlertKind.TIMEOUT, AlertKind.LOST, AlertKind.KILLED,
                    AlertKind.RECOVERED, AlertKind.UNSCHEDULABLE)
