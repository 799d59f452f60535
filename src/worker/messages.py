"""Every message the worker's actors exchange, defined once: one union per actor.

Flow (DESIGN §3)::

    etcd ──watch──> JobWatcher ──Jobs*/TriggerRequested──> Scheduler
                    JobWatcher ──KillRun──> Executor
                    JobWatcher ──RunVanished──> Scheduler
                    JobWatcher ──WorkersChanged──> Locker
    Scheduler ──Claim/ClaimLost──> Locker ──Granted/Denied/LostClaimed──> Scheduler
    Scheduler ──StartRun──> Executor ──RunEnded──> Scheduler
                            Executor ──Write──> LogSink ──batches──> store
    Registrar ──SessionChanged──> Locker, Executor

Shared values (``Fire``, ``Run``) are frozen so that a message can never be changed
after it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Never

from actors import Reply
from cluster.presence import RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunRecord, RunStatus, RunTrigger


@dataclass(frozen=True, slots=True)
class Fire:
    """One planned execution of a job, before anybody claimed it."""

    spec: JobSpec
    planned_ms: int  # the cron time (for manual runs: when it was asked for)
    fired_ms: int  # when this worker's Scheduler handed it over (schedule_time)
    trigger: RunTrigger
    run_id: str
    attempt: int = 1
    # Non-empty: a run that worker ``recovers`` claimed, then died before its command
    # was committed to start; the fire is claimed again under the same run id.
    recovers: str = ""


@dataclass(frozen=True, slots=True)
class Run:
    """A fire this worker won: it holds ``running/<name>/<run_id>`` on ``session_lease``."""

    fire: Fire
    session_lease: int
    guarded: bool  # it also holds ``active/<name>`` (concurrency forbid/replace)


# --- Scheduler ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobsSnapshot:
    """Every valid job at ``revision``: the table converges on it (start, compaction)."""

    specs: tuple[JobSpec, ...]
    revision: int
    last_fired_ms: Mapping[str, int]  # from state/<name>: where catch-up starts


@dataclass(frozen=True, slots=True)
class JobSaved:
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class JobDeleted:
    name: str


@dataclass(frozen=True, slots=True)
class TriggerRequested:
    """``trigger/<name>/<run_id>`` appeared: somebody asked for one manual run."""

    name: str
    run_id: str
    requested_ms: int


@dataclass(frozen=True, slots=True)
class Granted:
    run: Run


@dataclass(frozen=True, slots=True)
class Denied:
    """The claim was not ours. ``record_skip``: we won the right to record it skipped."""

    fire: Fire
    reason: str
    record_skip: bool = False


@dataclass(frozen=True, slots=True)
class LostClaimed:
    """We won the right to record a vanished run as lost (and to retry it)."""

    info: RunningInfo


@dataclass(frozen=True, slots=True)
class RunVanished:
    """Another worker's run went with that worker's lease: it died or lost its session."""

    info: RunningInfo


@dataclass(frozen=True, slots=True)
class RunEnded:
    run: Run
    status: RunStatus


SchedulerMsg = (
    JobsSnapshot | JobSaved | JobDeleted | TriggerRequested
    | Granted | Denied | LostClaimed | RunVanished | RunEnded
)


# --- Locker ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    fire: Fire


@dataclass(frozen=True, slots=True)
class ClaimLost:
    """Record a vanished run as ``lost`` (its command may have started), if nobody else does."""

    info: RunningInfo


@dataclass(frozen=True, slots=True)
class WorkersChanged:
    workers: tuple[WorkerInfo, ...]


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """The worker's session lease: None while it has none (lost, re-registering)."""

    lease_id: int | None


@dataclass(frozen=True, slots=True)
class LoadChanged:
    running: int


LockerMsg = Claim | ClaimLost | WorkersChanged | SessionChanged | LoadChanged


# --- Executor ----------------------------------------------------------------------


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
    """The session lease was lost: every run here is fenced and must die."""

    lease_id: int


@dataclass(frozen=True, slots=True)
class RunningCount:
    reply: Reply[int]


ExecutorMsg = StartRun | KillRun | Fenced | SessionChanged | RunningCount


# --- LogSink -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class Flush:
    """Answer once every record received before this one is in the store (or spilled)."""

    reply: Reply[None]


LogSinkMsg = Write | Flush



# --- Registrar and JobWatcher ------------------------------------------------------
# Nothing is sent to them: their inboxes exist so that the runtime can stop them
# (sealing an inbox is the graceful stop).

RegistrarMsg = Never
JobWatcherMsg = Never
