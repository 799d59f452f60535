"""The OpenAPI 3.1 description of the master's HTTP API, written by hand.

It must stay true: responses are fuzzed against these schemas, so every shape here
is the one ``views``, ``responses`` and ``RunRecord.to_json`` produce (nullable
fields are ``[type, "null"]``; objects are closed unless they really are open), and
every status an operation can answer is listed. docs/api.md is the prose version.

Each authenticated operation carries ``x-required-role`` (and says it in its
description), taken from ``roles.REQUIRED_ROLES``, the one table the auth hook reads
too; operations that need more than ``read`` also list the 403 a weaker token gets.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from cluster.keyspace import ID_RE, JOB_NAME_RE
from cluster.spec import ENV_NAME_RE, LABEL_KEY_RE, MAX_LABEL_VALUE_CHARS, USER_NAME_RE
from cluster.spec import (MAX_COMMAND_BYTES, MAX_ENV_ENTRIES, MAX_RETRIES,
                          MAX_RETRY_BACKOFF_S, MAX_SELECTOR_ENTRIES, MAX_STARTING_DEADLINE_S,
                          MAX_TIMEOUT_S)
from cluster.keyspace import AUDIT_ID_RE
from cluster.store import AuditAction, RunStatus, RunTrigger
from cluster.tokens import NAME_RE as TOKEN_NAME_RE
from cluster.tokens import Role

from .audit_api import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
from .inputs import MAX_BODY_BYTES, MAX_SAFE_INT
from .roles import REQUIRED_ROLES
from .seed import MAX_LOG_LIMIT, MAX_LOG_OFFSET
from .static import CONTENT_TYPES

__all__ = ["EXAMPLE_JOB", "EXAMPLE_RUN", "EXAMPLE_SPEC", "openapi_document"]

Schema = dict[str, Any]

JSON = "application/json"
NAME_PATTERN = f"^{JOB_NAME_RE.pattern}$"
# Examples, one per kind of value: they document the API, and the fuzz run sends them
# first, so success paths get exercised too (its master has this job and run).
EXAMPLE_JOB = "nightly-backup"
EXAMPLE_RUN = "run-1"
EXAMPLE_SPEC = {"command": "tar czf /backups/etc.tgz /etc", "cronExpr": "30 2 * * *",
                "timezone": "Europe/Berlin", "concurrency": "forbid", "retries": 2}
ERROR_CODES = ["bad_request", "unauthorized", "cross_origin", "forbidden", "not_found",
               "method_not_allowed", "conflict", "payload_too_large", "unsupported_media_type",
               "misdirected_request", "unavailable", "internal"]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


def closed(properties: dict[str, Schema], required: list[str] | None = None,
           description: str | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties) if required is None else required,
                      "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
EPOCH_MS: Schema = {"type": "integer", "description": "epoch milliseconds"}
NO_NUL = "^[^\\x00]*$"
WARNINGS: Schema = {"type": "array", "items": {"type": "string"}, "description":
                    "what the saver should know though the save succeeded, e.g. that the "
                    "job will never fire (its expression has no future time)"}
# What a request may send. Rules JSON Schema cannot state (cron grammar, IANA zone
# names, a command's size in UTF-8 bytes, printable label values) are checked by the
# master, which answers 400 naming the field; the schemas here never reject what the
# master accepts.
SELECTOR: Schema = {"type": "object", "maxProperties": MAX_SELECTOR_ENTRIES,
                    "propertyNames": {"pattern": f"^{LABEL_KEY_RE.pattern}$"},
                    "additionalProperties": {"type": "string",
                                             "maxLength": MAX_LABEL_VALUE_CHARS},
                    "description": "labels a worker must have"}
ENV: Schema = {"type": "object", "maxProperties": MAX_ENV_ENTRIES,
               "propertyNames": {"pattern": f"^{ENV_NAME_RE.pattern}$"},
               "additionalProperties": {"type": "string", "pattern": NO_NUL},
               "description": "extra environment variables (at most 64 KiB in all)"}


def _spec_properties() -> dict[str, Schema]:
    return {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "command": {"type": "string", "minLength": 1, "maxLength": MAX_COMMAND_BYTES,
                    "pattern": NO_NUL,
                    "description": "run with bash -c; not blank, no NUL, at most 64 KiB "
                                   "of UTF-8"},
        "cronExpr": {"type": "string", "minLength": 1, "maxLength": 1024,
                     "examples": ["30 2 * * *", "@every 90s"],
                     "description": "5 fields (minutes), 6 (seconds first), 7 (+ year), "
                                    "@yearly/@monthly/@weekly/@daily/@hourly, or "
                                    "@every <duration>"},
        "timezone": {"type": "string", "minLength": 1, "examples": ["Europe/Berlin"],
                     "description": "IANA zone, default UTC"},
        "timeout": {"type": "number", "minimum": 0, "maximum": MAX_TIMEOUT_S,
                    "description": "seconds; 0 = none"},
        "concurrency": {"type": "string", "enum": ["allow", "forbid", "replace"]},
        "paused": {"type": "boolean"},
        "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES},
        "retryBackoff": {"type": "number", "minimum": 0, "maximum": MAX_RETRY_BACKOFF_S},
        "startingDeadline": {"type": "number", "minimum": 0,
                             "maximum": MAX_STARTING_DEADLINE_S,
                             "description": "seconds a missed fire may be caught up; 0 = none"},
        "selector": SELECTOR,
        "env": ENV,
        "createdAt": nullable("integer", minimum=0, maximum=MAX_SAFE_INT,
                              description="epoch ms; the @every anchor; kept on update"),
        "user": nullable("string", pattern=f"^{USER_NAME_RE.pattern}$",
                         examples=["backup"],
                         description="run as this user; a worker runs the job so only if "
                                     "its --allowed-users lists it (else the run fails); "
                                     "null = the worker's --run-as user (or its own)"),
    }


def _schemas() -> dict[str, Schema]:
    spec = _spec_properties()
    running = closed({
        "runId": {"type": "string"}, "worker": {"type": "string"}, "startTime": EPOCH_MS,
        "attempt": {"type": "integer"}, "trigger": {"type": "string"},
    })
    return {
        "JobSpec": closed(spec, ["command", "cronExpr"],
                          "A job as a client sends it; name optional in PUT (must equal "
                          "the path). Unknown fields are rejected."),
        "Job": closed(spec, None, "A stored job spec, every field present."),
        "JobView": closed({
            **spec,
            "nextFire": nullable("integer", description="epoch ms; null when paused or "
                                 "never again (then `reason` says which)"),
            "schedulable": {"type": "boolean", "description":
                            "false when the job can never fire again (its expression has "
                            "no future time), paused or not"},
            "reason": nullable("string", examples=["no time matches before 2100", "paused"],
                               description="why the job does not fire; null when it "
                               "fires at nextFire"),
            "running": {"type": "array", "items": ref("RunningRun")}},
            None, "A job with its next fire time and running instances."),
        "RunningRun": running,
        "Run": closed({
            "runId": {"type": "string"}, "jobName": {"type": "string"},
            "worker": {"type": "string"}, "command": {"type": "string"},
            "output": {"type": "string"}, "err": {"type": "string"},
            "exitCode": nullable("integer"),
            "status": {"type": "string", "enum": [s.value for s in RunStatus]},
            "trigger": {"type": "string", "enum": [t.value for t in RunTrigger]},
            "attempt": {"type": "integer"}, "planTime": EPOCH_MS, "scheduleTime": EPOCH_MS,
            "startTime": nullable("integer"), "endTime": nullable("integer"),
            "outputTruncated": {"type": "boolean"},
        }, None, "One run of a job (times in epoch ms)."),
        "RunPage": closed({"runs": {"type": "array", "items": ref("Run")},
                           "nextCursor": nullable("string")}),
        "Worker": closed({
            "id": {"type": "string"}, "host": {"type": "string"}, "pid": {"type": "integer"},
            "labels": STRING_MAP, "version": {"type": "string"}, "startedAt": EPOCH_MS,
            "running": {"type": "integer"}, "capacity": {"type": "integer"},
            "wallClock": EPOCH_MS,
            "lastSeen": {**EPOCH_MS, "description": "master's clock when the info changed"},
            "skewMs": {"type": "integer", "description": "worker clock - master clock"},
        }),
        "Error": closed({"error": closed({
            "code": {"type": "string", "enum": ERROR_CODES},
            "message": {"type": "string"},
            "field": {"type": "string"},
        }, ["code", "message"])}),
        "SeedEnvelope": closed({
            "errno": {"type": "integer", "description": "0 on success, else the HTTP status"},
            "msg": {"type": "string"},
            "data": {"description": "the endpoint's answer; null on errors"},
        }),
        "SeedJob": closed({"name": {"type": "string"}, "command": {"type": "string"},
                           "cronExpr": {"type": "string"}}),
        "SeedLogEntry": closed({
            "jobName": {"type": "string"}, "command": {"type": "string"},
            "err": {"type": "string"}, "output": {"type": "string"}, "planTime": EPOCH_MS,
            "scheduleTime": EPOCH_MS, "startTime": nullable("integer"),
            "endTime": nullable("integer"),
        }),
        "AuditEntry": closed({
            "id": {"type": "string", "pattern": f"^{AUDIT_ID_RE.pattern}$",
                   "description": "unique; sorts by time"},
            "time": EPOCH_MS,
            "token": {"type": "string", "description": "the name of the token that made "
                                                       "the change"},
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "action": {"type": "string", "enum": [a.value for a in AuditAction]},
            "job": {"type": "string"},
            "via": {"type": "string", "enum": ["api", "seed"],
                    "description": "/api/v1 or the seed's endpoints"},
            "change": {"type": "object", "description": "put: {created, spec}; delete: "
                                                        "{spec}; run, kill: {runId}; "
                                                        "pause, resume: {}"},
        }, None, "One change: who (token name, role), when, what."),
        "AuditPage": closed({
            "entries": {"type": "array", "items": ref("AuditEntry")},
            "nextCursor": nullable("string"),
            "partial": {"type": "boolean", "description": "true when the run store could "
                                                          "not be read: only the entries "
                                                          "not yet moved out of etcd"}}),
        "Dependency": closed({"ok": {"type": "boolean"}, "error": {"type": "string"}},
                             ["ok"]),
        "HealthSummary": closed({"status": {"type": "string", "enum": ["ok", "unavailable"]}},
                                description="what anyone is told"),
        "Health": closed({"status": {"type": "string", "enum": ["ok", "degraded"]},
                          "etcd": ref("Dependency"), "store": ref("Dependency")},
                         description="what a caller with a valid token is told"),
    }


# ---------------------------------------------------------------- responses


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> Schema:
    return {"$ref": f"#/components/responses/{description}"}


_ERROR_RESPONSES = {
    "BadRequest": "400: the request is malformed; the message and `field` name the problem",
    "Unauthorized": "401: missing or wrong bearer token",
    "Forbidden": "403: the token's role may not do this (see x-required-role)",
    "NotFound": "404: no such job, run or path",
    "Conflict": "409: the job changed concurrently, or the stored job is invalid",
    "PayloadTooLarge": f"413: the body is larger than {MAX_BODY_BYTES} bytes",
    "UnsupportedMediaType": "415: the body is not of the expected media type",
    "Unavailable": "503: etcd or the run store cannot be reached (the message says which)",
    "Error": "any other error, in the same shape",
}
_STATUS_OF = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403",
              "NotFound": "404", "Conflict": "409", "PayloadTooLarge": "413",
              "UnsupportedMediaType": "415", "Unavailable": "503", "Error": "default"}


def _errors(*names: str, seed: bool = False) -> dict[str, Schema]:
    prefix = "Seed" if seed else ""
    return {_STATUS_OF[n]: _error(prefix + n) for n in (*names, "Error")}


def _component_responses() -> dict[str, Schema]:
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
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
               "runs per page"),
    ]
    if with_job:
        params.insert(0, _query("job", {"type": "string", "pattern": NAME_PATTERN,
                                        "examples": [EXAMPLE_JOB]},
                                "only runs of this job"))
    return params


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
            "200": _json(closed({"jobs": {"type": "array", "items": ref("JobView")}}),
                         "the jobs"), **_errors("Unauthorized", "Unavailable")})},
        "/api/v1/jobs/{name}": {
            "parameters": [NAME_PARAM],
            "get": _op("Get a job", {"200": _json(job, "the job"), **_errors(*errors,
                                                                              "Conflict")}),
            "put": _op("Create or replace a job (createdAt of an existing job is kept)", {
                "200": _json(saved, "updated"), "201": _json(saved, "created"),
                **_errors(*errors, "Conflict", "PayloadTooLarge", "UnsupportedMediaType")},
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
    page = _json(ref("RunPage"), "a page of runs, newest first")
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


def _other_paths() -> dict[str, Schema]:
    preview = closed({"expr": {"type": "string"}, "timezone": {"type": "string"},
                      "times": {"type": "array", "items": EPOCH_MS},
                      "reason": nullable("string", examples=["no time matches before 2100"],
                                         description="why there are fewer than n times; "
                                         "null when there are n")})
    text = {"text/plain": {"schema": {"type": "string"}}}
    health = {"oneOf": [ref("HealthSummary"), ref("Health")]}
    return {
        "/api/v1/workers": {"get": _op("Live workers", {
            "200": _json(closed({"workers": {"type": "array", "items": ref("Worker")}}),
                         "the workers, sorted by id"),
            **_errors("Unauthorized", "NotFound", "Unavailable")}, tag="workers")},
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
                       "how many times")], tag="cron")},
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
            **_errors("Conflict", seed=True)},
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


_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _with_roles(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Every authenticated operation gets its role from REQUIRED_ROLES (KeyError if an
    operation has none: a new route needs a decision), and a 403 if read is not enough."""
    for template, item in paths.items():
        for method in _METHODS:
            op = item.get(method)
            if op is None or op.get("security") == []:
                continue
            role = REQUIRED_ROLES[(method.upper(), template)]
            op["x-required-role"] = role.value
            op["description"] = (f"Requires a token with role `{role.value}` or above "
                                 f"(roles: read < operate < admin).")
            if role is not Role.READ:
                seed = template.startswith(("/job/", "/worker/"))
                op["responses"]["403"] = _error(("Seed" if seed else "") + "Forbidden")
    return paths


@functools.lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Scheduler master API", "version": "1",
                 "description": "A distributed crontab's master: jobs in etcd, run "
                                "history in MySQL or SQLite. Times are epoch "
                                "milliseconds. Every operation also answers 421 "
                                "misdirected_request to a Host the master does not "
                                "serve, and 403 cross_origin to a state-changing "
                                "request a browser sent from another origin. See "
                                "docs/api.md."},
        "security": [{"bearer": []}],
        "paths": _with_roles({**_job_paths(), **_run_paths(), **_audit_paths(),
                              **_other_paths(), **_seed_paths(), **_ui_paths()}),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
            "responses": _component_responses(),
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy (callers may not mutate the cached one)."""
    return copy.deepcopy(_document())
