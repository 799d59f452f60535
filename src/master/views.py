"""What the API shows: jobs with their next fire and running instances, workers with
their freshness, and the seed's reduced shapes. Pure data, no I/O.

The JSON shapes here are the contract of docs/api.md and the schemas of openapi/_schemas.py:
change them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cluster.cron import describe
from cluster.presence import RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunRecord

from .schedulable import no_worker_reason

__all__ = ["JobView", "SaveOutcome", "WorkerView", "seed_job", "seed_log_entry"]


PAUSED_REASON = "paused"


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the API shows it: the spec, when it fires next, what runs now.

    `schedulable` is False when the job can never fire again (its expression has no
    future time), paused or not, or when no live worker can run it (its selector
    matches none: ``schedulable.no_worker_reason``; `next_fire_ms` is then when it is
    planned, for whichever worker joins first); `reason` says why the job does not fire
    (one of those, or "paused", which goes before the workers: a paused job fires
    nowhere anyway) and is None when it fires at `next_fire_ms`. A job saved that can
    never fire gets a warning (`SaveOutcome.warnings`); the ``unschedulable`` alert
    follows the workers' side (``schedulable_watch``). `describe` is its cronExpr in
    plain words (``cluster.cron.describe``, cached: cheap for 10,000 jobs); None for a
    job that runs only after another.
    """

    spec: JobSpec
    next_fire_ms: int | None  # None: paused, or the expression has no future time
    running: tuple[RunningInfo, ...]
    schedulable: bool = True
    reason: str | None = None
    downstream: tuple[JobSpec, ...] = ()  # the jobs that run after this one

    @classmethod
    def of(cls, spec: JobSpec, now_ms: int, running: tuple[RunningInfo, ...],
           downstream: tuple[JobSpec, ...] = (),
           fleet: Iterable[Mapping[str, str]] | None = None) -> JobView:
        """``fleet``: the live workers' labels (None: not known, not judged)."""
        schedule = spec.schedule()
        next_fire = schedule.next_after(now_ms)
        if next_fire is None:
            # A chained job without cronExpr fires on its upstream's runs: schedulable.
            chained_only = not spec.cron_expr and spec.after is not None
            return cls(spec, None, running, chained_only, schedule.no_fire_reason(), downstream)
        if spec.paused:
            return cls(spec, None, running, True, PAUSED_REASON, downstream)
        no_worker = None if fleet is None else no_worker_reason(spec.selector, fleet)
        if no_worker is not None:
            return cls(spec, next_fire, running, False, no_worker, downstream)
        return cls(spec, next_fire, running, downstream=downstream)

    def to_json(self) -> dict[str, Any]:
        body = self.spec.to_json()
        body["nextFire"] = self.next_fire_ms
        body["schedulable"] = self.schedulable
        spec = self.spec
        body["describe"] = describe(spec.cron_expr, spec.timezone) if spec.cron_expr else None
        body["reason"] = self.reason
        body["running"] = [
            {"runId": r.run_id, "worker": r.worker_id, "startTime": r.started_ms,
             "attempt": r.attempt, "trigger": r.trigger}
            for r in sorted(self.running, key=lambda r: (r.started_ms, r.run_id))
        ]
        body["downstream"] = [{"job": d.name, "on": d.after.on.value}
                              for d in self.downstream if d.after is not None]
        return body


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    view: JobView
    previous: JobSpec | None  # the valid spec it replaced; None if new (or unreadable)
    created: bool  # no key existed before

    @property
    def warnings(self) -> list[str]:
        """What the saver should know though the save succeeded (the `warnings` list)."""
        view = self.view
        if view.schedulable or view.next_fire_ms is not None:
            return []  # a job no live worker can run now may well run later
        return [f"job {view.spec.name!r} will never fire: {view.reason} "
                f"(cronExpr {view.spec.cron_expr!r}, timezone {view.spec.timezone!r})"]


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A live worker: its own registration plus what the master observed of it."""

    info: WorkerInfo
    last_seen_ms: int  # master's clock when the info last changed
    skew_ms: int | None  # worker clock - master clock at the publication; None: unknown
    # Registered by the seed's worker (an empty value, its IP as the id): all we know is
    # that it is live; the fields it does not publish are null.
    seed: bool = False

    @classmethod
    def seed_registered(cls, worker_id: str, last_seen_ms: int) -> "WorkerView":
        return cls(WorkerInfo(worker_id, host=worker_id, pid=0), last_seen_ms, None, seed=True)

    def to_json(self) -> dict[str, Any]:
        i, known = self.info, not self.seed
        return {
            "id": i.worker_id, "host": i.host, "pid": i.pid if known else None,
            "labels": dict(i.labels), "version": i.version,
            "startedAt": i.started_ms if known else None,
            "running": i.running if known else None,
            "capacity": i.capacity if known else None,
            "wallClock": i.wall_ms if known else None,
            "lastSeen": self.last_seen_ms, "skewMs": self.skew_ms, "seed": self.seed,
            "problems": list(i.problems),
        }


def seed_job(spec: JobSpec) -> dict[str, Any]:
    """The three fields the seed's clients know."""
    return {"name": spec.name, "command": spec.command, "cronExpr": spec.cron_expr}


def seed_log_entry(run: RunRecord) -> dict[str, Any]:
    """One run as the seed's ``/job/log`` printed it (times in epoch ms)."""
    return {
        "jobName": run.job_name, "command": run.command, "err": run.err,
        "output": run.output, "planTime": run.plan_time, "scheduleTime": run.schedule_time,
        "startTime": run.start_time, "endTime": run.end_time,
    }
