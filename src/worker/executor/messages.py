"""What the Executor is sent (``ExecutorMsg``): runs to start from the Scheduler (or the
Locker, once the Scheduler has stopped), kills from the JobWatcher and the Scheduler, and
fencing, the session lease (``SessionChanged``, defined with the
Registrar's messages, its sender) and running-count questions from the Registrar.

Mailbox: bounded (``mailbox_size``); senders wait when it is full (backpressure), never
a drop. Handling never blocks on a process, so it drains fast. See ``worker.executor.actor``.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors import Reply
from cluster.store import RunStatus

from worker.messages import Run
from worker.registrar.messages import SessionChanged


@dataclass(frozen=True, slots=True)
class StartRun:
    run: Run


@dataclass(frozen=True, slots=True)
class KillRun:
    """Kill the job's runs on this worker: one (``run_id``) or all of the job's."""

    name: str
    run_id: str | None
    status: RunStatus = RunStatus.KILLED
    reason: str = "kill requested"


@dataclass(frozen=True, slots=True)
class Fenced:
    """The session lease was lost: every run here is fenced and must die, SIGKILLed
    ``kill_within_s`` after this at the latest (before the lease can have expired on
    the server); None: the usual ``kill_grace_s``."""

    lease_id: int
    kill_within_s: float | None = None


@dataclass(frozen=True, slots=True)
class RunningCount:
    reply: Reply[int]


ExecutorMsg = StartRun | KillRun | Fenced | SessionChanged | RunningCount
