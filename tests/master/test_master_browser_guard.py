"""The browser guard (master/browser_guard.py): a foreign Host is refused on every route,
a write from another origin is refused on every route, token or not; what the master
serves, and clients that are not browsers, pass.

In-process app on real etcd; tests/e2e/test_e2e_browser.py does the same with a real
Chromium against a real master.
"""

from __future__ import annotations

import json

import pytest

from master import openapi_document
from master.browser_guard import BrowserGuard, parse_authority, parse_origin
from master.errors import ApiError
from master.openapi import ERROR_CODES
from master.web import create_metrics_app

from master_testkit import make_config, running_master, with_fields

SPEC = {"command": "true", "cronExpr": "@yearly"}
FORM_JOB = {"job": json.dumps({"name": "planted", "command": "id", "cronExpr": "* * * * *"})}
FOREIGN = {"Host": "evil.example:8070"}
# A value for each converter of the URL map: every route can be built without a guess.
SAMPLES = {"JobNameConverter": "guarded", "AssetConverter": "app.js",
           "PathConverter": "sub/note.txt", "UnicodeConverter": "run-1"}


def every_route(app) -> list[tuple[str, str]]:
    """(method, URL) for each method of each rule of the app's URL map."""
    adapter = app.url_map.bind("localhost")
    out = []
    for rule in app.url_map.iter_rules():
        values = {name: SAMPLES[type(conv).__name__] for name, conv in rule._converters.items()}
        for method in sorted(rule.methods or ()):
            url = adapter.build(rule.endpoint, values, method=method)
            assert adapter.match(url, method)[0] == rule.endpoint  # it reaches this rule
            out.append((method, url))
    return out


def error_of(answer) -> tuple[int, str]:
    """(status, code or errno) from either envelope."""
    body = answer.json
    if "errno" in body:
        assert body["data"] is None
        return answer.status, body["errno"]
    return answer.status, body["error"]["code"]


async def job_keys(master) -> list[str]:
    snapshot = await master.etcd.get_prefix(master.keyspace.jobs_prefix)
    return sorted(kv.key for kv in snapshot.kvs)


# ---------------------------------------------------------------- the Host rule


@pytest.mark.parametrize("auth", [True, False], ids=["token", "no-token"])
async def test_a_foreign_host_is_refused_on_every_route(master, auth):
    assert (await master.put("/api/v1/jobs/guarded", json=SPEC)).status == 201
    before = await master.etcd.get(master.keyspace.job("guarded"))
    routes = every_route(master.app)
    documented = {path for path in openapi_document()["paths"]}
    built = {url for _, url in routes}
    assert len(documented) >= 17 and len(routes) >= len(documented)
    assert {"/job/save", "/api/v1/jobs/guarded", "/metrics", "/static/sub/note.txt"} <= built
    for method, url in routes:
        kwargs = {"form": FORM_JOB} if url.startswith("/job/") and method == "POST" else {}
        answer = await master.request(method, url, auth=auth, headers=FOREIGN, **kwargs)
        if method == "HEAD":
            assert answer.status == 421, (method, url)
            continue
        status, code = error_of(answer)
        expected = 421 if url.startswith(("/job/", "/worker/")) else "misdirected_request"
        assert (status, code) == (421, expected), (method, url, answer.body)
        assert "evil.example" in answer.body.decode() and "--allowed-hosts" in answer.body.decode()
        assert "Content-Security-Policy" in answer.headers
    unrouted = await master.request("DELETE", "/no/such/route", auth=auth, headers=FOREIGN)
    assert unrouted.status == 421  # refused before routing's 404 could answer
    after = await master.etcd.get(master.keyspace.job("guarded"))
    assert after.mod_revision == before.mod_revision  # nothing changed
    assert await job_keys(master) == [master.keyspace.job("guarded")]
    metrics = (await master.get("/metrics")).body.decode()
    assert 'route="/job/save",status="421"' in metrics


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "127.0.0.1",
                                  "127.0.0.1:8070", "localhost:1", "[::1]", "[::1]:8070"])
async def test_loopback_names_on_any_port_are_served(master, host):
    assert (await master.get("/api/v1/jobs", headers={"Host": host})).status == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.2", "localhost.evil.example",
                                  "127.0.0.1.evil.example", "[::2]", "127.0.0.1:99999",
                                  "127.0.0.1:", "local host", "localhost/x", ""])
async def test_other_and_malformed_hosts_are_refused(master, host):
    answer = await master.get("/healthz", auth=False, headers={"Host": host})
    assert answer.status == 421 and answer.error["code"] == "misdirected_request"


