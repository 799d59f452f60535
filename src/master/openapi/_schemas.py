"""The components of the document: the schemas of what the API sends and answers.

Every shape here is the one ``views``, ``responses`` and ``RunRecord.to_json``
produce: nullable fields are ``[type, "null"]``; objects are closed unless they really
are open. The limits come from the modules that enforce them (``cluster.spec``,
``cluster.keyspace``), so the document cannot drift from the checks.
"""

from __future__ import annotations

from typing import Any

from cluster.keyspace import AUDIT_ID_RE, JOB_NAME_RE
from cluster.spec import (ENV_NAME_RE, LABEL_KEY_RE, MAX_COMMAND_BYTES, MAX_ENV_ENTRIES,
                          MAX_LABEL_VALUE_CHARS, MAX_RETRIES, MAX_RETRY_BACKOFF_S,
                          MAX_SELECTOR_ENTRIES, MAX_STARTING_DEADLINE_S, MAX_TIMEOUT_S,
                          USER_NAME_RE)
from cluster.store import AuditAction, RunStatus, RunTrigger
from cluster.tokens import Role

from ..inputs import MAX_SAFE_INT

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
        "catchUp": {"type": "string", "enum": ["last", "all"],
                    "description": "after an outage: `last` (default) runs once for every "
                                   "fire missed within startingDeadline, `all` runs each, "
                                   "in order, at most 100"},
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


def component_schemas() -> dict[str, Schema]:
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
            "missedFires": nullable("integer", description="a catch-up run: how many fire "
                                    "times within startingDeadline were missed; else null"),
            "firstMissed": nullable("integer", description="a catch-up run: the planned "
                                    "time of the first missed fire (epoch ms); else null"),
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
                          "etcd": ref("Dependency"), "store": ref("Dependency"),
                          "clock": ref("Dependency")},
                         description="what a caller with a valid token is told; 'clock' "
                         "names the workers whose clock is further than "
                         "--max-clock-skew-s from the master's (a warning: 200)"),
    }
