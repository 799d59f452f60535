"""A run in flight, from its StartRun to its record, and how it is stopped.

Why a run stops, first reason wins: ``KillRun`` (its status, usually ``killed``),
``Fenced`` (``lost``: the session lease is gone, so another worker may now own the
job's fires), the job's timeout (``timeout``, the process's own), or a graceful stop
after ``shutdown_grace_s`` (``killed``). A kill that comes before the command starts
stops it unstarted: what it waits in (its mark, queued or awaited, its planned instant)
is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cluster.store import RunStatus

from worker.messages import Run
from .process import GroupProcess, ProcessResult

GONE_REASON = "its claim vanished with the session lease before it started"


class Waiting(Protocol):
    """What a run waits in before its command may start: a ``trio.CancelScope`` (a task
    waits for its mark or its planned instant), or its mark's ``Pending``, queued with a
    callback that commits it (``group_commit``). Cancelled, it never starts."""

    def cancel(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KillCause:
    status: RunStatus
    reason: str
    at_ms: int  # wall time of the request: before the planned time, nothing ran


@dataclass(eq=False)
class ActiveRun:
    """A run from StartRun until its record is written."""

    run: Run
    process: GroupProcess | None = None
    cause: KillCause | None = None  # set once: the first reason to stop wins
    waiting: Waiting | None = None  # set while it waits for its mark or time
    start_ms: int | None = None  # when its command starts (committed): None until then
    grace_s: float | None = None  # the kill's own SIGTERM-to-SIGKILL bound (a fence's)

    def kill(self, status: RunStatus, reason: str, at_ms: int,
             grace_s: float | None = None) -> bool:
        """Ask the run to stop (SIGKILL after ``grace_s`` at most, if given); False if
        it is already stopping or has ended."""
        if self.cause is not None:
            return False
        self.grace_s = grace_s
        if self.process is not None and not self.process.kill(reason, grace_s):
            return False  # it exited, or its timeout came first
        self.cause = KillCause(status, reason, at_ms)
        if self.waiting is not None:
            self.waiting.cancel()  # it will never start
        return True

    def attach(self, process: GroupProcess) -> None:
        """The process is up; a kill that came while it was spawning applies now."""
        self.process = process
        if self.cause is not None:
            process.kill(self.cause.reason, self.grace_s)


def gone(now_ms: int) -> KillCause:
    """Its key went with the session lease before it was marked: it never starts."""
    return KillCause(RunStatus.LOST, GONE_REASON, now_ms)


def exited_held(result: ProcessResult) -> KillCause:
    """A held process that ended before it was told to start: something else killed it."""
    return KillCause(RunStatus.FAILED,
                     f"its process ended (code {result.returncode}) before it was started", 0)
