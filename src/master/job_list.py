"""GET /api/v1/jobs: the jobs from etcd with their last runs from the run store.

Both are read at once (the etcd range and the store's one grouped query take a few
hundred ms each with 10,000 jobs, so in turn they would add up). The jobs are etcd's:
with the run store down or slower than LAST_RUNS_TIMEOUT_S they are listed all the
same, each ``lastRun`` null, and ``lastRunsError`` says why. The store is asked once
per list, never once per job (``RunStore.latest_runs``).

Paged (any of ``limit``, ``cursor``, ``q``, ``state`` given; without them the answer is
the whole list, as clients before paging read it): the filters pick among every job,
``total`` counts the jobs they pick, and only the page's jobs are made JobViews (the
next fire of 10,000 cron expressions is what a full list spends its time on) and have
their last runs read (but with ``state=failed``, which needs every job's). The
cursor is the name of the page's last job: jobs are sorted by name, so the next page is
the names after it, whatever was created or deleted meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cluster.cron import describe
from cluster.spec import JobSpec
from cluster.store import FAILURE_STATUSES, LastRun

from .ask import ask, ask_jobs, both
from .context import MasterContext
from .errors import BadRequest, StoreDown, Unavailable
from .inputs import query_int
from .jobs import JobManager, JobSnapshot
from .runs import LogManager
from .views import JobView

__all__ = ["DEFAULT_JOBS_LIMIT", "JOB_STATES", "LAST_RUNS_TIMEOUT_S", "MAX_JOBS_LIMIT",
           "MAX_QUERY_CHARS",
           "JobPageQuery", "job_list", "job_page", "job_page_query", "last_runs"]

# The list waits at most this long for the last runs; then it answers without them.
LAST_RUNS_TIMEOUT_S = 2.0
DEFAULT_JOBS_LIMIT = 100
MAX_JOBS_LIMIT = 1000
MAX_QUERY_CHARS = 200
JOB_STATES = ("paused", "unschedulable", "running", "failed")
PAGE_PARAMETERS = ("limit", "cursor", "q", "state")

T = TypeVar("T")


@dataclass(frozen=True)
class JobPageQuery:
    """One page of the jobs list: at most ``limit`` jobs named after ``cursor``, among
    those whose name, command or schedule in words holds ``q`` (any case) and that are
    in ``state``."""

    limit: int = DEFAULT_JOBS_LIMIT
    cursor: str | None = None
    q: str = ""
    state: str | None = None


def job_page_query(args: Mapping[str, str]) -> JobPageQuery | None:
    """The page asked for; None when no paging parameter is given (the whole list)."""
    if not any(name in args for name in PAGE_PARAMETERS):
        return None
    limit = query_int(args, "limit", default=DEFAULT_JOBS_LIMIT, low=1, high=MAX_JOBS_LIMIT)
    assert limit is not None
    q = args.get("q", "")
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest("q", f"at most {MAX_QUERY_CHARS} characters")
    state = args.get("state") or None
    if state is not None and state not in JOB_STATES:
        raise BadRequest("state", f"one of {', '.join(JOB_STATES)}, got {state[:40]!r}")
    return JobPageQuery(limit=limit, cursor=args.get("cursor") or None, q=q, state=state)


async def job_page(ctx: MasterContext, jobs: JobManager, run_log: LogManager,
                   query: JobPageQuery) -> dict[str, Any]:
    """A page's JSON: the list's, plus ``nextCursor`` (None on the last page) and
    ``total`` (the jobs the filters pick, on every page)."""
    if query.state == "failed":  # every job's last run decides: read them all at once
        snapshot, (runs, why) = await _read_both(ctx, run_log,
                                                 lambda: ask_jobs(ctx, jobs.snapshot))
    else:  # the page's last runs only, once the page is known
        snapshot, runs, why = await ask_jobs(ctx, jobs.snapshot), {}, None
    needle = query.q.casefold()
    picked = [spec for spec in snapshot.specs
              if (not needle or _holds(spec, needle))
              and _in_state(spec, query.state, snapshot, runs)]
    after = [spec for spec in picked if query.cursor is None or spec.name > query.cursor]
    page = after[:query.limit]
    more = len(after) > query.limit
    if query.state != "failed":
        runs, why = await last_runs(ctx, run_log, [spec.name for spec in page])
    return {"jobs": [_listed(snapshot.view(spec), runs) for spec in page],
            "lastRunsError": why,
            "nextCursor": page[-1].name if more else None,
            "total": len(picked)}


def _holds(spec: JobSpec, needle: str) -> bool:
    """The name, the command or the schedule in words (cached: cheap) holds ``needle``."""
    if needle in spec.name.casefold() or needle in spec.command.casefold():
        return True
    words = describe(spec.cron_expr, spec.timezone) if spec.cron_expr else None
    return words is not None and needle in words.casefold()


def _in_state(spec: JobSpec, state: str | None, snapshot: JobSnapshot,
              runs: dict[str, LastRun]) -> bool:
    if state is None:
        return True
    if state == "paused":
        return spec.paused
    if state == "running":
        return bool(snapshot.running.get(spec.name))
    if state == "failed":  # the last run failed (as the alerts count failures)
        run = runs.get(spec.name)
        return run is not None and run.status in FAILURE_STATUSES
    return not snapshot.view(spec).schedulable  # unschedulable


def _listed(view: JobView, runs: dict[str, LastRun]) -> dict[str, Any]:
    body = view.to_json()
    run = runs.get(view.spec.name)
    body["lastRun"] = None if run is None else run.to_json()
    return body


async def job_list(ctx: MasterContext, jobs: JobManager, run_log: LogManager) -> dict[str, Any]:
    """The list's JSON: ``{"jobs": [JobView + lastRun], "lastRunsError": str | None}``."""
    views, (runs, why) = await _read_both(ctx, run_log, lambda: ask_jobs(ctx, jobs.list_jobs))
    return {"jobs": [_listed(view, runs) for view in views], "lastRunsError": why}


async def _read_both(ctx: MasterContext, run_log: LogManager,
                     read_jobs: Callable[[], Awaitable[T]]
                     ) -> tuple[T, tuple[dict[str, LastRun], str | None]]:
    """``read_jobs()`` and the last runs at once; an ApiError of the jobs' read is raised."""
    return await both(read_jobs, lambda: last_runs(ctx, run_log))


async def last_runs(ctx: MasterContext, run_log: LogManager, names: list[str] | None = None
                    ) -> tuple[dict[str, LastRun], str | None]:
    """Each job's newest run (of ``names`` only, when given), and None; or, with the run
    store down or slow, nothing and why."""
    timeout_s = min(ctx.runs_timeout_s, LAST_RUNS_TIMEOUT_S)
    try:
        return await ask(run_log.latest_runs, names, timeout_s=timeout_s, down=StoreDown), None
    except Unavailable as exc:
        return {}, exc.message