async def test_allowed_hosts_and_public_url_are_served(config):
    config = with_fields(config, allowed_hosts=("sched.example", ".corp.example"),
                         public_url="https://scheduler.example.org/ui")
    async with running_master(config) as master:
        for host in ("sched.example", "SCHED.example:443", "corp.example", "a.b.corp.example",
                     "scheduler.example.org", "localhost"):
            assert (await master.get("/api/v1/jobs", headers={"Host": host})).status == 200, host
        for host in ("evilcorp.example", "corp.example.evil", "sched.example.evil",
                     "x.sched.example", "example.org", "other.example.org"):
            assert (await master.get("/api/v1/jobs", headers={"Host": host})).status == 421, host


async def test_a_master_bound_to_one_address_serves_that_address_only(tmp_path, etcd_endpoint,
                                                                     etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, api_host="192.0.2.10",
                         allowed_hosts=("sched.example",))
    async with running_master(config) as master:
        for host, status in (("192.0.2.10:8070", 200), ("sched.example", 200),
                             ("localhost", 421), ("127.0.0.1", 421), ("192.0.2.11", 421)):
            answer = await master.get("/api/v1/jobs", headers={"Host": host})
            assert answer.status == status, host


async def test_a_wildcard_master_serves_loopback_names_and_the_address_reached(
        tmp_path, etcd_endpoint, etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, api_host="0.0.0.0")
    async with running_master(config) as master:
        reached = {"scope_base": {"server": ("192.0.2.10", 8070)}}
        mapped = {"scope_base": {"server": ("::ffff:192.0.2.10", 8070)}}
        for host, kwargs, status in (
                ("localhost:8070", {}, 200), ("127.0.0.1", {}, 200),
                ("0.0.0.0", {}, 421), ("192.0.2.10", {}, 421),
                ("192.0.2.10:8070", reached, 200), ("192.0.2.10", mapped, 200),
                ("192.0.2.11", reached, 421), ("evil.example", reached, 421)):
            answer = await master.get("/api/v1/jobs", headers={"Host": host}, **kwargs)
            assert answer.status == status, (host, kwargs)


async def test_the_metrics_port_app_refuses_a_foreign_host_too(master):
    client = create_metrics_app(master.ctx).test_client()
    refused = await client.get("/metrics", headers=FOREIGN)
    assert refused.status_code == 421
    assert (await client.get("/metrics", headers={"Host": "127.0.0.1:9100"})).status_code == 200


# ---------------------------------------------------------------- the Origin rule


async def test_a_cross_origin_form_post_to_job_save_is_refused_and_stores_nothing(master):
    for headers in ({"Origin": "http://evil.example"},
                    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://localhost:9999", "Sec-Fetch-Site": "same-site"},
                    {"Origin": "null"}):
        for auth in (False, True):
            answer = await master.post("/job/save", form=FORM_JOB, headers=headers, auth=auth)
            assert error_of(answer) == (403, 403), (headers, auth, answer.body)
            assert "own origin" in answer.json["msg"]
    assert await master.stored("planted") is None
    assert await job_keys(master) == []


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain or another port: another origin
    {"Sec-Fetch-Site": "something-new"},
    {"Origin": "null"},
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost:8070"},  # the request reached localhost, port 80
    {"Origin": "https://localhost"},
    {"Origin": "http://localhost/"},
    {"Origin": "localhost"},
    {"Origin": "http://sub.localhost"},
    {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
], ids=repr)
async def test_a_write_from_another_origin_is_refused_on_every_method(master, headers):
    assert (await master.put("/api/v1/jobs/kept", json=SPEC)).status == 201
    for method, path, kwargs in (("PUT", "/api/v1/jobs/x", {"json": SPEC}),
                                 ("POST", "/api/v1/jobs/kept/run", {}),
                                 ("POST", "/api/v1/jobs/kept/pause", {}),
                                 ("POST", "/api/v1/jobs/kept/kill", {}),
                                 ("DELETE", "/api/v1/jobs/kept", {}),
                                 ("PATCH", "/api/v1/jobs/kept", {}),
                                 ("BREW", "/api/v1/jobs/kept", {}),
                                 ("POST", "/job/delete", {"form": {"name": "kept"}})):
        answer = await master.request(method, path, headers=headers, **kwargs)
        status, code = error_of(answer)
        assert status == 403 and code in ("cross_origin", 403), (method, path, answer.body)
    assert await job_keys(master) == [master.keyspace.job("kept")]
    assert (await master.get("/api/v1/jobs/kept")).json["job"]["paused"] is False


