"""Roles, generated from /openapi.json: every operation under every identity (a read, an
operate and an admin token of the tokens file, the single admin token, no token, a
wrong token) gets exactly the 401/403 its ``x-required-role`` implies, and a permitted
call gets a 2xx (the job, run and worker its examples name are planted first). Each
change a permitted identity made is in the audit trail under that token's name, with
the right action and door; a refused one left no entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from cluster.presence import RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import open_store
from cluster.tokens import Role, format_line, hash_token
from master import openapi_document
from master.openapi import EXAMPLE_JOB, EXAMPLE_RUN, EXAMPLE_SPEC
from master.roles import REQUIRED_ROLES

from master_testkit import TOKEN, make_config, record, running_master

DOC = openapi_document()
METHODS = ("get", "put", "post", "delete")
# Path parameters the document gives no example for (the UI's files).
PATH_DEFAULTS = {"asset": "app.js", "path": "sub/note.txt"}
# What each changing operation writes into the audit trail: (action, via).
ALERT_CHANNELS = "/api/v1/alert-channels"  # not in the (jobs') audit trail
CHANGES = {
    ("PUT", "/api/v1/jobs/{name}"): ("put", "api"),
    ("DELETE", "/api/v1/jobs/{name}"): ("delete", "api"),
    ("POST", "/api/v1/jobs/{name}/kill"): ("kill", "api"),
    ("POST", "/api/v1/jobs/{name}/run"): ("run", "api"),
    ("POST", "/api/v1/jobs/{name}/pause"): ("pause", "api"),
    ("POST", "/api/v1/jobs/{name}/resume"): ("resume", "api"),
    ("POST", "/job/save"): ("put", "seed"),
    ("POST", "/job/delete"): ("delete", "seed"),
    ("POST", "/job/kill"): ("kill", "seed"),
}


@dataclass(frozen=True)
class Caller:
    label: str
    token: str | None  # None: no Authorization header
    name: str | None  # the audit name; None: not a valid token
    role: Role | None


CALLERS = [
    Caller("read", "tok-read-" + "1" * 20, "reader", Role.READ),
    Caller("operate", "tok-operate-" + "2" * 20, "operator", Role.OPERATE),
    Caller("admin", "tok-admin-" + "3" * 20, "boss", Role.ADMIN),
    Caller("single-admin", TOKEN, "admin", Role.ADMIN),
    Caller("none", None, None, None),
    Caller("wrong", "not-a-token-we-know", None, None),
]


def operations() -> list[tuple[str, str]]:
    return [(method.upper(), template) for template, item in DOC["paths"].items()
            for method in METHODS if method in item]


def op_of(method: str, template: str) -> dict[str, Any]:
    return DOC["paths"][template][method.lower()]


def example(schema: dict[str, Any], name: str) -> Any:
    if "examples" in schema:
        return schema["examples"][0]
    return PATH_DEFAULTS[name]


def build_request(method: str, template: str) -> tuple[str, dict[str, Any]]:
    """A request that succeeds for a permitted caller, from the document's examples."""
    item = DOC["paths"][template]
    op = op_of(method, template)
    params = [*item.get("parameters", []), *op.get("parameters", [])]
    url = template
    query = {}
    for param in params:
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", str(example(param["schema"],
                                                                     param["name"])))
        elif param.get("required"):
            query[param["name"]] = example(param["schema"], param["name"])
    kwargs: dict[str, Any] = {}
    if query:
        kwargs["query_string"] = query
    body = op.get("requestBody")
    if body is not None:
        content = body["content"]
        if "application/json" in content and "example" in content["application/json"]:
            kwargs["json"] = content["application/json"]["example"]
        elif "application/x-www-form-urlencoded" in content:
            schema = content["application/x-www-form-urlencoded"]["schema"]
            kwargs["form"] = {field: example(s, field)
                              for field, s in schema["properties"].items()}
    return url, kwargs


def headers_of(caller: Caller) -> dict[str, str]:
    return {} if caller.token is None else {"Authorization": f"Bearer {caller.token}"}


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# roles test\n\n" + "".join(
        format_line(c.name, c.role, hash_token(c.token)) for c in CALLERS
        if c.role is not None and c.name != "admin"))
    return path


@pytest.fixture
async def master(tmp_path, etcd_endpoint, etcd_prefix, tokens_file):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, tokens_file=str(tokens_file))
    async with open_store(config.db_url) as store:
        await store.write_batch([record(EXAMPLE_RUN, EXAMPLE_JOB)])
    async with running_master(config) as m:
        yield m
        await m.etcd.delete_prefix(config.prefix)


