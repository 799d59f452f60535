"""What the Scheduler is sent (``SchedulerMsg``): jobs and manual triggers from the
JobWatcher, claim outcomes from the Locker, vanished runs, and ends of runs from the Executor.

Mailbox: bounded (``mailbox_size``); a full one makes senders wait (backpressure on the
JobWatcher's watch and the Locker's replies); only an Executor cancelled mid-run
offers its ``RunEnded`` without waiting. See ``worker.scheduler.actor``.

``RunEnded`` is sent only for a run that ended in a ``RETRYABLE`` status: retries are
all the Scheduler does with it, and a message per succeeded run was a mailbox hop and a
Scheduler step per fire for nothing (issue 14, CPU per fire).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping

from cluster.presence import RunningInfo
from cluster.retries import PendingRetry
from cluster.spec import JobSpec
from cluster.store import RunStatus

from worker.messages import Fire, Run, SkipTally, Upstream


@dataclass(frozen=True, slots=True)
class JobsSnapshot:
    """Every valid job at ``revision`` (or, shards on, this worker's share of them):
    the table converges on it (start, compaction, a membership change)."""

    specs: tuple[JobSpec, ...]
    revision: int
    last_fired_ms: Mapping[str, int]  # from state/<name>: where catch-up starts
    # Jobs whose missed fires a worker back before this one catches up
    # (``job_watcher.returns``): not caught up here.
    caught_up_elsewhere: frozenset[str] = frozenset()
    # Shards on (``worker.shards``): jobs this worker does not serve but that are
    # chained after another (for the chain index only, never planned); jobs it planned
    # that other workers serve now, whether handed over by this snapshot or before,
    # and that still exist (dropped from the plan, their runs here left to end: they
    # were not deleted; one handed over before and absent here was deleted); and, on a
    # membership change, the jobs it planned and still plans (``kept``: not parsed
    # again nor sent, the plan keeps its entries, which the jobs/ watch keeps current).
    chained: tuple[JobSpec, ...] = ()
    handed_over: frozenset[str] = frozenset()
    kept: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class JobSaved:
    """A job was saved. ``serve`` False (shards on): another worker serves it; it is
    dropped from the plan if there (its runs here left to end) and kept only in the
    chain index."""

    spec: JobSpec
    serve: bool = True


@dataclass(frozen=True, slots=True)
class JobDeleted:
    name: str


@dataclass(frozen=True, slots=True)
class TriggerRequested:
    """``trigger/<name>/<run_id>`` appeared: somebody asked for one manual run, or a run
    of the job's ``after`` job ended as it waits for (``upstream``: a chained run)."""

    name: str
    run_id: str
    requested_ms: int
    upstream: Upstream | None = None


@dataclass(frozen=True, slots=True)
class RetryRequested:
    """``retry/<name>/<run_id>`` exists: a retry any worker may claim once it is due."""

    retry: PendingRetry


@dataclass(frozen=True, slots=True)
class Granted:
    run: Run


@dataclass(frozen=True, slots=True)
class GrantedBatch:
    """The runs one claim transaction won (``locker.claim_batch``), in one message: each
    is started as if granted alone (issue 14: a message per fire cost each hop)."""

    runs: tuple[Run, ...]


@dataclass(frozen=True, slots=True)
class Denied:
    """The claim was not ours. ``record_skip``: we won the right to record it skipped;
    with a ``tally``, as one of the fires skipped while that run went on (one record
    per run, ``worker.skips``), else as a record of its own."""

    fire: Fire
    reason: str
    record_skip: bool = False
    tally: SkipTally | None = None


@dataclass(frozen=True, slots=True)
class LostClaimed:
    """We won the right to record a vanished run as lost (and to retry it)."""

    info: RunningInfo


@dataclass(frozen=True, slots=True)
class RunVanished:
    """Another worker's run went with that worker's lease: it died or lost its session."""

    info: RunningInfo


@dataclass(frozen=True, slots=True)
class QuorumBack:
    """etcd has a leader again after ``lost_since_ms``: the Locker claimed nothing
    meanwhile, so the fires of the outage are caught up (``startingDeadline``)."""

    lost_since_ms: int


# The statuses of a run that its job's ``retries`` may try again.
RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.LOST})


@dataclass(frozen=True, slots=True)
class RunEnded:
    """A run ended in a ``RETRYABLE`` status (the Executor tells no other end)."""

    run: Run
    status: RunStatus


SchedulerMsg = (
    JobsSnapshot | JobSaved | JobDeleted | TriggerRequested | RetryRequested
    | Granted | GrantedBatch | Denied | LostClaimed | RunVanished | RunEnded | QuorumBack
)
