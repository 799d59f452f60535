"""Every class of malformed request gets its status and a message naming the problem.

None of them may be answered with a 5xx, an empty body, or anything but the
``{"error": {"code", "message", "field"?}}`` shape.
"""

from __future__ import annotations

import pytest

from cluster.spec import MAX_COMMAND_BYTES

SPEC = {"command": "echo hi", "cronExpr": "*/5 * * * *"}
JSON = {"Content-Type": "application/json"}


def assert_error(answer, status: int, code: str, *, field: str | None = None,
                 mentions: str | None = None) -> None:
    assert answer.status == status, (answer.status, answer.body)
    error = answer.error
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert error["field"] == field
        assert error["message"].startswith(f"{field}: ")
    if mentions is not None:
        assert mentions in error["message"], error["message"]


async def test_bad_json(master):
    answer = await master.put("/api/v1/jobs/x", data=b'{"command": ', headers=JSON)
    assert_error(answer, 400, "bad_request", field="job", mentions="invalid JSON")


async def test_json_that_is_not_an_object(master):
    answer = await master.put("/api/v1/jobs/x", data=b"[1, 2]", headers=JSON)
    assert_error(answer, 400, "bad_request", field="job", mentions="JSON object")


async def test_nan_is_not_json(master):
    answer = await master.put("/api/v1/jobs/x", headers=JSON,
                              data=b'{"command": "x", "cronExpr": "* * * * *", "timeout": NaN}')
    assert_error(answer, 400, "bad_request", field="job", mentions="NaN")


async def test_empty_body(master):
    answer = await master.put("/api/v1/jobs/x", data=b"", headers=JSON)
    assert_error(answer, 400, "bad_request", field="job", mentions="required")


async def test_unknown_field(master):
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "cron": "* * * * *"})
    assert_error(answer, 400, "bad_request", field="cron", mentions="unknown field")


async def test_missing_required_field(master):
    answer = await master.put("/api/v1/jobs/x", json={"command": "true"})
    assert_error(answer, 400, "bad_request", field="cronExpr", mentions="missing")


@pytest.mark.parametrize("path, shown", [
    ("/api/v1/jobs/a%2Fb", "'a/b'"),  # URL-encoded slash: decoded, then refused by name
    ("/api/v1/jobs/a/b", "'a/b'"),
    ("/api/v1/jobs/..", "'..'"),
    ("/api/v1/jobs/%2E%2E", "'..'"),
    ("/api/v1/jobs/.hidden", "'.hidden'"),
    ("/api/v1/jobs/sp%20ace", "'sp ace'"),
])
async def test_bad_names_in_the_path(master, path, shown):
    for method in ("GET", "PUT", "DELETE"):
        answer = await master.request(method, path, json=SPEC)
        assert_error(answer, 400, "bad_request", field="name", mentions=shown)
    answer = await master.post(path + "/kill")
    assert_error(answer, 400, "bad_request", field="name")


async def test_empty_name(master):
    for method in ("GET", "PUT", "DELETE"):
        answer = await master.request(method, "/api/v1/jobs/", json=SPEC)
        assert_error(answer, 400, "bad_request", field="name", mentions="must not be empty")


async def test_overlong_name(master):
    name = "n" * 200
    answer = await master.put(f"/api/v1/jobs/{name}", json=SPEC)
    assert_error(answer, 400, "bad_request", field="name", mentions="at most 128 characters")
    assert (await master.put(f"/api/v1/jobs/{'n' * 128}", json=SPEC)).status == 201


async def test_name_in_body_must_equal_the_path(master):
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "name": "y"})
    assert_error(answer, 400, "bad_request", field="name", mentions="must equal")


async def test_bad_cron(master):
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "cronExpr": "61 * * * *"})
    assert_error(answer, 400, "bad_request", field="cronExpr", mentions="minute")
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "cronExpr": "* * *"})
    assert_error(answer, 400, "bad_request", field="cronExpr", mentions="5, 6 or 7 fields")


async def test_unknown_time_zone(master):
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "timezone": "Mars/Olympus"})
    assert_error(answer, 400, "bad_request", field="timezone", mentions="Mars/Olympus")


async def test_oversize_command(master):
    answer = await master.put("/api/v1/jobs/x", json={**SPEC,
                                                      "command": "x" * (MAX_COMMAND_BYTES + 1)})
    assert_error(answer, 400, "bad_request", field="command", mentions="at most")


