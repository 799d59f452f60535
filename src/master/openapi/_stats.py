"""The path of ``GET /api/v1/stats`` (``master.stats_api``), with its answer's schema."""

from __future__ import annotations

from collections.abc import Callable

from cluster.store import STATS_WINDOWS

from ._schemas import EPOCH_MS, EXAMPLE_JOB, JSON, NAME_PATTERN, Schema, closed, nullable, ref

_COUNT: Schema = {"type": "integer", "minimum": 0}
_SERIES_INT: Schema = {"type": "array", "items": _COUNT}
_LATENESS: Schema = {"type": "array", "items": nullable("integer", minimum=0),
                     "description": "per bucket, ms (null: no started run in it); the "
                                    "upper bound of a quarter-octave histogram bucket: "
                                    "exact for 0, at most 19 % above the true value"}

STATS: Schema = closed({
    "window": {"type": "string", "enum": list(STATS_WINDOWS)},
    "bucketS": {"type": "integer", "enum": sorted({w.bucket_ms // 1000
                                                   for w in STATS_WINDOWS.values()}),
                "description": "bucket width: 60 (1h), 300 (24h), 3600 (7d)"},
    "counts": closed({"jobs": _COUNT, "pausedJobs": _COUNT, "running": _COUNT,
                      "failures24h": _COUNT, "workers": _COUNT}),
    "buckets": {"type": "array", "items": EPOCH_MS,
                "description": "each bucket's start; the last holds now"},
    "runs": {"type": "object", "additionalProperties": _SERIES_INT,
             "description": "runs per bucket by status (only statuses seen)"},
    "latenessP50Ms": _LATENESS,
    "latenessP99Ms": _LATENESS,
    "topFailing": {"type": "array", "maxItems": 10, "items": closed(
        {"job": {"type": "string"}, "failures": _COUNT})},
    "failureStatuses": {"type": "array", "items": {"type": "string"}},
    "partial": {"type": "boolean", "description": "the store is still adding older records "
                                                  "to its rollup: buckets before "
                                                  "completeFrom may miss runs"},
    "completeFrom": nullable("integer", description="epoch ms, or null"),
})


DURATIONS: Schema = closed({
    "job": {"type": "string"},
    "runs": {"type": "array", "items": ref("LastRun"),
             "description": "the job's newest runs, newest first, without outputs"},
})


def stats_paths(_op: Callable[..., Schema], _query: Callable[..., Schema],
                _errors: Callable[..., dict[str, Schema]]) -> dict[str, Schema]:
    """``_paths``'s helpers are passed in: this module is imported by it."""
    name = {"name": "name", "in": "path", "required": True, "description": "job name",
            "schema": {"type": "string", "pattern": NAME_PATTERN, "examples": [EXAMPLE_JOB]}}
    return {"/api/v1/jobs/{name}/durations": {"parameters": [name], "get": _op(
        "A job's newest runs with times and statuses but no outputs (the job page's "
        "duration plot and success rate; history outlives the job)",
        {"200": {"description": "newest first", "content": {JSON: {"schema": DURATIONS}}},
         **_errors("BadRequest", "Unauthorized", "Unavailable")},
        params=[_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 200}, "how many runs")],
        tag="runs")}, "/api/v1/stats": {"get": _op(
        "The dashboard: counts, runs per bucket by status, lateness p50/p99, top failing",
        {"200": {"description": "the window's figures", "content": {JSON: {"schema": STATS}}},
         **_errors("BadRequest", "Unauthorized", "Unavailable")},
        params=[_query("window", {"type": "string", "enum": list(STATS_WINDOWS),
                                  "default": "24h"}, "the window, ending now")],
        tag="stats")}}
