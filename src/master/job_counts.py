"""The dashboard's counts from etcd: jobs, paused jobs, runs going now.

Counted as the jobs list shows them: a stored job that is not a valid spec is not a
job (as ``stored_jobs.StoredJob.decode`` says); a run goes on while its ``running/`` key exists (the
worker deletes it once the record is durable, DESIGN §3). Two prefix reads, no watch:
the master keeps no jobs mirror of its own for the API (the SchedulableWatch's is
the announcer's), and a dashboard asks every few seconds at most.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.etcd import Etcd
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec, SpecError

__all__ = ["JobCounts", "job_counts"]


@dataclass(frozen=True, slots=True)
class JobCounts:
    jobs: int
    paused: int
    running: int


async def job_counts(etcd: Etcd, ks: Keyspace) -> JobCounts:
    jobs = paused = 0
    for kv in (await etcd.get_prefix(ks.jobs_prefix)).kvs:
        name = ks.name_from_job_key(kv.key)
        try:
            spec = JobSpec.from_json(kv.value)
        except SpecError:
            continue
        if spec.name == name:  # as StoredJob.decode: stored under its own name
            jobs += 1
            paused += spec.paused
    running = sum(1 for kv in (await etcd.get_prefix(ks.running_prefix())).kvs
                  if ks.parse_running(kv.key) is not None)
    return JobCounts(jobs, paused, running)