async def test_wrong_types(master):
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "retries": "3"})
    assert_error(answer, 400, "bad_request", field="retries", mentions="integer")
    answer = await master.put("/api/v1/jobs/x", json={**SPEC, "concurrency": "sometimes"})
    assert_error(answer, 400, "bad_request", field="concurrency")


async def test_oversize_body(master):
    body = b'{"command": "' + b"x" * (300 * 1024) + b'", "cronExpr": "* * * * *"}'
    answer = await master.put("/api/v1/jobs/x", data=body, headers=JSON)
    assert_error(answer, 413, "payload_too_large", mentions="262144 bytes")
    assert await master.stored("x") is None


async def test_wrong_content_type(master):
    answer = await master.put("/api/v1/jobs/x", data=b"command=true",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(answer, 415, "unsupported_media_type", mentions="application/json")
    answer = await master.post("/api/v1/jobs/x/kill", data=b"{}",
                               headers={"Content-Type": "text/plain"})
    assert_error(answer, 415, "unsupported_media_type")


async def test_missing_and_wrong_token_get_the_same_answer(master):
    missing = await master.get("/api/v1/jobs", auth=False)
    wrong = await master.get("/api/v1/jobs", auth=False,
                             headers={"Authorization": "Bearer not-the-token"})
    other_scheme = await master.get("/api/v1/jobs", auth=False,
                                    headers={"Authorization": "Basic czNjcmV0"})
    for answer in (missing, wrong, other_scheme):
        assert_error(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.body == wrong.body == other_scheme.body
    for path in ("/api/v1/runs", "/metrics", "/openapi.json", "/job/list", "/worker/list",
                 "/api/v1/cron/preview?expr=*+*+*+*+*"):
        assert (await master.get(path, auth=False)).status == 401, path
    # A write without the token must not happen.
    answer = await master.put("/api/v1/jobs/x", json=SPEC, auth=False)
    assert answer.status == 401 and await master.stored("x") is None


async def test_unknown_route_and_wrong_method(master):
    assert_error(await master.get("/api/v1/nothing"), 404, "not_found", mentions="/api/v1/nothing")
    answer = await master.post("/api/v1/jobs")
    assert_error(answer, 405, "method_not_allowed", mentions="GET")
    assert "GET" in answer.headers["Allow"]
    answer = await master.request("OPTIONS", "/api/v1/jobs")  # never an empty 200
    assert_error(answer, 405, "method_not_allowed")


async def test_kill_body_is_checked(master):
    await master.put("/api/v1/jobs/k", json=SPEC)
    answer = await master.post("/api/v1/jobs/k/kill", json={"runId": "../../x"})
    assert_error(answer, 400, "bad_request", field="runId")
    answer = await master.post("/api/v1/jobs/k/kill", json={"run": "abc"})
    assert_error(answer, 400, "bad_request", field="run", mentions="unknown field")
    answer = await master.post("/api/v1/jobs/k/kill", data=b"{", headers=JSON)
    assert_error(answer, 400, "bad_request", field="body")


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
    ("since=-1", "since"), ("until=soon", "until"), ("status=done", "status"),
    ("status=failed,,timeout", "status"), ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ("job=a%2Fb", "job"),
])
async def test_bad_run_queries(master, query, field):
    answer = await master.get(f"/api/v1/runs?{query}")
    assert_error(answer, 400, "bad_request", field=field)


@pytest.mark.parametrize("query, field, mentions", [
    ("", "expr", "required"), ("expr=61+*+*+*+*", "expr", "minute"),
    ("expr=*+*+*+*+*&tz=Nowhere/City", "tz", "Nowhere/City"),
    ("expr=*+*+*+*+*&n=0", "n", "between 1 and 100"),
    ("expr=*+*+*+*+*&n=101", "n", "between 1 and 100"),
])
async def test_bad_cron_previews(master, query, field, mentions):
    answer = await master.get(f"/api/v1/cron/preview?{query}")
    assert_error(answer, 400, "bad_request", field=field, mentions=mentions)


async def test_an_unexpected_crash_is_a_generic_500_with_the_traceback_logged(master, caplog):
    @master.app.get("/api/v1/boom")
    async def boom():
        raise RuntimeError("secret detail")

    answer = await master.get("/api/v1/boom")
    assert_error(answer, 500, "internal")
    assert "secret detail" not in answer.body.decode()
    assert "secret detail" in caplog.text and "Traceback" in caplog.text
