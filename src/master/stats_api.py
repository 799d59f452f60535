"""``GET /api/v1/stats?window=1h|24h|7d``: the dashboard's counts and series.

Counts: jobs and paused jobs (etcd ``jobs/``, as the jobs list counts them), runs
going now (``running/`` keys), live workers (the WorkerManager), failures in the last
24 h (the run store). Series: the window cut in buckets of ``bucketS`` seconds (60 for
1 h, 300 for 24 h, 3600 for 7 d) with runs by status and lateness p50/p99 per bucket,
and the ten jobs that failed most in the window (``cluster.store._stats`` says what
counts and how precise the percentiles are). With the store down the answer is a 503
like every run query; with etcd down, too.

``GET /api/v1/jobs/<name>/durations?limit=``: a job's newest runs (200 by default)
with their times and statuses but no outputs, for the job page's duration plot and
success rate; a page of full runs would carry up to ``limit`` outputs for nothing.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, request

from cluster.store import FAILURE_STATUSES, STATS_WINDOWS, LastRun, StatsSummary

from .ask import ask_jobs, ask_runs, ask_workers, both
from .context import MasterContext
from .errors import BadRequest
from .inputs import check_job_name, query_int
from .job_counts import JobCounts
from .responses import json_response
from .services import Services
from .views import WorkerView

__all__ = ["DEFAULT_WINDOW", "stats_json", "stats_routes"]

DEFAULT_WINDOW = "24h"
DEFAULT_DURATIONS = 200
MAX_DURATIONS = 1000


def stats_routes(ctx: MasterContext, services: Services) -> Blueprint:
    bp = Blueprint("stats", __name__, url_prefix="/api/v1")

    @bp.get("/stats")
    async def stats() -> Response:
        window = request.args.get("window", DEFAULT_WINDOW)
        if window not in STATS_WINDOWS:
            raise BadRequest("window", "one of " + ", ".join(STATS_WINDOWS))
        async def from_etcd() -> tuple[JobCounts, list[WorkerView]]:
            return (await ask_jobs(ctx, services.jobs.counts),
                    await ask_workers(ctx, services.workers))

        async def from_store() -> StatsSummary:
            started = time.perf_counter()
            summary: StatsSummary = await ask_runs(ctx, services.runs.stats, window)
            ctx.metrics.stats_query.labels(window).observe(time.perf_counter() - started)
            return summary

        (counts, workers), summary = await both(from_etcd, from_store)
        return json_response(stats_json(summary, counts, len(workers)))

    @bp.get("/jobs/<path:name>/durations")
    async def durations(name: str) -> Response:
        job = check_job_name(name)
        limit = query_int(request.args, "limit", default=DEFAULT_DURATIONS, low=1,
                          high=MAX_DURATIONS)
        assert limit is not None
        runs: list[LastRun] = await ask_runs(ctx, services.runs.recent_runs, job, limit)
        return json_response({"job": job, "runs": [r.to_json() for r in runs]})

    return bp


def stats_json(s: StatsSummary, counts: JobCounts, workers: int) -> dict[str, Any]:
    return {
        "window": s.window.name,
        "bucketS": s.window.bucket_ms // 1000,
        "counts": {"jobs": counts.jobs, "pausedJobs": counts.paused,
                   "running": counts.running, "failures24h": s.failures_24h,
                   "workers": workers},
        "buckets": list(s.bucket_starts),
        "runs": {status: list(n) for status, n in s.runs.items()},
        "latenessP50Ms": list(s.lateness_p50),
        "latenessP99Ms": list(s.lateness_p99),
        "topFailing": [{"job": t.job_name, "failures": t.failures} for t in s.top_failing],
        "failureStatuses": list(FAILURE_STATUSES),
        "partial": s.partial,
        "completeFrom": s.complete_from_ms,
    }
