"""The message unions of the master's actors, defined once.

Only the WorkerManager takes requests: ``ListWorkers`` (and ``ClockWarnings`` and
``WorkerProblems``, for /healthz) carries its Reply, the HTTP
handlers ``call`` it (through ``ask_workers``), and it answers with the list or fails
the reply with EtcdDown. Retention and the AuditMover take no messages (their inboxes
only stop them). The JobManager and LogManager are services called directly (``jobs``,
``runs``), not actors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Never

from actors import Reply

from .views import WorkerView

# ---------------------------------------------------------------- WorkerManager


@dataclass(frozen=True, slots=True)
class ListWorkers:
    reply: Reply[list[WorkerView]]


@dataclass(frozen=True, slots=True)
class ClockWarnings:
    """One line per live worker whose clock is off (``master.clock_watch``)."""

    reply: Reply[list[str]]


@dataclass(frozen=True, slots=True)
class WorkerProblems:
    """One line per problem a live worker published (``spill: disk full``), by worker."""

    reply: Reply[list[str]]


WorkerManagerMsg = ListWorkers | ClockWarnings | WorkerProblems

RetentionMsg = Never  # nothing is sent to Retention; its inbox only stops it
AuditMoverMsg = Never  # nor to the AuditMover
SchedulableWatchMsg = Never  # nor to the SchedulableWatch
