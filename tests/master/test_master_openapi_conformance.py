"""Real answers checked against /openapi.json: each status is declared for its
operation and each JSON body validates against the declared schema (2020-12).

A small, deterministic stand-in for the schemathesis run that will fuzz the API.
"""

from __future__ import annotations

import json

import pytest

from cluster.presence import RunningInfo, WorkerInfo
from cluster.store import open_store

from master_testkit import record

jsonschema = pytest.importorskip("jsonschema")

SPEC = {"command": "echo hi", "cronExpr": "@every 1m", "env": {"A": "1"},
        "selector": {"zone": "a"}}
FORM = "application/x-www-form-urlencoded"
NEVER = {"command": "true", "cronExpr": "0 0 0 1 1 * 2020"}  # no future time

# (method, url, OpenAPI path template, request kwargs)
CASES = [
    ("GET", "/api/v1/jobs", "/api/v1/jobs", {}),
    ("GET", "/api/v1/jobs/app", "/api/v1/jobs/{name}", {}),
    ("GET", "/api/v1/jobs/missing", "/api/v1/jobs/{name}", {}),
    ("GET", "/api/v1/jobs/a%2Fb", "/api/v1/jobs/{name}", {}),
    ("PUT", "/api/v1/jobs/app", "/api/v1/jobs/{name}", {"json": SPEC}),
    ("PUT", "/api/v1/jobs/new", "/api/v1/jobs/{name}", {"json": SPEC}),
    ("PUT", "/api/v1/jobs/past", "/api/v1/jobs/{name}", {"json": NEVER}),  # warnings
    ("GET", "/api/v1/jobs/past", "/api/v1/jobs/{name}", {}),  # schedulable false
    ("PUT", "/api/v1/jobs/bad", "/api/v1/jobs/{name}", {"json": {"command": "x"}}),
    ("PUT", "/api/v1/jobs/bad", "/api/v1/jobs/{name}",
     {"data": b"x" * 300_000, "headers": {"Content-Type": "application/json"}}),
    ("PUT", "/api/v1/jobs/bad", "/api/v1/jobs/{name}",
     {"data": b"{}", "headers": {"Content-Type": "text/plain"}}),
    ("PUT", "/api/v1/jobs/app", "/api/v1/jobs/{name}", {"json": SPEC, "auth": False}),
    ("POST", "/api/v1/jobs/app/kill", "/api/v1/jobs/{name}/kill", {}),
    ("POST", "/api/v1/jobs/app/kill", "/api/v1/jobs/{name}/kill", {"json": {"runId": "r1"}}),
    ("POST", "/api/v1/jobs/app/kill", "/api/v1/jobs/{name}/kill", {"json": {"x": 1}}),
    ("POST", "/api/v1/jobs/app/run", "/api/v1/jobs/{name}/run", {}),
    ("POST", "/api/v1/jobs/missing/run", "/api/v1/jobs/{name}/run", {}),
    ("POST", "/api/v1/jobs/app/pause", "/api/v1/jobs/{name}/pause", {}),
    ("POST", "/api/v1/jobs/app/resume", "/api/v1/jobs/{name}/resume", {}),
    ("GET", "/api/v1/jobs/app/runs?limit=2", "/api/v1/jobs/{name}/runs", {}),
    ("GET", "/api/v1/jobs/app/runs?limit=0", "/api/v1/jobs/{name}/runs", {}),
    ("GET", "/api/v1/runs?status=skipped,succeeded", "/api/v1/runs", {}),
    ("GET", "/api/v1/runs/r-skipped", "/api/v1/runs/{runId}", {}),
    ("GET", "/api/v1/runs/r-1", "/api/v1/runs/{runId}", {}),
    ("GET", "/api/v1/runs/none", "/api/v1/runs/{runId}", {}),
    ("GET", "/api/v1/workers", "/api/v1/workers", {}),
    ("GET", "/api/v1/cron/preview?expr=@daily&n=2", "/api/v1/cron/preview", {}),
    ("GET", "/api/v1/cron/preview?expr=bad", "/api/v1/cron/preview", {}),
    ("GET", "/api/v1/cron/preview?expr=0+0+0+1+1+*+2020", "/api/v1/cron/preview", {}),
    ("GET", "/healthz", "/healthz", {"auth": False}),
    ("GET", "/openapi.json", "/openapi.json", {}),
    ("POST", "/job/save", "/job/save",
     {"form": {"job": json.dumps({"name": "seeded", "command": "true",
                                  "cronExpr": "* * * * *"})}}),
    ("POST", "/job/save", "/job/save",  # with its warnings
     {"form": {"job": json.dumps({"name": "seeded-past", **NEVER})}}),
    ("POST", "/job/save", "/job/save", {"form": {"job": "{"}}),
    ("GET", "/job/list", "/job/list", {}),
    ("POST", "/job/list", "/job/list", {}),
    ("POST", "/job/kill", "/job/kill", {"form": {"name": "app"}}),
    ("POST", "/job/kill", "/job/kill", {"form": {"name": "missing"}}),
    ("GET", "/job/log?name=app&limit=2", "/job/log", {}),
    ("GET", "/job/log", "/job/log", {}),
    ("GET", "/worker/list", "/worker/list", {}),
    ("GET", "/worker/list", "/worker/list", {"auth": False}),
    ("POST", "/job/delete", "/job/delete", {"form": {"name": "seeded"}}),
    ("DELETE", "/api/v1/jobs/new", "/api/v1/jobs/{name}", {}),
    ("DELETE", "/api/v1/jobs/new", "/api/v1/jobs/{name}", {}),
    ("GET", "/missing.js", "/{asset}", {"auth": False}),
]


def body_schema(doc: dict, template: str, method: str, status: int) -> dict:
    responses = doc["paths"][template][method.lower()]["responses"]
    response = responses.get(str(status)) or responses.get("default")
    assert response is not None, f"{method} {template}: status {status} not declared"
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]


async def test_answers_match_the_document(master):
    doc = (await master.get("/openapi.json")).json
    jsonschema.Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})
    await master.put("/api/v1/jobs/app", json=SPEC)
    running = RunningInfo("run-1", "app", "w1", 1, 1, "schedule", 2)
    await master.etcd.put(master.keyspace.running("app", "run-1"), running.to_bytes())
    await master.etcd.put(master.keyspace.worker("w1"),
                          WorkerInfo("w1", "h", 1, labels={"a": "b"}).to_bytes())
    async with open_store(master.config.db_url) as store:
        await store.write_batch([record("r-1", "app", start=5, exit_code=None),
                                 record("r-skipped", "app", start=None, status="skipped"),
                                 record("r-2", "app", start=9, output_truncated=True)])
    seen = set()
    for method, url, template, kwargs in CASES:
        answer = await master.request(method, url, **kwargs)
        assert answer.status < 500, (method, url, answer.body)
        seen.add((template, answer.status))
        schema = body_schema(doc, template, method, answer.status)
        validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]})
        errors = list(validator.iter_errors(answer.json))
        assert not errors, (method, url, answer.status, [e.message for e in errors])
    assert len(seen) >= 30
