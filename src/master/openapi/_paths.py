"""The paths of the document: every route the master serves, with its parameters and
every response it can give.

Error responses are components (``#/components/responses``) in two shapes: the API's
``{"error": ...}`` and the seed endpoints' envelope (``Seed`` + the name). The role
each operation needs is added after (``_with_roles`` in the package), from the one
table the auth hook reads too.
"""

from __future__ import annotations

import json

from cluster.keyspace import ID_RE
from cluster.store import RunStatus
from cluster.tokens import NAME_RE as TOKEN_NAME_RE

from ..audit_api import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
from ..job_list import DEFAULT_JOBS_LIMIT, JOB_STATES, MAX_JOBS_LIMIT, MAX_QUERY_CHARS
from ..inputs import MAX_BODY_BYTES, MAX_SAFE_INT
from ..seed import MAX_LOG_LIMIT, MAX_LOG_OFFSET
from ..static import CONTENT_TYPES
from ._stats import stats_paths
from ._schemas import (CHANNEL_PATTERN, EPOCH_MS, EXAMPLE_JOB, EXAMPLE_RUN, EXAMPLE_SPEC, JSON,
                       JOB_NAME_LIST_PATTERN, NAME_PATTERN, WARNINGS, Schema, closed,
                       nullable, ref)


def all_paths() -> dict[str, Schema]:
    return {**_job_paths(), **_run_paths(), **_audit_paths(), **_alert_paths(),
            **stats_paths(_op, _query, _errors), **_event_paths(), **_other_paths(),
            **_seed_paths(), **_ui_paths()}


# ---------------------------------------------------------------- responses


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error_ref(description: str) -> Schema:
    return {"$ref": f"#/components/responses/{description}"}


_ERROR_RESPONSES = {
    "BadRequest": "400: the request is malformed; the message and `field` name the problem",
    "Unauthorized": "401: missing or wrong bearer token",
    "Forbidden": "403: the token's role may not do this (see x-required-role)",
    "NotFound": "404: no such job, run or path",
    "Conflict": "409: the job changed concurrently, or the stored job is invalid",
    "PayloadTooLarge": f"413: the body is larger than {MAX_BODY_BYTES} bytes",
    "UnsupportedMediaType": "415: the body is not of the expected media type",
    "Unprocessable": "422: the job names an alert channel that does not exist "
                     "(unknown_channel), or `after` would close a cycle of chained jobs or "
                     "chain a job to itself (chain_cycle); the message names the cycle",
    "Unavailable": "503: etcd or the run store cannot be reached (the message says which)",
    "Error": "any other error, in the same shape",
}
_STATUS_OF = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403",
              "NotFound": "404", "Conflict": "409", "PayloadTooLarge": "413",
              "UnsupportedMediaType": "415", "Unprocessable": "422", "Unavailable": "503",
              "Error": "default"}


def _errors(*names: str, seed: bool = False) -> dict[str, Schema]:
    prefix = "Seed" if seed else ""
    return {_STATUS_OF[n]: error_ref(prefix + n) for n in (*names, "Error")}


def component_responses() -> dict[str, Schema]:
    out = {}
    for name, description in _ERROR_RESPONSES.items():
        out[name] = _json(ref("Error"), description)
        out["Seed" + name] = _json(ref("SeedEnvelope"), description + " (seed envelope)")
    return out


# ---------------------------------------------------------------- parameters


def _path(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


def _query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


NAME_PARAM = _path("name", {"type": "string", "pattern": NAME_PATTERN,
                           "examples": [EXAMPLE_JOB]}, "job name")
EPOCH_QUERY: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INT}


