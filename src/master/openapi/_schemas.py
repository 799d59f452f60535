"""The components of the document: the schemas of what the API sends and answers.

Every shape here is the one ``views``, ``responses`` and ``RunRecord.to_json``
produce: nullable fields are ``[type, "null"]``; objects are closed unless they really
are open. The limits come from the modules that enforce them (``cluster.spec``,
``cluster.keyspace``), so the document cannot drift from the checks.
"""

from __future__ import annotations

from typing import Any

from cluster.alerts import CHANNEL_NAME_RE, JOB_KINDS, MAX_CHANNELS_PER_JOB
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
JOB_NAME_LIST_PATTERN = f"^{JOB_NAME_RE.pattern}(,{JOB_NAME_RE.pattern})*$"
# Examples, one per kind of value: they document the API, and the fuzz run sends them
# first, so success paths get exercised too (its master has this job and run).
EXAMPLE_JOB = "nightly-backup"
EXAMPLE_RUN = "run-1"
EXAMPLE_SPEC = {"command": "tar czf /backups/etc.tgz /etc", "cronExpr": "30 2 * * *",
                "timezone": "Europe/Berlin", "concurrency": "forbid", "retries": 2}
ERROR_CODES = ["bad_request", "unauthorized", "cross_origin", "forbidden", "not_found",
               "method_not_allowed", "conflict", "payload_too_large", "unsupported_media_type",
               "misdirected_request", "chain_cycle", "unavailable", "internal",
               "unknown_channel"]


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
        "cronExpr": {"type": "string", "maxLength": 1024,
                     "examples": ["30 2 * * *", "@every 90s"],
                     "description": "5 fields (minutes), 6 (seconds first), 7 (+ year), "
                                    "@yearly/@monthly/@weekly/@daily/@hourly, or "
                                    "@every <duration>; required unless `after` is set, "
                                    "and then empty or absent means the job runs only "
                                    "after its upstream job"},
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
        "after": {"type": ["object", "null"], "properties": {
                      "job": {"type": "string", "pattern": NAME_PATTERN,
                              "description": "the upstream job (it may not exist yet)"},
                      "on": {"type": "string", "enum": ["succeeded", "failed", "completed"],
                             "description": "which of its finished runs start this job: "
                             "succeeded; failed (also timeout, killed, lost); completed "
                             "(any of these; never skipped or replaced). Default succeeded"}},
                  "required": ["job"], "additionalProperties": False,
                  "examples": [{"job": "nightly-dump", "on": "succeeded"}],
                  "description": "run once per matching finished run of that job "
                                 "(trigger `chain`); a cycle is refused with 422"},
        "alerts": {"anyOf": [ref("AlertPolicy"), {"type": "null"}],
                   "description": "which events alert, and where; null = the cluster's "
                                  "default (--alerts-file)"},
    }


CHANNEL_PATTERN = f"^{CHANNEL_NAME_RE.pattern}$"


_EMAIL = {"type": "string", "maxLength": 255, "pattern": r"^[^@\s]+@[^@\s]+$"}


def _text(max_chars: int, nullable_: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", "minLength": 1, "maxLength": max_chars, **extra}
    return {"anyOf": [schema, {"type": "null"}]} if nullable_ else schema


def _channel_shapes(*, secrets: bool) -> tuple[dict[str, Schema], dict[str, Schema]]:
    """The properties of a webhook channel and of an email channel, as
    ``cluster.alerts.parse_channel`` accepts them (secrets only in requests)."""
    webhook: dict[str, Schema] = {
        "type": {"type": "string", "const": "webhook"},
        "url": _text(2048, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$",
                     description="the URL to POST to"),
        "format": {"type": "string", "enum": ["json", "slack"],
                   "description": "the event's JSON (default), or Slack's {text}"},
    }
    email: dict[str, Schema] = {
        "type": {"type": "string", "const": "email"},
        "host": _text(255, description="SMTP server"),
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 587},
        "from": _EMAIL, "to": {"type": "array", "minItems": 1, "maxItems": 32,
                               "items": _EMAIL},
        "username": _text(1024),
        "passwordFile": _text(1024, description="read on the sending host"),
        "passwordEnv": _text(1024, description="a variable of the sending process"),
        "caFile": _text(1024, description="CA to trust for STARTTLS (default: system)"),
        "starttls": {"type": "boolean", "default": True},
    }
    if secrets:
        webhook["secret"] = _text(256, True, description="the HMAC key of "
                                  "X-Scheduler-Signature; omitted: kept; null: removed")
        email["password"] = _text(1024, True, description="inline (prefer passwordFile); "
                                  "omitted: kept; null: removed")
    return webhook, email


