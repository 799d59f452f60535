"""The one record a run ends in, built from how it ended.

Once stopped, the first reason wins (``active``); otherwise the exit code decides:
``succeeded`` on 0, ``failed`` on anything else; a command that cannot be started is
``failed`` too. A run stopped before its command started has no start time and no
output; its ``err`` says why. The reason a run was stopped is appended to its ``err``
as a ``[scheduler]`` line, so that a reader of the record sees it beside the output;
so is, for a chained run, the upstream run it followed.
"""

from __future__ import annotations

from cluster.store import RunRecord, RunStatus

from worker.messages import Fire
from .active import KillCause
from .process import ProcessResult, decode_output


def finished(fire: Fire, worker_id: str, cause: KillCause | None, result: ProcessResult, *,
             start_ms: int, end_ms: int) -> RunRecord:
    """A run whose command started: its status, output and exit code."""
    status, why = outcome(cause, result)
    err = decode_output(result.stderr)
    if why is not None:
        err = _append_line(err, f"[scheduler] run {status}: {why}")
    return record(fire, worker_id, status=status, output=decode_output(result.stdout),
                  err=err, exit_code=result.returncode, start_ms=start_ms, end_ms=end_ms,
                  truncated=result.truncated)


def never_started(fire: Fire, worker_id: str, cause: KillCause, *, end_ms: int) -> RunRecord:
    """A run stopped (or refused) before its command started."""
    return record(fire, worker_id, status=cause.status,
                  err=f"[scheduler] run {cause.status} before it started: {cause.reason}",
                  start_ms=None, end_ms=end_ms)


def abandoned(fire: Fire, worker_id: str, *, end_ms: int) -> RunRecord:
    """The Executor was cancelled outright while the run was in flight."""
    return record(fire, worker_id, status=RunStatus.KILLED,
                  err="[scheduler] run killed: the executor was stopped abruptly",
                  start_ms=None, end_ms=end_ms)


def outcome(cause: KillCause | None, result: ProcessResult) -> tuple[RunStatus, str | None]:
    """Status, and why it was stopped (None when it ended by itself)."""
    if cause is not None:
        return cause.status, cause.reason
    if result.timed_out:
        return RunStatus.TIMEOUT, result.kill_reason
    return (RunStatus.SUCCEEDED if result.returncode == 0 else RunStatus.FAILED), None


def record(fire: Fire, worker_id: str, *, status: RunStatus, err: str,
           start_ms: int | None, end_ms: int, output: str = "",
           exit_code: int | None = None, truncated: bool = False) -> RunRecord:
    if fire.upstream is not None:  # a chained run says which run it followed
        up = fire.upstream
        err = _append_line(err, f"[scheduler] chained after run {up.run_id} of job "
                                f"{up.job!r} ({up.status})")
    return RunRecord(
        run_id=fire.run_id, job_name=fire.spec.name, worker=worker_id,
        command=fire.spec.command, output=output, err=err, exit_code=exit_code,
        status=status, trigger=fire.trigger, attempt=fire.attempt,
        plan_time=fire.planned_ms, schedule_time=fire.fired_ms,
        start_time=start_ms, end_time=end_ms, output_truncated=truncated,
        missed_fires=fire.missed_fires, first_missed=fire.first_missed_ms,
    )


def _append_line(text: str, line: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}{line}\n"
