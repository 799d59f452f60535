"""One run of one job: a row of the ``job_log`` table (DESIGN §7).

A frozen value shared by the Executor (which builds it), the LogSink (which batches
and spills it) and the master (which shows it). ``to_json`` speaks the API's camelCase,
a superset of the seed's ``/job/log`` entries; ``from_json`` is its exact inverse so the
LogSink can spill records to a file and replay them later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from ._errors import InvalidRunRecord

RUN_ID_MAX_CHARS = 128  # the VARCHAR width of job_log.run_id
JOB_NAME_MAX_CHARS = 128  # DESIGN §5: names are at most 128 characters
WORKER_MAX_CHARS = 255

_E = TypeVar("_E", bound=StrEnum)


class RunStatus(StrEnum):
    """How a run ended (``skipped`` and ``lost`` runs may have no start/end time).

    ``replaced``: killed because a newer fire of its ``concurrency: replace`` job took
    its place; neither a failure nor a success of the job (no alert, no chain, no retry).
    """

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    REPLACED = "replaced"
    LOST = "lost"
    SKIPPED = "skipped"


class RunTrigger(StrEnum):
    """Why a run happened."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    CATCHUP = "catchup"
    RETRY = "retry"
    CHAIN = "chain"  # after a matching finished run of the job's ``after`` job


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A finished (or skipped, or lost) run. Times are epoch milliseconds."""

    run_id: str
    job_name: str
    worker: str
    command: str
    output: str
    err: str
    exit_code: int | None
    status: RunStatus
    trigger: RunTrigger
    attempt: int
    plan_time: int
    schedule_time: int
    start_time: int | None
    end_time: int | None
    output_truncated: bool = False
    # A ``skipped`` record stands for every fire skipped while one run went on
    # (``worker.skips``): how many, and the first and last of their planned times.
    # Other records: 0, None, None.
    skip_count: int = 0
    first_skip_time: int | None = None
    last_skip_time: int | None = None
    # A catch-up run (trigger ``catchup``): how many fire times within the job's
    # startingDeadline were missed, and the first of them (``catchUp: last`` runs once
    # for all of them). None on every other run.
    missed_fires: int | None = None
    first_missed: int | None = None

    def __post_init__(self) -> None:
        # Coerce plain strings to the enums so equality, hashing and JSON agree.
        object.__setattr__(self, "status", _member(RunStatus, "status", self.status))
        object.__setattr__(self, "trigger", _member(RunTrigger, "trigger", self.trigger))
        _check_text("run_id", self.run_id, RUN_ID_MAX_CHARS, nonempty=True)
        _check_text("job_name", self.job_name, JOB_NAME_MAX_CHARS, nonempty=True)
        _check_text("worker", self.worker, WORKER_MAX_CHARS)
        for name in ("command", "output", "err"):
            _check_text(name, getattr(self, name), None)
        _check_int("attempt", self.attempt, optional=False)
        _check_int("exit_code", self.exit_code, optional=True)
        for name in ("plan_time", "schedule_time"):
            _check_int(name, getattr(self, name), optional=False)
        for name in ("start_time", "end_time", "missed_fires", "first_missed"):
            _check_int(name, getattr(self, name), optional=True)
        _check_int("skip_count", self.skip_count, optional=False)
        for name in ("first_skip_time", "last_skip_time"):
            _check_int(name, getattr(self, name), optional=True)
        if not isinstance(self.output_truncated, bool):
            raise InvalidRunRecord("output_truncated", self.output_truncated, "a bool")

    @property
    def sort_time(self) -> int:
        """When the run happened, for ordering and pruning: its start, or, for a run
        that never started (skipped), when it was scheduled."""
        return self.start_time if self.start_time is not None else self.schedule_time

    def to_json(self) -> dict[str, Any]:
        """The API shape: camelCase keys, epoch-ms times, enums as strings."""
        return {
            "runId": self.run_id,
            "jobName": self.job_name,
            "worker": self.worker,
            "command": self.command,
            "output": self.output,
            "err": self.err,
            "exitCode": self.exit_code,
            "status": str(self.status),
            "trigger": str(self.trigger),
            "attempt": self.attempt,
            "planTime": self.plan_time,
            "scheduleTime": self.schedule_time,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "outputTruncated": self.output_truncated,
            "skipCount": self.skip_count,
            "firstSkipTime": self.first_skip_time,
            "lastSkipTime": self.last_skip_time,
            "missedFires": self.missed_fires,
            "firstMissed": self.first_missed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """Inverse of ``to_json``; raises InvalidRunRecord on a missing or bad field.
        The skip and catch-up fields may be missing (spill files written before they
        existed, or by an older worker)."""
        try:
            fields = {field: data[key] for key, field in _JSON_FIELDS.items()}
        except KeyError as exc:
            raise InvalidRunRecord(str(exc.args[0]), None, "present") from None
        fields.update({field: data[key] for key, field in _OPTIONAL_JSON_FIELDS.items()
                       if key in data})
        return cls(**fields)


_JSON_FIELDS = {
    "runId": "run_id", "jobName": "job_name", "worker": "worker", "command": "command",
    "output": "output", "err": "err", "exitCode": "exit_code", "status": "status",
    "trigger": "trigger", "attempt": "attempt", "planTime": "plan_time",
    "scheduleTime": "schedule_time", "startTime": "start_time", "endTime": "end_time",
    "outputTruncated": "output_truncated",
}
_OPTIONAL_JSON_FIELDS = {
    "skipCount": "skip_count", "firstSkipTime": "first_skip_time",
    "lastSkipTime": "last_skip_time", "missedFires": "missed_fires", "firstMissed": "first_missed",
}


def _member(enum: type[_E], field: str, value: object) -> _E:
    try:
        return enum(value)
    except ValueError:
        raise InvalidRunRecord(field, value, "one of " + " ".join(enum)) from None


def _check_text(field: str, value: object, max_chars: int | None, nonempty: bool = False) -> None:
    if not isinstance(value, str):
        raise InvalidRunRecord(field, value, "a str")
    if nonempty and not value:
        raise InvalidRunRecord(field, value, "a non-empty str")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidRunRecord(field, value, f"at most {max_chars} characters")


def _check_int(field: str, value: object, optional: bool) -> None:
    if value is None and optional:
        return
    # bool is an int subclass, but True is never a time or an exit code.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRunRecord(field, value, "an int" + (" or None" if optional else ""))
