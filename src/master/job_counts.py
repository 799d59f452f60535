"""The dashboard's counts of the jobs: jobs, paused jobs, runs going now.

Counted as the jobs list shows them: a stored job that is not a valid spec is not a
job (``stored_jobs.StoredJob.decode``); a run goes on while its ``running/`` key
exists (the worker deletes it once the record is durable, DESIGN §3). The JobManager
gives the jobs (from its ``JobCache``, never older than the request) and the count
of ``running/`` keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cluster.spec import JobSpec

__all__ = ["JobCounts"]


@dataclass(frozen=True, slots=True)
class JobCounts:
    jobs: int
    paused: int
    running: int

    @classmethod
    def of(cls, specs: Iterable[JobSpec], running: int) -> JobCounts:
        jobs = paused = 0
        for spec in specs:
            jobs += 1
            paused += spec.paused
        return cls(jobs, paused, running)