@pytest.mark.parametrize("headers", [
    {},  # curl, schedctl, httpx: no browser, no Origin
    {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    {"Origin": "http://localhost:80"},
    {"Origin": "HTTP://LOCALHOST"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed by the user
], ids=repr)
async def test_same_origin_and_header_less_writes_pass(master, headers):
    saved = await master.put("/api/v1/jobs/mine", json=SPEC, headers=headers)
    assert saved.status == 201, saved.body
    form = {"job": json.dumps({"name": "seeded", "command": "true", "cronExpr": "@daily"})}
    assert (await master.post("/job/save", form=form, headers=headers)).status == 200
    assert (await master.delete("/api/v1/jobs/mine", headers=headers)).status == 200
    assert await master.stored("seeded") is not None


async def test_the_origin_as_reached_includes_the_port(master):
    same = {"Host": "127.0.0.1:8070", "Origin": "http://127.0.0.1:8070"}
    assert (await master.put("/api/v1/jobs/a", json=SPEC, headers=same)).status == 201
    other_port = {"Host": "127.0.0.1:8070", "Origin": "http://127.0.0.1:8071"}
    assert (await master.put("/api/v1/jobs/b", json=SPEC, headers=other_port)).status == 403
    v6 = {"Host": "[::1]:8070", "Origin": "http://[0:0::1]:8070"}
    assert (await master.put("/api/v1/jobs/c", json=SPEC, headers=v6)).status == 201


async def test_reads_from_another_origin_pass_and_grant_no_cors(master):
    answer = await master.get("/api/v1/jobs", headers={"Origin": "http://evil.example",
                                                       "Sec-Fetch-Site": "cross-site"})
    assert answer.status == 200  # the browser keeps the answer from the page:
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_public_url_origin_is_the_masters_own(config):
    config = with_fields(config, public_url="https://scheduler.example.org")
    async with running_master(config) as master:
        proxied = {"Host": "scheduler.example.org", "Origin": "https://scheduler.example.org"}
        assert (await master.put("/api/v1/jobs/a", json=SPEC, headers=proxied)).status == 201
        direct = {"Host": "localhost", "Origin": "https://scheduler.example.org"}
        assert (await master.put("/api/v1/jobs/b", json=SPEC, headers=direct)).status == 201
        for origin in ("https://scheduler.example.org:8443", "https://evil.example.org",
                       "https://a.scheduler.example.org"):
            refused = await master.put("/api/v1/jobs/c", json=SPEC,
                                       headers={**proxied, "Origin": origin})
            assert refused.status == 403, origin


async def test_guard_runs_before_authentication(master):
    """Token or not, the browser's answer is the same: a page learns nothing more."""
    no_token = await master.put("/api/v1/jobs/x", json=SPEC, auth=False,
                                headers={"Origin": "http://evil.example"})
    assert no_token.status == 403 and no_token.error["code"] == "cross_origin"


# ---------------------------------------------------------------- pieces


def test_authorities_and_origins_parse_strictly():
    assert parse_authority("[::1]:8070") == ("::1", 8070)
    assert parse_authority("LocalHost.") == ("localhost", None)
    assert parse_authority("[::ffff:127.0.0.1]") == ("127.0.0.1", None)
    for bad in ("", "a b", "host:0", "host:65536", "host:", ":80", "[::1", "h\x00", "é.example",
                "user@host", "host:80:80"):
        assert parse_authority(bad) is None, bad
    assert parse_origin("http://x") == ("http", "x", 80)
    assert parse_origin("HTTPS://X:443") == ("https", "x", 443)
    for bad in ("null", "ftp://x", "http://x/", "http://", "x", "http://a b", "http://x?y"):
        assert parse_origin(bad) is None, bad


def test_every_error_code_the_master_answers_is_documented():
    def leaves(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from leaves(sub)

    codes = {cls.code for cls in leaves(ApiError)}
    assert {"cross_origin", "misdirected_request"} <= codes
    assert codes <= set(ERROR_CODES)


def test_the_guard_reads_its_names_from_the_config(config):
    guard = BrowserGuard.from_config(with_fields(
        config, api_host="::", allowed_hosts=(".corp.example", "[::5]"),
        public_url="http://[::6]:81/"))
    assert guard.wildcard and guard.suffixes == ("corp.example",)
    assert {"localhost", "127.0.0.1", "::1", "::5", "::6"} == guard.names
    assert guard.public_origin == ("http", "::6", 81)