def _run_filters(with_job: bool) -> list[Schema]:
    statuses = "|".join(s.value for s in RunStatus)
    params = [
        _query("status", {"type": "string", "pattern": f"^({statuses})(,({statuses}))*$"},
               "one status, or several comma-separated"),
        _query("since", EPOCH_QUERY, "runs that started at or after (epoch ms)"),
        _query("until", EPOCH_QUERY, "runs that started before (epoch ms)"),
        _query("cursor", {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
               "nextCursor of the previous page (opaque: any other value is a 400)"),
        _query("after", {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
               "follow: `now` for a cursor at the newest run, then the previous answer's "
               "`after`; answers the runs recorded since, oldest first, each once "
               "(a FollowPage; opaque: any other value is a 400; not with cursor)"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
               "runs per page"),
    ]
    if with_job:
        params.insert(0, _query("job", {"type": "string", "pattern": NAME_PATTERN,
                                        "examples": [EXAMPLE_JOB]},
                                "only runs of this job"))
    return params


def _job_page_params() -> list[Schema]:
    paged = "; any of limit, cursor, q, state pages the list (nextCursor and total)"
    return [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_JOBS_LIMIT,
                         "default": DEFAULT_JOBS_LIMIT}, "jobs per page" + paged),
        _query("cursor", {"type": "string"}, "nextCursor of the previous page (the name "
               "of its last job: the page holds the names after it)"),
        _query("q", {"type": "string", "maxLength": MAX_QUERY_CHARS},
               "only jobs whose name, command or schedule in words (describe) holds "
               "this text, in any case"),
        _query("state", {"type": "string", "enum": list(JOB_STATES)},
               "only jobs paused, unschedulable (schedulable false), running now, or "
               "whose last run failed (failed, timeout, lost, killed)"),
    ]


# ---------------------------------------------------------------- operations


def _op(summary: str, responses: dict[str, Schema], *, params: list[Schema] | None = None,
        body: Schema | None = None, public: bool = False, tag: str = "jobs") -> Schema:
    op: Schema = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


def _job_paths() -> dict[str, Schema]:
    job = closed({"job": ref("JobView")})
    accepted = closed({"job": {"type": "string"}, "runId": nullable("string")})
    put_body = {"required": True, "content": {JSON: {"schema": ref("JobSpec"),
                                                     "example": EXAMPLE_SPEC}}}
    kill_body = {"required": False, "content": {JSON: {"schema": closed(
        {"runId": {"type": "string", "pattern": f"^{ID_RE.pattern}$",
                   "examples": [EXAMPLE_RUN]}}, [],
        "absent runId (or no body): every running instance")}}}
    deleted = {"anyOf": [ref("Job"), {"type": "object", "description":
                                      "a stored document that was not a valid spec"}]}
    saved = closed({"job": ref("JobView"),
                    "previous": {"anyOf": [ref("Job"), {"type": "null"}]},
                    "warnings": WARNINGS})
    errors = ("BadRequest", "Unauthorized", "NotFound", "Unavailable")
    return {
        "/api/v1/jobs": {"get": _op("List jobs, sorted by name", {
            "200": _json(closed({
                "jobs": {"type": "array", "items": ref("JobView"),
                         "description": "each with its lastRun"},
                "lastRunsError": nullable("string", description="why no lastRun is known "
                                          "(the run store is down or slow); null when they "
                                          "are"),
                "nextCursor": nullable("string", description="paged only: the cursor of "
                                       "the next page; null on the last"),
                "total": {"type": "integer", "minimum": 0, "description": "paged only: "
                          "the jobs the filters pick, on every page"}},
                required=["jobs", "lastRunsError"]), "the jobs"),
            **_errors("BadRequest", "Unauthorized", "Unavailable")},
            params=_job_page_params())},
        "/api/v1/jobs/{name}": {
            "parameters": [NAME_PARAM],
            "get": _op("Get a job", {"200": _json(job, "the job"), **_errors(*errors,
                                                                              "Conflict")}),
            "put": _op("Create or replace a job (createdAt of an existing job is kept)", {
                "200": _json(saved, "updated"), "201": _json(saved, "created"),
                **_errors(*errors, "Conflict", "PayloadTooLarge", "UnsupportedMediaType",
                          "Unprocessable")},
                body=put_body),
            "delete": _op("Delete a job (workers kill its running instance)", {
                "200": _json(closed({"job": deleted}), "the deleted job"),
                **_errors(*errors, "Conflict")}),
        },
        "/api/v1/jobs/{name}/kill": {"parameters": [NAME_PARAM], "post": _op(
            "Kill one run (runId) or every run of the job", {
                "202": _json(accepted, "kill requested"),
                **_errors(*errors, "PayloadTooLarge", "UnsupportedMediaType")},
            body=kill_body)},
        "/api/v1/jobs/{name}/run": {"parameters": [NAME_PARAM], "post": _op(
            "Run the job now", {"202": _json(accepted, "run requested; runId is the new "
                                             "run's id"), **_errors(*errors)})},
        "/api/v1/jobs/{name}/pause": {"parameters": [NAME_PARAM], "post": _op(
            "Pause the job", {"200": _json(job, "the paused job"),
                              **_errors(*errors, "Conflict")})},
        "/api/v1/jobs/{name}/resume": {"parameters": [NAME_PARAM], "post": _op(
            "Resume the job", {"200": _json(job, "the resumed job"),
                               **_errors(*errors, "Conflict")})},
    }


