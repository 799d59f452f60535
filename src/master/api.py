"""The JSON REST API under /api/v1 (docs/api.md): jobs, runs, workers, cron preview.

Handlers validate what the client sent (``inputs``), ask one service (``ask``, under a
deadline) and shape the answer (``views``); every failure is an ApiError rendered by
the app. Job names in paths use ``JobNameConverter`` (see there), so that ``a%2Fb``
and an empty name get a 400 naming the rule, not a puzzling 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Blueprint, Response, request
from werkzeug.routing import PathConverter

from actors import Address
from cluster.cron import CronError, TimeZoneError, describe_schedule, parse_schedule
from cluster.store import FollowPage, RunPage, RunRecord

from .alerts import AlertManager
from .ask import ask_jobs, ask_runs, ask_workers
from .audit import Author
from .caller import caller
from .context import MasterContext
from .errors import BadRequest, RunNotFound
from .job_list import job_list, job_page, job_page_query
from .jobs import JobManager
from .messages import WorkerManagerMsg
from .inputs import (
    MAX_SAFE_INT,
    check_job_name,
    check_run_id,
    job_from_document,
    query_int,
    query_statuses,
    read_json_object,
)
from .responses import json_response
from .runs import LogManager, RunQuery
from .services import Services
from .views import JobView, SaveOutcome, WorkerView

__all__ = ["JobNameConverter", "UNDOCUMENTED_ENDPOINTS", "api_routes"]

DEFAULT_RUNS_LIMIT = 50
MAX_RUNS_LIMIT = 1000
DEFAULT_PREVIEW_N = 5
MAX_PREVIEW_N = 100
MAX_EXPR_CHARS = 1024

# Routes that exist only to give a precise error; the OpenAPI document does not list them.
UNDOCUMENTED_ENDPOINTS: frozenset[str] = frozenset()
_ACTIONS = ("kill", "run", "pause", "resume", "runs", "durations")  # the routes below /jobs/<name>/


class JobNameConverter(PathConverter):
    """``/jobs/<job:name>``: anything, even empty or with slashes, except a path that
    ends in one of the job's action routes.

    Matching anything lets ``check_job_name`` answer a precise 400 (``a%2Fb`` arrives
    decoded as ``a/b``; ``/jobs/`` names no job) instead of a 404 or a slash redirect.
    Leaving out ``<name>/kill`` and the other actions (never valid names: they hold a
    slash) makes ``PUT /jobs/x/kill`` a 405 of the kill route, as the document says,
    not a 400 about a job named ``x/kill``.
    """

    regex = ".*?" + "".join(f"(?<!/{action})" for action in _ACTIONS)


def by() -> Author:
    """The author of a change made through /api/v1 (written into its audit entry)."""
    return Author(caller(), "api")


def api_routes(ctx: MasterContext, services: Services) -> Blueprint:
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    _job_routes(bp, ctx, services.jobs, services.alerts, services.runs)
    _run_routes(bp, ctx, services.runs)
    _other_routes(bp, ctx, services.workers)
    return bp


def _job_routes(bp: Blueprint, ctx: MasterContext, jobs: JobManager,
                services_alerts: AlertManager, run_log: LogManager) -> None:
    @bp.get("/jobs")
    async def list_jobs() -> Response:
        query = job_page_query(request.args)
        if query is None:
            return json_response(await job_list(ctx, jobs, run_log))
        return json_response(await job_page(ctx, jobs, run_log, query))

    @bp.get("/jobs/<job:name>")
    async def get_job(name: str) -> Response:
        check_job_name(name)
        view: JobView = await ask_jobs(ctx, jobs.get, name)
        return json_response({"job": view.to_json()})

    @bp.put("/jobs/<job:name>")
    async def save_job(name: str) -> Response:
        check_job_name(name)
        document = await read_json_object(request, field="job")
        assert document is not None
        spec = job_from_document(document, name)
        if spec.alerts is not None:  # 422 for a channel that does not exist
            await ask_jobs(ctx, services_alerts.check_job_channels, spec.alerts.channels)
        outcome: SaveOutcome = await ask_jobs(ctx, jobs.save, spec, by())
        previous = None if outcome.previous is None else outcome.previous.to_json()
        return json_response({"job": outcome.view.to_json(), "previous": previous,
                              "warnings": outcome.warnings},
                             201 if outcome.created else 200)

    @bp.delete("/jobs/<job:name>")
    async def delete_job(name: str) -> Response:
        check_job_name(name)
        document: dict[str, Any] = await ask_jobs(ctx, jobs.delete, name, by())
        return json_response({"job": document})

    @bp.post("/jobs/<path:name>/kill")
    async def kill_job(name: str) -> Response:
        check_job_name(name)
        body = await read_json_object(request, field="body", required=False) or {}
        unknown = sorted(set(body) - {"runId"})
        if unknown:
            raise BadRequest(unknown[0], "unknown field (known: runId)")
        # Absent means every run; present must be a run id (null too is refused).
        run_id = check_run_id(body["runId"]) if "runId" in body else None
        await ask_jobs(ctx, jobs.kill, name, run_id, by())
        return json_response({"job": name, "runId": run_id}, 202)

    @bp.post("/jobs/<path:name>/run")
    async def run_job(name: str) -> Response:
        check_job_name(name)
        run_id: str = await ask_jobs(ctx, jobs.run_now, name, by())
        return json_response({"job": name, "runId": run_id}, 202)

    @bp.post("/jobs/<path:name>/pause")
    async def pause_job(name: str) -> Response:
        check_job_name(name)
        view: JobView = await ask_jobs(ctx, jobs.set_paused, name, True, by())
        return json_response({"job": view.to_json()})

    @bp.post("/jobs/<path:name>/resume")
    async def resume_job(name: str) -> Response:
        check_job_name(name)
        view: JobView = await ask_jobs(ctx, jobs.set_paused, name, False, by())
        return json_response({"job": view.to_json()})


def _run_routes(bp: Blueprint, ctx: MasterContext, run_log: LogManager) -> None:
    async def run_page(job_name: str | None) -> Response:
        query = run_query(job_name)
        if (after := request.args.get("after")) is not None:
            if query.cursor is not None:
                raise BadRequest("after", "give either cursor (older pages) or after (newer runs)")
            landed: FollowPage = await ask_runs(ctx, run_log.follow_runs, query, after)
            return json_response({"runs": [r.to_json() for r in landed.records],
                                  "after": landed.after, "caughtUp": landed.caught_up})
        page: RunPage = await ask_runs(ctx, run_log.query_runs, query)
        return json_response({"runs": [r.to_json() for r in page.records],
                              "nextCursor": page.next_cursor})

    @bp.get("/jobs/<path:name>/runs")
    async def job_runs(name: str) -> Response:
        return await run_page(check_job_name(name))

    @bp.get("/runs")
    async def runs() -> Response:
        job = request.args.get("job")
        return await run_page(None if job is None else check_job_name(job, "job"))

    @bp.get("/runs/<path:runId>")
    async def get_run(runId: str) -> Response:  # noqa: N803 (the API's name for it)
        record: RunRecord | None = await ask_runs(ctx, run_log.get_run, runId)
        if record is None:
            raise RunNotFound(runId)
        return json_response({"run": record.to_json()})


def _other_routes(bp: Blueprint, ctx: MasterContext,
                  worker_list: Address[WorkerManagerMsg]) -> None:
    @bp.get("/workers")
    async def workers() -> Response:
        views: list[WorkerView] = await ask_workers(ctx, worker_list)
        return json_response({"workers": [w.to_json() for w in views],
                              "maxClockSkewMs": round(ctx.config.max_clock_skew_s * 1000)})

    @bp.get("/whoami")
    async def whoami() -> Response:
        """Who the token is: the UI shows only the actions its role allows."""
        identity = caller()
        return json_response({"name": identity.name, "role": identity.role.value})

    @bp.get("/cron/preview")
    async def cron_preview() -> Response:
        return json_response(preview(request.args, ctx.clock()))


def preview(args: Mapping[str, str], now_ms: int) -> dict[str, Any]:
    expr = args.get("expr")
    if not expr or not expr.strip():
        raise BadRequest("expr", "a cron expression is required")
    if len(expr) > MAX_EXPR_CHARS:
        raise BadRequest("expr", f"at most {MAX_EXPR_CHARS} characters")
    tz = args.get("tz", "UTC")
    n = query_int(args, "n", default=DEFAULT_PREVIEW_N, low=1, high=MAX_PREVIEW_N)
    assert n is not None
    # `@every` counts from its anchor: an existing job's createdAt (the job page gives
    # it), else the anchor a job created now would get, so previews are truthful.
    anchor = query_int(args, "anchor", default=now_ms, low=0, high=MAX_SAFE_INT)
    assert anchor is not None
    try:
        schedule = parse_schedule(expr, timezone=tz, anchor_ms=anchor)
    except TimeZoneError as exc:
        raise BadRequest("tz", exc.reason) from None
    except CronError as exc:
        raise BadRequest("expr", exc.reason) from None
    times = schedule.preview(n, now_ms)
    # Fewer than n times: the schedule ends; say why (null when it goes on).
    reason = schedule.no_fire_reason() if len(times) < n else None
    return {"expr": expr, "timezone": tz, "describe": describe_schedule(schedule),
            "times": times, "reason": reason}


def run_query(job_name: str | None) -> RunQuery:
    args = request.args
    since = query_int(args, "since", default=None, low=0, high=MAX_SAFE_INT)
    until = query_int(args, "until", default=None, low=0, high=MAX_SAFE_INT)
    limit = query_int(args, "limit", default=DEFAULT_RUNS_LIMIT, low=1, high=MAX_RUNS_LIMIT)
    assert limit is not None
    return RunQuery(job_name=job_name, statuses=query_statuses(args), since_ms=since,
                    until_ms=until, cursor=args.get("cursor"), limit=limit)