def component_schemas() -> dict[str, Schema]:
    spec = _spec_properties()
    running = closed({
        "runId": {"type": "string"}, "worker": {"type": "string"}, "startTime": EPOCH_MS,
        "attempt": {"type": "integer"}, "trigger": {"type": "string"},
    })
    return {
        "JobSpec": closed(spec, ["command"],
                          "A job as a client sends it; name optional in PUT (must equal "
                          "the path); cronExpr required unless `after` is set. Unknown "
                          "fields are rejected."),
        "Job": closed(spec, None, "A stored job spec, every field present."),
        "JobView": closed({
            **spec,
            "nextFire": nullable("integer", description="epoch ms; null when paused or "
                                 "never again (then `reason` says which)"),
            "schedulable": {"type": "boolean", "description":
                            "false when the job can never fire again (its expression has "
                            "no future time), paused or not; or when no live worker "
                            "matches its selector (not paused; nextFire is then when it "
                            "is planned)"},
            "reason": nullable("string", examples=["no time matches before 2100", "paused",
                                                   "no live worker has zone=b"],
                               description="why the job does not fire; null when it "
                               "fires at nextFire"),
            "describe": nullable("string", examples=["at 02:30 every day, Europe/Berlin",
                                                     "every 5 seconds", "every 1 m 30 s"],
                                 description="cronExpr in plain words (the zone named "
                                 "when not UTC); null for a job without cronExpr"),
            "running": {"type": "array", "items": ref("RunningRun")},
            "downstream": {"type": "array", "description": "the jobs chained after this "
                           "one (their `after` names it)", "items": closed({
                               "job": {"type": "string"},
                               "on": {"type": "string",
                                      "enum": ["succeeded", "failed", "completed"]}})},
            "lastRun": {"anyOf": [ref("LastRun"), {"type": "null"}], "description":
                        "only in GET /api/v1/jobs: the job's newest run in the history "
                        "(null: none, or the run store did not answer: see lastRunsError)"}},
            [*spec, "nextFire", "schedulable", "reason", "describe", "running", "downstream"],
            "A job with its next fire time, running instances and downstream jobs."),
        "LastRun": closed({
            "runId": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in RunStatus]},
            "trigger": {"type": "string", "enum": [t.value for t in RunTrigger]},
            "scheduleTime": EPOCH_MS, "startTime": nullable("integer"),
            "endTime": nullable("integer"),
            "durationMs": nullable("integer", minimum=0, description="endTime - startTime; "
                                   "null for a run that never started or did not end"),
        }, None, "A job's newest run (by start time, or planned time if it never started)."),
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
            "skipCount": {"type": "integer", "minimum": 0, "description":
                          "a `skipped` record: how many fires it stands for (every fire "
                          "skipped while one run of the job went on); 0 otherwise"},
            "firstSkipTime": nullable("integer", description="planned time (epoch ms) of "
                                      "the first of those fires; null unless skipped"),
            "lastSkipTime": nullable("integer", description="planned time (epoch ms) of "
                                     "the last of those fires; null unless skipped"),
            "missedFires": nullable("integer", description="a catch-up run: how many fire "
                                    "times within startingDeadline were missed; else null"),
            "firstMissed": nullable("integer", description="a catch-up run: the planned "
                                    "time of the first missed fire (epoch ms); else null"),
        }, None, "One run of a job (times in epoch ms)."),
        "RunPage": closed({"runs": {"type": "array", "items": ref("Run")},
                           "nextCursor": nullable("string")}),
        "FollowPage": closed({
            "runs": {"type": "array", "items": ref("Run"), "description": "oldest first"},
            "after": {"type": "string", "description": "pass it back as `after`"},
            "caughtUp": {"type": "boolean",
                         "description": "false: more runs are waiting, ask again at once"},
        }, None, "Runs recorded after a follow cursor, each once (`schedctl runs -f`)."),
        "Worker": closed({
            "id": {"type": "string"}, "host": {"type": "string"}, "pid": nullable("integer"),
            "labels": STRING_MAP, "version": {"type": "string"},
            "startedAt": nullable("integer", description="epoch milliseconds"),
            "running": nullable("integer"), "capacity": nullable("integer"),
            "wallClock": nullable("integer", description="epoch milliseconds"),
            "lastSeen": {**EPOCH_MS, "description": "master's clock when the info changed"},
            "skewMs": nullable("integer", description="worker clock - master clock"),
            "problems": {"type": "array", "items": {"type": "string"},
                         "description": "what keeps the worker from taking work, one "
                                        "line each, e.g. 'spill: disk full' (it claims no "
                                        "new fire); empty when healthy"},
            "seed": {"type": "boolean", "description":
                     "registered by the seed's worker (an empty value under workers/): "
                     "pid, startedAt, running, capacity, wallClock and skewMs are null"},
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
        "AlertPolicy": closed({
            "on": {"type": "array", "items": {"type": "string",
                                              "enum": [k.value for k in JOB_KINDS]},
                   "description": "events that alert (default: all six)"},
            "channels": {"type": "array", "maxItems": MAX_CHANNELS_PER_JOB,
                         "items": {"type": "string", "pattern": CHANNEL_PATTERN},
                         "description": "names of alert channels (each must exist: else "
                                        "422 unknown_channel)"}},
            [], "A job's alerts: {on: [events], channels: [names]}"),
        "AlertChannel": {"oneOf": [
            closed(_channel_shapes(secrets=True)[0], ["type", "url"], "a webhook"),
            closed(_channel_shapes(secrets=True)[1], ["type", "host", "from", "to"],
                   "an email over SMTP (STARTTLS unless starttls: false)")],
            "description": "A channel as an admin sends it. Omitted secrets (secret, "
                           "password) keep the stored ones."},
        "AlertChannelView": {"oneOf": [
            closed({"name": {"type": "string"}, **_channel_shapes(secrets=False)[0],
                    "hasSecret": {"type": "boolean"}}, ["name", "type", "url", "hasSecret"]),
            closed({"name": {"type": "string"}, **_channel_shapes(secrets=False)[1]},
                   ["name", "type", "host", "from", "to"])],
            "description": "A channel as the API shows it: never its secrets"},
        "Dependency": closed({"ok": {"type": "boolean"}, "error": {"type": "string"}},
                             ["ok"]),
        "HealthSummary": closed({"status": {"type": "string", "enum": ["ok", "unavailable"]}},
                                description="what anyone is told"),
        "Health": closed({"status": {"type": "string", "enum": ["ok", "degraded"]},
                          "etcd": ref("Dependency"), "store": ref("Dependency"),
                          "clock": ref("Dependency"), "workers": ref("Dependency")},
                         description="what a caller with a valid token is told; 'clock' "
                         "names the workers whose clock is further than "
                         "--max-clock-skew-s from the master's, 'workers' those that "
                         "published a problem such as 'spill: disk full' (warnings: 200)"),
    }