async def plant(master, *, paused: bool) -> None:
    """The job, run, worker and alert channel the document's examples name, as etcd
    holds them."""
    keys = master.keyspace
    spec = JobSpec.from_json({**EXAMPLE_SPEC, "name": EXAMPLE_JOB, "paused": paused})
    await master.etcd.put(keys.job(EXAMPLE_JOB), spec.to_bytes())
    running = RunningInfo(EXAMPLE_RUN, EXAMPLE_JOB, "w1", 1_000, 1, "schedule", 2_000)
    await master.etcd.put(keys.running(EXAMPLE_JOB, EXAMPLE_RUN), running.to_bytes())
    await master.etcd.put(keys.worker("w1"), WorkerInfo("w1", "h", 1).to_bytes())
    await master.etcd.put(keys.alert_channel("ops"),  # the channel the examples name
                          b'{"type": "webhook", "url": "http://127.0.0.1:9/x"}')


def test_the_document_declares_a_role_for_every_authenticated_operation():
    declared = {}
    for method, template in operations():
        op = op_of(method, template)
        if op.get("security") == []:
            assert "x-required-role" not in op, (method, template)
            continue
        declared[(method, template)] = Role(op["x-required-role"])
        assert op["x-required-role"] in op["description"]
        assert ("403" in op["responses"]) == (declared[(method, template)] is not Role.READ)
    assert declared == dict(REQUIRED_ROLES)


async def test_every_route_of_the_app_is_public_or_has_a_role(master):
    from master.roles import operation_of
    from master.web import PUBLIC_ENDPOINTS

    for rule in master.app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert operation_of(method, rule.rule) in REQUIRED_ROLES, (method, rule.rule)
    # HEAD is the GET it mirrors: read may, nobody without a token may.
    reader = next(c for c in CALLERS if c.role is Role.READ)
    head = await master.request("HEAD", "/api/v1/jobs", auth=False, headers=headers_of(reader))
    assert head.status == 200
    assert (await master.request("HEAD", "/api/v1/jobs", auth=False)).status == 401


@pytest.mark.parametrize("method, template", operations(), ids=lambda v: v)
async def test_each_identity_gets_what_its_role_allows(master, method, template):
    op = op_of(method, template)
    public = op.get("security") == []
    required = None if public else Role(op["x-required-role"])
    url, kwargs = build_request(method, template)
    changed_by = []
    for caller in CALLERS:
        await plant(master, paused=template.endswith("/resume"))
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {}):
            answer = await master.first_chunk(url, auth=False, headers=headers_of(caller),
                                              **kwargs)  # a stream: never ends by itself
        else:
            answer = await master.request(method, url, auth=False,
                                          headers=headers_of(caller), **kwargs)
        seen = (caller.label, answer.status, answer.body[:300])
        if public:
            assert answer.status not in (401, 403) and answer.status < 400, seen
        elif caller.role is None:
            assert answer.status == 401, seen
        elif not caller.role.allows(required):
            assert answer.status == 403, seen
            body = answer.json
            if template.startswith(("/job/", "/worker/")):
                assert body["errno"] == 403 and body["data"] is None, seen
            else:
                assert body["error"]["code"] == "forbidden", seen
                assert required.value in body["error"]["message"], seen
        else:
            assert 200 <= answer.status < 300, seen
            changed_by.append(caller.name)
    audit = await master.get("/api/v1/audit", query_string={"limit": 1000})
    assert audit.status == 200, audit.body
    entries = audit.json["entries"]
    change = CHANGES.get((method, template))
    if change is None:
        assert entries == [], (method, template)
        return
    assert sorted(e["token"] for e in entries) == sorted(changed_by)
    roles = {c.name: c.role.value for c in CALLERS if c.role is not None}
    for entry in entries:
        assert (entry["action"], entry["via"], entry["job"]) == (*change, EXAMPLE_JOB)
        assert entry["role"] == roles[entry["token"]]
    if change[0] == "put":
        assert entries[0]["change"]["spec"]["command"] == EXAMPLE_SPEC["command"]
    assert TOKEN not in json.dumps(entries)  # names, never tokens


def test_the_table_is_the_documented_policy():
    """read: what changes nothing; operate: run now, kill, pause, resume; admin: put and
    delete, and everything about alert channels, reads too: they hold secrets (docs/api.md
    "Roles"), stated here independently of the table."""
    for (method, template), role in REQUIRED_ROLES.items():
        if template.startswith(ALERT_CHANNELS):
            assert role is Role.ADMIN, (method, template)
            continue
        action = CHANGES.get((method, template), (None,))[0]
        expected = {None: Role.READ, "put": Role.ADMIN, "delete": Role.ADMIN}.get(
            action, Role.OPERATE)
        assert role is expected, (method, template)
    changing = {(m, t) for m, t in operations()
                if m != "GET" and not t.startswith(ALERT_CHANNELS)} - {("POST", "/job/list")}
    assert changing == set(CHANGES)
