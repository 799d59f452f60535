"""The run records the Scheduler writes itself: a fire skipped, a run lost.

Apart from the actor because they are what the store is told about runs that never
ran, or whose end nobody saw, not how fires are planned: each says, in its ``err``,
why, in words an operator reads in ``schedctl runs``. A run that did run is recorded
by the Executor (``worker.executor``).
"""

from __future__ import annotations

from cluster.presence import ORPHANED, RunningInfo
from cluster.store import RunRecord, RunStatus, RunTrigger

from worker.messages import Fire

ORPHAN_NOTE = "its process started it on its own"  # in lost records of orphaned runs


def skipped_record(fire: Fire, worker_id: str, reason: str) -> RunRecord:
    return RunRecord(
        run_id=fire.run_id, job_name=fire.spec.name, worker=worker_id,
        command=fire.spec.command, output="", err=f"skipped: {reason}", exit_code=None,
        status=RunStatus.SKIPPED, trigger=fire.trigger, attempt=fire.attempt,
        plan_time=fire.planned_ms, schedule_time=fire.fired_ms,
        start_time=None, end_time=None, skip_count=1, first_skip_time=fire.planned_ms,
        last_skip_time=fire.planned_ms,
        missed_fires=fire.missed_fires, first_missed=fire.first_missed_ms,
    )


def lost_record(info: RunningInfo, command: str, now_ms: int) -> RunRecord:
    """What the survivors know of a run whose worker vanished: that its command was
    committed to start, not whether (or when) it did or how it ended, so ``start_time``
    stays empty."""
    if info.state == ORPHANED:
        why = f"died before starting the run; {ORPHAN_NOTE}"
    elif info.started:
        why = "died or lost its session after starting the run"
    else:
        why = "died or lost its session before starting the run (its job is gone or paused)"
    return RunRecord(
        run_id=info.run_id, job_name=info.job_name, worker=info.worker_id,
        command=command, output="", err=f"lost: worker {info.worker_id} {why}",
        exit_code=None, status=RunStatus.LOST, trigger=RunTrigger(info.trigger),
        attempt=info.attempt, plan_time=info.planned_ms, schedule_time=info.started_ms,
        start_time=None, end_time=now_ms,
        missed_fires=info.missed_fires, first_missed=info.first_missed_ms,
    )

