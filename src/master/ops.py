"""Operations endpoints: /healthz (no auth), /metrics, /openapi.json.

/healthz checks both dependencies at once, each bounded by HEALTH_TIMEOUT_S: etcd
with a short get (through the JobManager) and the store with a ping (through the
LogManager). 200 when both answer, else 503: a load balancer acts on the status.
Anyone gets ``{"status": "ok"}`` or ``{"status": "unavailable"}`` and nothing else:
a dependency's error names its host, port, user and database, which are for the
operator only. A caller with a valid token gets the detail, for each dependency
``{"ok", "error"?}``, with ``"status": "degraded"`` when one failed. It also gets
``"clock"``: ``{"ok": false, "error"}`` names every worker whose clock is further than
``--max-clock-skew-s`` from the master's (``master.clock_watch``). That is a warning:
``"status": "degraded"``, but the code stays 200 and the anonymous answer ``ok``, since
the master itself serves and fires still run (``worker.locker.fleet_clock``). So is
``"workers"``: ``{"ok": false, "error"}`` names every worker that published a problem
(``spill: disk full``: that worker claims no new fire, the others take its fires).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from quart import Blueprint, Response

from actors import call

from .ask import ask
from .context import MasterContext
from .errors import ApiError, EtcdDown, StoreDown
from .messages import ClockWarnings, WorkerProblems
from .metrics import CONTENT_TYPE
from .openapi import openapi_document
from .responses import json_response
from .services import Services

__all__ = ["HEALTH_TIMEOUT_S", "PUBLIC_ENDPOINTS", "ops_routes"]

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 1.5
PUBLIC_ENDPOINTS = frozenset({"ops.healthz"})


async def _check(probe: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    try:
        await probe()
    except ApiError as exc:
        return {"ok": False, "error": exc.message}
    except Exception:
        log.exception("health check failed unexpectedly")
        return {"ok": False, "error": "internal error; the master's log has the details"}
    return {"ok": True}


def ops_routes(ctx: MasterContext, services: Services,
               has_valid_token: Callable[[], Awaitable[bool]]) -> Blueprint:
    """``has_valid_token()``: whether the current request may see /healthz's detail."""
    bp = Blueprint("ops", __name__)

    async def etcd_probe() -> None:
        await ask(services.jobs.check_etcd, timeout_s=HEALTH_TIMEOUT_S, down=EtcdDown)

    async def store_probe() -> None:
        await ask(services.runs.ping, timeout_s=HEALTH_TIMEOUT_S, down=StoreDown)

    async def warnings_check(message: type[ClockWarnings] | type[WorkerProblems]
                             ) -> dict[str, Any]:
        try:
            warnings = await ask(call, services.workers, message,
                                 timeout_s=HEALTH_TIMEOUT_S, down=EtcdDown)
        except ApiError as exc:
            return {"ok": False, "error": exc.message}
        return {"ok": False, "error": "; ".join(warnings)} if warnings else {"ok": True}

    @bp.get("/healthz")
    async def healthz() -> Response:
        results: dict[str, dict[str, Any]] = {}

        async def run(name: str, probe: Callable[[], Awaitable[None]]) -> None:
            results[name] = await _check(probe)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "etcd", etcd_probe)
            nursery.start_soon(run, "store", store_probe)
        healthy = all(r["ok"] for r in results.values())
        status = 200 if healthy else 503
        if not await has_valid_token():
            return json_response({"status": "ok" if healthy else "unavailable"}, status)
        warnings: dict[str, dict[str, Any]] = {}

        async def warn(name: str, message: type[ClockWarnings] | type[WorkerProblems]) -> None:
            warnings[name] = await warnings_check(message)

        async with trio.open_nursery() as nursery:  # at once: each bounded alike
            nursery.start_soon(warn, "clock", ClockWarnings)
            nursery.start_soon(warn, "workers", WorkerProblems)
        fine = healthy and all(w["ok"] for w in warnings.values())
        return json_response({"status": "ok" if fine else "degraded",
                              "etcd": results["etcd"], "store": results["store"],
                              "clock": warnings["clock"], "workers": warnings["workers"]},
                             status)

    @bp.get("/metrics")
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), content_type=CONTENT_TYPE)

    @bp.get("/openapi.json")
    async def openapi() -> Response:
        return json_response(openapi_document())

    return bp


def metrics_only_routes(ctx: MasterContext) -> Blueprint:
    """/metrics alone, for the unauthenticated ``metrics_port`` listener."""
    bp = Blueprint("metrics", __name__)

    @bp.get("/metrics")
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), content_type=CONTENT_TYPE)

    return bp
