"""GET /api/v1/jobs: the jobs from etcd with their last runs from the run store.

Both are read at once (the etcd range and the store's one grouped query take a few
hundred ms each with 10,000 jobs, so in turn they would add up). The jobs are etcd's:
with the run store down or slower than LAST_RUNS_TIMEOUT_S they are listed all the
same, each ``lastRun`` null, and ``lastRunsError`` says why. The store is asked once
per list, never once per job (``RunStore.latest_runs``).
"""

from __future__ import annotations

from typing import Any

import trio

from cluster.store import LastRun

from .ask import ask, ask_jobs
from .context import MasterContext
from .errors import ApiError, StoreDown, Unavailable
from .jobs import JobManager
from .runs import LogManager
from .views import JobView

__all__ = ["LAST_RUNS_TIMEOUT_S", "job_list", "last_runs"]

# The list waits at most this long for the last runs; then it answers without them.
LAST_RUNS_TIMEOUT_S = 2.0


async def job_list(ctx: MasterContext, jobs: JobManager, run_log: LogManager) -> dict[str, Any]:
    """The list's JSON: ``{"jobs": [JobView + lastRun], "lastRunsError": str | None}``."""
    last: tuple[dict[str, LastRun], str | None] = ({}, None)

    async def read_last_runs() -> None:
        nonlocal last
        last = await last_runs(ctx, run_log)

    failure: ApiError | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_last_runs)
        try:
            views: list[JobView] = await ask_jobs(ctx, jobs.list_jobs)
        except ApiError as exc:  # raised after the nursery: not as an exception group
            failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    runs, why = last
    listed = []
    for view in views:
        body = view.to_json()
        run = runs.get(view.spec.name)
        body["lastRun"] = None if run is None else run.to_json()
        listed.append(body)
    return {"jobs": listed, "lastRunsError": why}


async def last_runs(ctx: MasterContext, run_log: LogManager
                    ) -> tuple[dict[str, LastRun], str | None]:
    """Each job's newest run, and None; or, with the run store down or slow, nothing
    and why."""
    timeout_s = min(ctx.runs_timeout_s, LAST_RUNS_TIMEOUT_S)
    try:
        return await ask(run_log.latest_runs, timeout_s=timeout_s, down=StoreDown), None
    except Unavailable as exc:
        return {}, exc.message