def _run_paths() -> dict[str, Schema]:
    page = _json({"oneOf": [ref("RunPage"), ref("FollowPage")]},
                 "a page of runs, newest first; with `after`, the runs recorded since")
    errors = _errors("BadRequest", "Unauthorized", "NotFound", "Unavailable")
    return {
        "/api/v1/jobs/{name}/runs": {"parameters": [NAME_PARAM], "get": _op(
            "A job's runs, newest first (history outlives the job: a deleted job's "
            "runs are still listed)", {"200": page, **errors},
            params=_run_filters(False), tag="runs")},
        "/api/v1/runs": {"get": _op("Runs of every job, newest first", {"200": page, **errors},
                                    params=_run_filters(True), tag="runs")},
        "/api/v1/runs/{runId}": {
            "parameters": [_path("runId", {"type": "string", "examples": [EXAMPLE_RUN]},
                                 "run id")],
            "get": _op("One run", {"200": _json(closed({"run": ref("Run")}), "the run"),
                                   **_errors("Unauthorized", "NotFound", "Unavailable")},
                       tag="runs")},
        "/api/v1/runs/{runId}/output": {
            "parameters": [_path("runId", {"type": "string", "examples": [EXAMPLE_RUN]},
                                 "run id")],
            "get": _op("A run's live output, as it is printed, to its end", {
                "200": {"description": "a server-sent event stream: `output` events "
                                       "(`{stream, data, at}`, id = the chunk's number), "
                                       "`truncated`, `eof`, then `end` (`{runId, status, "
                                       "exitCode, endTime, outputTruncated}`) once the run "
                                       "is recorded (docs/api.md, Live output)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                **_errors("BadRequest", "Unauthorized", "NotFound", "Unavailable")},
                params=[{"name": "Last-Event-ID", "in": "header", "required": False,
                         "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
                         "description": "the id of the last output event received: "
                                        "resume after it"}],
                tag="runs")},
    }


def _audit_paths() -> dict[str, Schema]:
    return {"/api/v1/audit": {"get": _op(
        "The audit trail: every change with its token's name, newest first",
        {"200": _json(ref("AuditPage"), "a page of entries"),
         **_errors("BadRequest", "Unauthorized", "NotFound", "Unavailable")},
        params=[
            _query("job", {"type": "string", "pattern": NAME_PATTERN,
                           "examples": [EXAMPLE_JOB]}, "only entries of this job"),
            _query("token", {"type": "string", "pattern": f"^{TOKEN_NAME_RE.pattern}$",
                             "examples": ["admin"]}, "only entries of this token name"),
            _query("cursor", {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
                   "nextCursor of the previous page (opaque: any other value is a 400)"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_LIMIT,
                             "default": DEFAULT_AUDIT_LIMIT}, "entries per page")],
        tag="audit")}}


EVENT_KINDS = ("ready", "reset", "dropped", "job.saved", "job.paused", "job.resumed",
               "job.deleted", "run.started", "run.finished", "worker.joined", "worker.left",
               "alert")


def _event_paths() -> dict[str, Schema]:
    names = JOB_NAME_LIST_PATTERN
    stream = {"description": "a server-sent event stream that does not end by itself: "
                             "blocks `id: <epoch>-<seq>`, `event: <kind>`, `data: <JSON>`, "
                             "and `: heartbeat` comments (with an `id:`) every 15 s; kinds: "
                             + ", ".join(EVENT_KINDS) + " (docs/api.md, Events)",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    return {"/api/v1/events": {"get": _op(
        "Live events: job changes, runs starting and finishing, workers, alerts",
        {"200": stream, **_errors("BadRequest", "Unauthorized")},
        params=[
            _query("job", {"type": "string", "pattern": names, "examples": [EXAMPLE_JOB]},
                   "only the events of these jobs (and the control events): a name, or "
                   "several comma-separated; the parameter may also be repeated"),
            {"name": "Last-Event-ID", "in": "header", "required": False,
             "schema": {"type": "string", "minLength": 1, "maxLength": 64},
             "description": "the id of the last event received: resume after it (or get "
                            "`reset` when it cannot be resumed)"}],
        tag="events")}}


def _alert_paths() -> dict[str, Schema]:
    name = _path("name", {"type": "string", "pattern": CHANNEL_PATTERN, "examples": ["ops"]},
                 "alert channel name")
    one = _json(closed({"channel": ref("AlertChannelView")}), "the channel")
    errors = ("BadRequest", "Unauthorized", "NotFound", "Unavailable")
    body = {"required": True, "content": {JSON: {"schema": ref("AlertChannel"), "example": {
        "type": "webhook", "url": "https://hooks.example/x", "secret": "change-me",
        "format": "json"}}}}
    return {
        "/api/v1/alert-channels": {"get": _op(
            "List the alert channels (never their secrets)",
            {"200": _json(closed({"channels": {"type": "array",
                                               "items": ref("AlertChannelView")}}),
                          "the channels"), **_errors("Unauthorized", "Unavailable")},
            tag="alerts")},
        "/api/v1/alert-channels/{name}": {
            "parameters": [name],
            "get": _op("Get an alert channel", {"200": one, **_errors(*errors)},
                       tag="alerts"),
            "put": _op("Create or replace an alert channel", {
                "200": one, "201": _json(closed({"channel": ref("AlertChannelView")}),
                                         "created"),
                **_errors(*errors, "PayloadTooLarge", "UnsupportedMediaType")},
                body=body, tag="alerts"),
            "delete": _op("Delete an alert channel", {"200": one, **_errors(*errors)},
                          tag="alerts"),
        },
        "/api/v1/alert-channels/{name}/test": {"parameters": [name], "post": _op(
            "Send a test event to the channel (queued in the outbox, sent at once)",
            {"202": _json(closed({"channel": {"type": "string"},
                                  "eventId": {"type": "string"}}), "queued"),
             **_errors(*errors)}, tag="alerts")},
    }


def _other_paths() -> dict[str, Schema]:
    preview = closed({"expr": {"type": "string"}, "timezone": {"type": "string"},
                      "describe": {"type": "string", "examples": ["every 5 seconds"],
                                   "description": "the expression in plain words, the zone "
                                   "named when not UTC (the words the jobs list shows)"},
                      "times": {"type": "array", "items": EPOCH_MS},
                      "reason": nullable("string", examples=["no time matches before 2100"],
                                         description="why there are fewer than n times; "
                                         "null when there are n")})
    text = {"text/plain": {"schema": {"type": "string"}}}
    health = {"oneOf": [ref("HealthSummary"), ref("Health")]}
    return {
        "/api/v1/workers": {"get": _op("Live workers", {
            "200": _json(closed({"workers": {"type": "array", "items": ref("Worker")},
                                 "maxClockSkewMs": {"type": "integer", "description":
                                                    "--max-clock-skew-s: a skewMs beyond "
                                                    "it is warned about"}}),
                         "the workers, sorted by id"),
            **_errors("Unauthorized", "NotFound", "Unavailable")}, tag="workers")},
        "/api/v1/whoami": {"get": _op("The caller: its token's name and role", {
            "200": _json(closed({"name": {"type": "string", "examples": ["ci"],
                                          "description": "the token's name (`admin` for "
                                          "--token's, `anonymous` with no token configured)"},
                                 "role": {"enum": ["read", "operate", "admin"]}}),
                         "who the token is: the UI offers only what its role may do"),
            **_errors("Unauthorized", "NotFound")}, tag="operations")},
        "/api/v1/cron/preview": {"get": _op("Next fire times of a cron expression", {
            "200": _json(preview, "the next times (fewer if the schedule ends)"),
            **_errors("BadRequest", "Unauthorized", "NotFound")}, params=[
                _query("expr", {"type": "string", "minLength": 1, "maxLength": 1024,
                                "examples": ["0 9 * * 1-5"]},
                       "cron expression", required=True),
                _query("tz", {"type": "string", "minLength": 1, "default": "UTC",
                              "examples": ["Europe/Berlin"]},
                       "IANA time zone"),
                _query("n", {"type": "integer", "minimum": 1, "maximum": 100, "default": 5},
                       "how many times"),
                _query("anchor", EPOCH_QUERY, "the `@every` anchor, epoch ms (a job's "
                       "createdAt; default: now, as for a job created now)")], tag="cron")},
        "/healthz": {"get": _op("Health of the master and its dependencies", {
            "200": _json(health, "etcd and the run store answer"),
            "503": _json(health, "one of them does not; with a valid token, each failed "
                                 "dependency has its error"),
            **_errors("NotFound")}, public=True, tag="operations")},
        "/metrics": {"get": _op("Prometheus metrics (text format 0.0.4)", {
            "200": {"description": "metrics", "content": text},
            **_errors("Unauthorized", "NotFound")}, tag="operations")},
        "/openapi.json": {"get": _op("This document", {
            "200": _json({"type": "object"}, "OpenAPI 3.1"),
            **_errors("Unauthorized", "NotFound")}, tag="operations")},
    }


def _ui_paths() -> dict[str, Schema]:
    media_types = sorted({t.split(";")[0] for t in CONTENT_TYPES.values()}
                         | {"application/octet-stream"})
    files = {"description": "the file", "content": {
        media: {"schema": {"type": "string"}} for media in media_types}}
    responses = {"200": files, **_errors("NotFound")}
    return {
        "/": {"get": _op("The web UI (index.html)", responses, public=True, tag="ui")},
        "/{asset}": {"get": _op("A top-level web UI file (app.js, app.css, ...)", responses,
                                params=[_path("asset", {"type": "string"}, "file name")],
                                public=True, tag="ui")},
        "/static/{path}": {"get": _op("Any web UI file", responses, params=[
            _path("path", {"type": "string"}, "path under the UI directory")],
            public=True, tag="ui")},
    }


def _seed_paths() -> dict[str, Schema]:
    def envelope(data: Schema, warnings: bool = False) -> Schema:
        properties = {"errno": {"type": "integer", "const": 0},
                      "msg": {"type": "string", "const": "success"}, "data": data}
        if warnings:  # present only when there are some: the seed's exact shape otherwise
            return _json(closed({**properties, "warnings": WARNINGS}, list(properties)),
                         "success")
        return _json(closed(properties), "success")

    def form(field: str, value: Schema) -> Schema:
        # Open: the seed's master read its one field and ignored the rest, and so do we.
        schema = {"type": "object", "properties": {field: {"type": "string", **value}},
                  "required": [field], "description": "other fields are ignored"}
        return {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "multipart/form-data": {"schema": schema}}}

    errors = _errors("BadRequest", "Unauthorized", "NotFound", "UnsupportedMediaType",
                     "PayloadTooLarge", "Unavailable", seed=True)
    job_name = {"pattern": NAME_PATTERN, "examples": [EXAMPLE_JOB],
                "description": "job name"}
    job_text = json.dumps({"name": EXAMPLE_JOB, **EXAMPLE_SPEC})
    maybe_job = {"anyOf": [ref("Job"), {"type": "null"}]}
    job_list = {"type": "array", "items": ref("SeedJob")}
    return {
        "/job/save": {"post": _op("Seed: save a job; data is the previous job or null", {
            "200": envelope(maybe_job, warnings=True), **errors,
            **_errors("Conflict", "Unprocessable", seed=True)},
            body=form("job", {"minLength": 1, "contentMediaType": JSON,
                              "contentSchema": ref("JobSpec"), "examples": [job_text],
                              "description": "the job spec as JSON, with its name"}),
            tag="seed")},
        "/job/delete": {"post": _op("Seed: delete a job; data is the deleted job", {
            "200": envelope({"type": "object"}), **errors, **_errors("Conflict", seed=True)},
            body=form("name", job_name), tag="seed")},
        "/job/list": {
            "get": _op("Seed: list jobs", {"200": envelope(job_list), **errors}, tag="seed"),
            "post": _op("Seed: list jobs", {"200": envelope(job_list), **errors}, tag="seed")},
        "/job/kill": {"post": _op("Seed: kill every run of a job", {
            "200": envelope({"type": "null"}), **errors},
            body=form("name", job_name), tag="seed")},
        "/job/log": {"get": _op("Seed: a job's runs, newest first", {
            "200": envelope({"type": "array", "items": ref("SeedLogEntry")}), **errors},
            params=[_query("name", {"type": "string", "pattern": NAME_PATTERN,
                                    "examples": [EXAMPLE_JOB]}, "job name",
                           required=True),
                    _query("offset", {"type": "integer", "minimum": 0,
                                      "maximum": MAX_LOG_OFFSET, "default": 0},
                           "runs to skip"),
                    _query("limit", {"type": "integer", "minimum": 1,
                                     "maximum": MAX_LOG_LIMIT, "default": 20},
                           "runs to return")], tag="seed")},
        "/worker/list": {"get": _op("Seed: live worker ids", {
            "200": envelope({"type": "array", "items": {"type": "string"}}), **errors},
            tag="seed")},
    }
