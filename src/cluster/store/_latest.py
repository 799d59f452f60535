"""Each job's newest run, for the jobs list: one grouped query, never one per job.

The list shows 10,000 jobs at once; a query per job would be 10,000 round trips. The
inner ``GROUP BY job_name`` with ``MAX(sort_time)`` reads only the
``(job_name, sort_time)`` index (MariaDB's loose index scan: one probe per job, not
per record), and the join fetches those rows by the same index. Two records of a job
with the same newest ``sort_time`` both come back; the higher id (written later) wins,
as in the newest-first page order.

"Newest" is by ``sort_time``, as everywhere in the history: the start time, or the
planned time of a run that never started (a ``skipped`` or ``lost`` record).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._backend import Row
from ._schema import TABLE

__all__ = ["LATEST_RUNS", "RECENT_RUNS", "LastRun", "latest_by_job", "latest_runs_of",
           "recent_of_job"]

LATEST_RUNS = (
    f"SELECT l.job_name, l.id, l.run_id, l.status, l.`trigger`, l.schedule_time, "
    f"l.start_time, l.end_time FROM {TABLE} l JOIN (SELECT job_name, MAX(sort_time) AS "
    f"newest FROM {TABLE} GROUP BY job_name) n "
    f"ON l.job_name = n.job_name AND l.sort_time = n.newest"
)

# A job's newest runs without their outputs (the job page's duration plot): the
# ``(job_name, sort_time)`` index gives them in order, and no output column is read.
RECENT_RUNS = (
    f"SELECT job_name, id, run_id, status, `trigger`, schedule_time, start_time, end_time "
    f"FROM {TABLE} WHERE job_name = {{m}} ORDER BY sort_time DESC, id DESC LIMIT {{m}}"
)


def latest_runs_of(count: int, mark: str) -> str:
    """LATEST_RUNS for ``count`` jobs, named twice in the parameters (``[*names, *names]``);
    ``mark``: the dialect's placeholder."""
    marks = ", ".join([mark] * count)
    return (
        f"SELECT l.job_name, l.id, l.run_id, l.status, l.`trigger`, l.schedule_time, "
        f"l.start_time, l.end_time FROM {TABLE} l JOIN (SELECT job_name, MAX(sort_time) AS "
        f"newest FROM {TABLE} WHERE job_name IN ({marks}) GROUP BY job_name) n "
        f"ON l.job_name = n.job_name AND l.sort_time = n.newest WHERE l.job_name IN ({marks})"
    )


@dataclass(frozen=True, slots=True)
class LastRun:
    """What the jobs list shows of a job's newest run (times in epoch ms)."""

    run_id: str
    status: str
    trigger: str
    schedule_time: int
    start_time: int | None
    end_time: int | None

    @property
    def duration_ms(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0, self.end_time - self.start_time)

    def to_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "status": self.status, "trigger": self.trigger,
                "scheduleTime": self.schedule_time, "startTime": self.start_time,
                "endTime": self.end_time, "durationMs": self.duration_ms}


def latest_by_job(rows: Iterable[Row]) -> dict[str, LastRun]:
    """LATEST_RUNS' rows -> each job's newest run (of tied rows, the highest id)."""
    newest: dict[str, tuple[int, LastRun]] = {}
    for job, row_id, run_id, status, trigger, schedule, start, end in rows:
        row_id = int(row_id)
        if job in newest and newest[job][0] > row_id:
            continue
        newest[job] = (row_id, LastRun(
            run_id, status, trigger, int(schedule), None if start is None else int(start),
            None if end is None else int(end)))
    return {job: run for job, (_, run) in newest.items()}


def recent_of_job(rows: Iterable[Row]) -> list[LastRun]:
    """RECENT_RUNS' rows -> the runs in the same (newest first) order."""
    return [LastRun(run_id, status, trigger, int(schedule), None if start is None else int(start),
                    None if end is None else int(end))
            for _job, _id, run_id, status, trigger, schedule, start, end in rows]
