"""The seed's endpoints, for its existing clients: ``{"errno", "msg", "data"}``.

Same auth and the same services as /api/v1; what differs is the shape. Success is
errno 0 and msg "success"; an error has the proper HTTP status, errno = that status,
the message and ``data: null`` (the seed answered errors as an empty 200, §11). The
error envelope is applied by the app to every path under /job/ and /worker/.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from cluster.store import RunRecord

from .ask import ask_jobs, ask_runs, ask_workers
from .audit import Author
from .caller import caller
from .context import MasterContext
from .inputs import (check_job_name, form_field, job_from_document, parse_json_object,
                     query_int)
from .responses import seed_ok
from .services import Services
from .views import JobView, SaveOutcome, WorkerView, seed_job, seed_log_entry

__all__ = ["seed_routes"]

DEFAULT_LOG_LIMIT = 20
MAX_LOG_LIMIT = 1000
MAX_LOG_OFFSET = 10_000_000


def by() -> Author:
    """The author of a change made through the seed's endpoints (its audit entry)."""
    return Author(caller(), "seed")


def seed_routes(ctx: MasterContext, services: Services) -> Blueprint:
    bp = Blueprint("seed", __name__)
    jobs, run_log = services.jobs, services.runs

    @bp.post("/job/save")
    async def save() -> Response:
        spec = job_from_document(parse_json_object(await form_field(request, "job"), "job"))
        outcome: SaveOutcome = await ask_jobs(ctx, jobs.save, spec, by())
        return seed_ok(None if outcome.previous is None else outcome.previous.to_json(),
                       outcome.warnings)

    @bp.post("/job/delete")
    async def delete() -> Response:
        name = check_job_name(await form_field(request, "name"))
        return seed_ok(await ask_jobs(ctx, jobs.delete, name, by()))

    @bp.route("/job/list", methods=["GET", "POST"])
    async def list_jobs() -> Response:
        views: list[JobView] = await ask_jobs(ctx, jobs.list_jobs)
        return seed_ok([seed_job(v.spec) for v in views])

    @bp.post("/job/kill")
    async def kill() -> Response:
        name = check_job_name(await form_field(request, "name"))
        await ask_jobs(ctx, jobs.kill, name, None, by())
        return seed_ok(None)

    @bp.get("/job/log")
    async def log() -> Response:
        args = request.args
        name = check_job_name(args.get("name", ""))
        offset = query_int(args, "offset", default=0, low=0, high=MAX_LOG_OFFSET)
        limit = query_int(args, "limit", default=DEFAULT_LOG_LIMIT, low=1, high=MAX_LOG_LIMIT)
        assert offset is not None and limit is not None
        records: list[RunRecord] = await ask_runs(ctx, run_log.query_offset, name, offset, limit)
        return seed_ok([seed_log_entry(r) for r in records])

    @bp.get("/worker/list")
    async def workers() -> Response:
        views: list[WorkerView] = await ask_workers(ctx, services.workers)
        return seed_ok([w.info.worker_id for w in views])

    return bp
