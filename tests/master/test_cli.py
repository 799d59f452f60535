"""schedctl against a stand-in master (httpx.MockTransport): requests, output, exit codes."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from master import cli

NOW_S = 1_714_564_800.0  # 2024-05-01T12:00:00Z
NOW_MS = int(NOW_S * 1000)
TOKEN = "s3cret-token"

Route = Callable[[httpx.Request], httpx.Response]


class FakeMaster:
    """Answers (method, path) from a table and records every request it saw."""

    def __init__(self, routes: dict[tuple[str, str], httpx.Response | Route]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"error": {"code": "not_found",
                                                       "message": "no such route"}})
        return answer(request) if callable(answer) else answer

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle), **kwargs)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture(autouse=True)
def utc_and_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time = UTC so printed times are predictable; the token comes from the env."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv(cli.TOKEN_ENV, TOKEN)
    monkeypatch.delenv(cli.URL_ENV, raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def run(fake: FakeMaster, *argv: str, sleep: Callable[[float], None] = time.sleep) -> int:
    return cli.main(list(argv), make_client=fake.client, now_s=lambda: NOW_S, sleep=sleep)


def ok(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=payload)


def error(status: int, code: str, message: str, field: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return httpx.Response(status, json={"error": body})


JOB = {"name": "backup", "command": "tar czf /b.tgz /srv", "cronExpr": "0 3 * * *",
       "timezone": "Europe/Paris", "timeout": 0, "concurrency": "forbid", "paused": False,
       "retries": 2, "retryBackoff": 10, "startingDeadline": 0, "selector": {"zone": "eu"},
       "env": {}, "createdAt": NOW_MS - 86_400_000, "user": "backup", "nextFire": NOW_MS + 65_000,
       "running": [{"runId": "a" * 32, "worker": "w1", "startTime": NOW_MS - 5000,
                    "attempt": 1, "trigger": "schedule"}]}
LONG = {**JOB, "name": "long", "command": "echo " + "x" * 200, "paused": True,
        "nextFire": None, "running": []}
RUN = {"runId": "b" * 32, "jobName": "backup", "worker": "w1", "command": "tar czf /b.tgz",
       "output": "done\n\x1b[31mred\x1b[0m\n", "err": "", "exitCode": 0,
       "status": "succeeded", "trigger": "schedule", "attempt": 1, "planTime": NOW_MS - 60_000,
       "scheduleTime": NOW_MS - 59_990, "startTime": NOW_MS - 59_980,
       "endTime": NOW_MS - 58_480, "outputTruncated": False}


def run_with(run_id: str, start_ms: int) -> dict[str, Any]:
    return {**RUN, "runId": run_id, "startTime": start_ms, "endTime": start_ms + 1000}


# ---------------------------------------------------------------- jobs


def test_jobs_list_prints_an_aligned_table_with_token(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok({"jobs": [JOB, LONG]})})
    assert run(fake, "jobs", "list") == 0
    assert fake.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert str(fake.last.url) == "http://127.0.0.1:8070/api/v1/jobs"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "TZ", "NEXT", "FIRE", "STATE", "RUNNING",
                                "COMMAND"]
    assert "backup" in lines[1] and "2024-05-01T12:01:05+00:00 (in 1m 5s)" in lines[1]
    assert "paused" in lines[2] and "x" * 40 + "…" in lines[2] and "x" * 60 not in lines[2]
    # aligned: every column starts at the same offset on every line
    assert lines[0].index("STATE") == lines[1].index("active") == lines[2].index("paused")


def test_json_output_is_the_api_document_also_after_the_subcommand(
        capsys: pytest.CaptureFixture[str]) -> None:
    payload = {"jobs": [JOB]}
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok(payload)})
    assert run(fake, "--json", "jobs", "list") == 0
    assert json.loads(capsys.readouterr().out) == payload
    assert run(fake, "jobs", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == payload


def test_url_and_token_flags_override_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.URL_ENV, "http://env-host:1")
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok({"jobs": []})})
    assert run(fake, "jobs", "list", "--url", "http://flag-host:9/", "--token", "t2") == 0
    assert str(fake.last.url) == "http://flag-host:9/api/v1/jobs"
    assert fake.last.headers["authorization"] == "Bearer t2"
    assert run(fake, "jobs", "list") == 0
    assert str(fake.last.url) == "http://env-host:1/api/v1/jobs"


def test_jobs_get_shows_spec_next_fire_and_running(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs/backup"): ok({"job": JOB})})
    assert run(fake, "jobs", "get", "backup") == 0
    out = capsys.readouterr().out
    assert "0 3 * * * (Europe/Paris)" in out
    assert "2024-05-01T12:01:05+00:00 (in 1m 5s)" in out
    assert "zone=eu" in out and "a" * 32 in out and "w1" in out
    assert re.search(r"^user +backup$", out, re.M)


def test_jobs_get_without_a_user_says_the_worker_decides(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs/backup"): ok({"job": {**JOB, "user": None}})})
    assert run(fake, "jobs", "get", "backup") == 0
    assert re.search(r"^user +the worker's \(--run-as\)$", capsys.readouterr().out, re.M)


def test_jobs_put_from_flags_sends_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("PUT", "/api/v1/jobs/backup"): ok({"job": JOB, "previous": None}, 201)})
    code = run(fake, "jobs", "put", "backup", "--command", "tar czf /b.tgz /srv",
               "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "--timeout", "30",
               "--concurrency", "replace", "--retries", "2", "--retry-backoff", "1.5",
               "--starting-deadline", "60", "--selector", "zone=eu,disk=ssd",
               "--env", "A=1", "--env", "B=x=y", "--paused", "--user", "backup")
    assert code == 0
    assert fake.last.headers["content-type"] == "application/json"
    assert json.loads(fake.last.content) == {
        "command": "tar czf /b.tgz /srv", "cronExpr": "0 3 * * *", "timezone": "Europe/Paris",
        "timeout": 30, "concurrency": "replace", "retries": 2, "retryBackoff": 1.5,
        "startingDeadline": 60, "selector": {"zone": "eu", "disk": "ssd"},
        "env": {"A": "1", "B": "x=y"}, "paused": True, "user": "backup"}
    assert capsys.readouterr().out.startswith("created job backup; next fire: 2024-05-01T12:01")


def test_jobs_put_flags_override_the_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "backup", "command": "old", "cronExpr": "@daily",
                                "retries": 3}))
    fake = FakeMaster({("PUT", "/api/v1/jobs/backup"): ok({"job": JOB, "previous": JOB})})
    assert run(fake, "jobs", "put", "backup", "--file", str(spec), "--command", "new") == 0
    assert json.loads(fake.last.content) == {"name": "backup", "command": "new",
                                             "cronExpr": "@daily", "retries": 3}
    assert capsys.readouterr().out.startswith("updated job backup")


NEVER_REASON = "no time matches before 2100"
PAST = {**JOB, "name": "past", "cronExpr": "0 0 0 1 1 * 2020", "nextFire": None,
        "schedulable": False, "reason": NEVER_REASON, "running": []}
NEVER_WARNING = ("job 'past' will never fire: no time matches before 2100 "
                 "(cronExpr '0 0 0 1 1 * 2020', timezone 'Europe/Paris')")


def test_jobs_put_prints_the_answer_warnings_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    answer = {"job": PAST, "previous": None, "warnings": [NEVER_WARNING]}
    fake = FakeMaster({("PUT", "/api/v1/jobs/past"): ok(answer, 201)})
    assert run(fake, "jobs", "put", "past", "--command", "true",
               "--cron", "0 0 0 1 1 * 2020") == 0  # saved: a warning is no failure
    printed = capsys.readouterr()
    assert printed.err == f"schedctl: warning: {NEVER_WARNING}\n"
    assert printed.out == f"created job past; next fire: never: {NEVER_REASON}\n"
    assert run(fake, "--json", "jobs", "put", "past", "--command", "true",
               "--cron", "0 0 0 1 1 * 2020") == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == answer  # stdout stays the document
    assert printed.err == f"schedctl: warning: {NEVER_WARNING}\n"


def test_jobs_list_and_get_say_why_a_job_never_fires(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok({"jobs": [PAST, LONG]}),
                       ("GET", "/api/v1/jobs/past"): ok({"job": PAST})})
    assert run(fake, "jobs", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"never: {NEVER_REASON}" in lines[1]
    assert "never" not in lines[2]  # paused: no next fire, but not never
    assert run(fake, "jobs", "get", "past") == 0
    assert re.search(rf"^next fire +never: {NEVER_REASON}$", capsys.readouterr().out, re.M)


def test_preview_says_why_an_expression_never_fires(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/cron/preview"): ok(
        {"expr": "0 0 0 1 1 * 2020", "timezone": "UTC", "times": [], "reason": NEVER_REASON})})
    assert run(fake, "preview", "0 0 0 1 1 * 2020") == 0
    assert capsys.readouterr().out == f"0 0 0 1 1 * 2020 never fires again: {NEVER_REASON}\n"


@pytest.mark.parametrize("argv", [
    ["jobs", "put", "x", "--command", "true"],  # no --cron and no --file
    ["jobs", "put", "x", "--file", "/nonexistent/spec.json"],
    ["jobs", "put", "x", "--command", "true", "--cron", "@daily", "--selector", "novalue"],
    ["jobs", "put", "x", "--command", "true", "--cron", "@daily", "--retries", "-1"],
    ["runs", "--since", "yesterday-ish"],
    ["runs", "--status", "exploded"],
    ["jobs"],
    ["frobnicate"],
])
def test_usage_errors_exit_2_without_calling_the_api(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({})
    assert run(fake, *argv) == 2
    assert fake.requests == []
    assert "Traceback" not in capsys.readouterr().err


def test_usage_error_of_our_own_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(FakeMaster({}), "jobs", "put", "x", "--command", "true") == 2
    assert capsys.readouterr().err == (
        "schedctl: jobs put: --cron required (or give --file)\n")


@pytest.mark.parametrize(("argv", "method", "path", "body", "answer", "printed"), [
    (["jobs", "delete", "backup"], "DELETE", "/api/v1/jobs/backup", None,
     {"job": JOB}, "deleted job backup"),
    (["jobs", "kill", "backup"], "POST", "/api/v1/jobs/backup/kill", None,
     {"job": "backup", "runId": None}, "kill requested for job backup: every running"),
    (["jobs", "kill", "backup", "--run-id", "r1"], "POST", "/api/v1/jobs/backup/kill",
     {"runId": "r1"}, {"job": "backup", "runId": "r1"}, "kill requested for job backup: run r1"),
    (["jobs", "run", "backup"], "POST", "/api/v1/jobs/backup/run", None,
     {"job": "backup", "runId": "c" * 32}, "triggered job backup: run " + "c" * 32),
    (["jobs", "pause", "backup"], "POST", "/api/v1/jobs/backup/pause", None,
     {"job": {**JOB, "paused": True, "nextFire": None}}, "paused job backup; next fire: -"),
    (["jobs", "resume", "backup"], "POST", "/api/v1/jobs/backup/resume", None,
     {"job": JOB}, "resumed job backup; next fire: 2024-05-01T12:01:05+00:00"),
])
def test_job_actions(argv: list[str], method: str, path: str, body: Any, answer: Any,
                     printed: str, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({(method, path): ok(answer, 202 if path.endswith(("kill", "run"))
                                          else 200)})
    assert run(fake, *argv) == 0
    assert (fake.last.method, fake.last.url.path) == (method, path)
    assert (json.loads(fake.last.content) if fake.last.content else None) == body
    assert capsys.readouterr().out.startswith(printed)


# ---------------------------------------------------------------- errors


def test_404_is_exit_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs/x"):
                       error(404, "not_found", 'job "x" does not exist')})
    assert run(fake, "jobs", "get", "x") == 1
    captured = capsys.readouterr()
    assert captured.err == 'schedctl: 404 not_found: job "x" does not exist\n'
    assert captured.out == ""


def test_400_names_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("PUT", "/api/v1/jobs/x"):
                       error(400, "bad_request", "expected 5, 6 or 7 fields, got 4",
                             field="cronExpr")})
    assert run(fake, "jobs", "put", "x", "--command", "true", "--cron", "* * * *") == 1
    assert capsys.readouterr().err == (
        "schedctl: 400 bad_request: cronExpr: expected 5, 6 or 7 fields, got 4\n")


def test_400_message_that_already_names_the_field_is_not_doubled(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/cron/preview"):
                       error(400, "bad_request", "cronExpr: bad", field="cronExpr")})
    assert run(fake, "preview", "nope") == 1
    assert capsys.readouterr().err == "schedctl: 400 bad_request: cronExpr: bad\n"


def test_401_is_exit_4_and_no_token_means_no_header(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(cli.TOKEN_ENV)
    fake = FakeMaster({("GET", "/api/v1/workers"):
                       error(401, "unauthorized", "missing or wrong bearer token")})
    assert run(fake, "workers") == 4
    assert "authorization" not in fake.last.headers
    err = capsys.readouterr().err
    assert err.startswith("schedctl: 401 unauthorized: missing or wrong bearer token")
    assert cli.TOKEN_ENV in err and err.count("\n") == 1


def test_503_is_exit_1_and_says_which_dependency(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"):
                       error(503, "unavailable", "etcd cannot be reached")})
    assert run(fake, "jobs", "list") == 1
    assert capsys.readouterr().err == "schedctl: 503 unavailable: etcd cannot be reached\n"


def test_non_json_error_is_still_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"):
                       httpx.Response(502, text="<html>\n<h1>Bad gateway</h1>\n</html>")})
    assert run(fake, "jobs", "list") == 1
    assert capsys.readouterr().err == "schedctl: 502 http_error: Bad Gateway\n"


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def _hang(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def test_connection_refused_is_exit_3_naming_the_url(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): _refuse})
    assert run(fake, "--url", "http://10.1.2.3:8070", "jobs", "list") == 3
    assert capsys.readouterr().err == ("schedctl: cannot connect to http://10.1.2.3:8070: "
                                       "Connection refused (is the master running?)\n")


def test_read_timeout_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): _hang})
    assert run(fake, "--timeout", "2", "jobs", "list") == 3
    assert "no answer within 2 s" in capsys.readouterr().err


def test_real_closed_port_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert cli.main(["--url", url, "--timeout", "5", "jobs", "list"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"schedctl: cannot connect to {url}: ") and err.count("\n") == 1


def test_bad_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--url", "ftp://x", "jobs", "list"]) == 2
    assert capsys.readouterr().err.startswith("schedctl: --url 'ftp://x'")


# ---------------------------------------------------------------- runs


def test_runs_sends_filters_and_prints_the_cursor(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/runs"): ok({"runs": [RUN], "nextCursor": "cur-2"})})
    code = run(fake, "runs", "--job", "backup", "--status", "failed", "--since", "-1h30m",
               "--until", "2024-05-01T11:00:00+00:00", "--limit", "10", "--cursor", "cur-1")
    assert code == 0
    assert dict(fake.last.url.params) == {
        "job": "backup", "status": "failed", "since": str(NOW_MS - 5_400_000),
        "until": str(NOW_MS - 3_600_000), "limit": "10", "cursor": "cur-1"}
    out = capsys.readouterr().out
    assert "b" * 32 in out and "succeeded" in out and "1.500s" in out
    assert out.rstrip().endswith("(more: add --cursor cur-2)")


def test_follow_prints_each_new_run_once_oldest_first_until_ctrl_c(
        capsys: pytest.CaptureFixture[str]) -> None:
    history = [run_with(f"old{i}", NOW_MS - i * 60_000) for i in range(3, 8)]
    pages = iter([
        [run_with("r2", NOW_MS - 1000), run_with("r1", NOW_MS - 2000), *history],
        [run_with("r3", NOW_MS), run_with("r2", NOW_MS - 1000), run_with("r1", NOW_MS - 2000),
         *history],
        [run_with("r4", NOW_MS + 1), run_with("r3", NOW_MS), *history],
    ])
    fake = FakeMaster({("GET", "/api/v1/runs"): lambda request: ok({"runs": next(pages),
                                                                     "nextCursor": None})})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt

    assert run(fake, "runs", "--job", "backup", "--follow", "--limit", "2", sleep=sleep) == 0
    assert sleeps == [1.0, 1.0, 1.0]
    assert [r.url.params["limit"] for r in fake.requests] == ["100", "100", "100"]
    assert all(r.url.params["job"] == "backup" for r in fake.requests)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("RUN ID")
    # only the newest 2 of the first page; older history is never printed later
    assert [line.split()[0] for line in lines[1:]] == ["r1", "r2", "r3", "r4"]


def test_follow_json_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/runs"): ok({"runs": [RUN], "nextCursor": None})})

    def stop(seconds: float) -> None:
        raise KeyboardInterrupt

    assert run(fake, "--json", "runs", "-f", sleep=stop) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [RUN]


def test_run_shows_output_with_control_characters_escaped(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", f"/api/v1/runs/{RUN['runId']}"): ok({"run": RUN})})
    assert run(fake, "run", str(RUN["runId"])) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred\\x1b[0m" in out
    assert "--- output ---\ndone\n" in out and "--- err: empty ---" in out
    assert "2024-05-01T11:59:00+00:00" in out  # planned


def test_workers_table_warns_about_skew(capsys: pytest.CaptureFixture[str]) -> None:
    workers = [{"id": "w1", "host": "h1", "pid": 10, "labels": {"zone": "eu"},
                "version": "0.1.0", "startedAt": NOW_MS - 3_600_000, "running": 1,
                "capacity": 8, "wallClock": NOW_MS, "lastSeen": NOW_MS - 2000, "skewMs": 12},
               {"id": "w2", "host": "h2", "pid": 11, "labels": {}, "version": "0.1.0",
                "startedAt": NOW_MS, "running": 0, "capacity": 4, "wallClock": NOW_MS,
                "lastSeen": NOW_MS, "skewMs": -2500}]
    fake = FakeMaster({("GET", "/api/v1/workers"): ok({"workers": workers})})
    assert run(fake, "workers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "zone=eu" in lines[1] and "1/8" in lines[1] and "2s ago" in lines[1]
    assert lines[1].endswith("+12ms") and lines[2].endswith("-2500ms !! above 1s")


def test_preview_passes_expr_zone_and_count(capsys: pytest.CaptureFixture[str]) -> None:
    times = [NOW_MS + 60_000, NOW_MS + 120_000]
    fake = FakeMaster({("GET", "/api/v1/cron/preview"):
                       ok({"expr": "* * * * *", "timezone": "Asia/Tokyo", "times": times})})
    assert run(fake, "preview", "* * * * *", "--tz", "Asia/Tokyo", "-n", "2") == 0
    assert dict(fake.last.url.params) == {"expr": "* * * * *", "tz": "Asia/Tokyo", "n": "2"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["#", "TIME", "(Asia/Tokyo)"]
    assert "2024-05-01T21:01:00+09:00" in lines[1] and "2024-05-01T12:01:00+00:00" in lines[1]
    assert lines[2].endswith("in 2m")


# ---------------------------------------------------------------- help and helpers


@pytest.mark.parametrize("argv", [
    [], ["jobs"], ["jobs", "list"], ["jobs", "get"], ["jobs", "put"], ["jobs", "delete"],
    ["jobs", "kill"], ["jobs", "run"], ["jobs", "pause"], ["jobs", "resume"], ["runs"],
    ["run"], ["workers"], ["preview"],
])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: schedctl")
    description = out.split("\n\n")[1]
    assert len(description.split()) >= 3  # a sentence that says what the command does


@pytest.mark.parametrize(("text", "expected_ms"), [
    ("1714564800000", 1_714_564_800_000),
    ("now", NOW_MS),
    ("-30m", NOW_MS - 1_800_000),
    ("-2d", NOW_MS - 172_800_000),
    ("-1h30m", NOW_MS - 5_400_000),
    ("-1.5h", NOW_MS - 5_400_000),
    ("2024-05-01T10:00:00Z", NOW_MS - 7_200_000),
    ("2024-05-01T14:00:00+02:00", NOW_MS),
    ("2024-05-01 11:00", NOW_MS - 3_600_000),  # naive = local time (UTC in these tests)
])
def test_parse_time_ms(text: str, expected_ms: int) -> None:
    assert cli.parse_time_ms(text, NOW_S) == expected_ms


def test_format_table_aligns_and_cells_are_one_line() -> None:
    table = cli.format_table(["A", "LONGER"], [[cli.cell("x\ny"), "1"], ["wide-cell", "2"]])
    assert table.splitlines() == ["A          LONGER", "x y        1", "wide-cell  2"]
    assert cli.cell("abcdef", 4) == "abc…" and cli.cell(None) == "-"


def test_token_file_and_the_warning_for_a_token_flag(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok({"jobs": []})})
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert run(fake, "jobs", "list", "--token-file", str(path)) == 0
    assert fake.last.headers["authorization"] == "Bearer from-file"
    assert "warning" not in capsys.readouterr().err
    assert run(fake, "jobs", "list", "--token", "t2") == 0
    err = capsys.readouterr().err
    assert "warning: --token shows in the process list" in err and "t2" not in err
    assert run(fake, "jobs", "list", "--token", "t2", "--token-file", str(path)) == 2
    assert "not both" in capsys.readouterr().err
    for content in ("", "two words\n"):
        path.write_text(content)
        assert run(fake, "jobs", "list", "--token-file", str(path)) == 2
        assert "must hold one token on one line" in capsys.readouterr().err
    assert run(fake, "jobs", "list", "--token-file", str(tmp_path / "none")) == 2
    assert "cannot read --token-file" in capsys.readouterr().err


def test_audit_prints_who_did_what_and_a_403_is_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    entries = [
        {"id": "0001714564800000-00000000000000a1", "time": NOW_MS, "token": "ci",
         "role": "operate", "action": "kill", "job": "backup", "via": "api",
         "change": {"runId": "r1"}},
        {"id": "0001714564700000-00000000000000a0", "time": NOW_MS - 100_000, "token": "boss",
         "role": "admin", "action": "put", "job": "backup", "via": "seed",
         "change": {"created": True, "spec": {**JOB, "command": "echo \x1b[31m"}}},
    ]
    fake = FakeMaster({
        ("GET", "/api/v1/audit"): ok({"entries": entries, "nextCursor": "abc",
                                      "partial": True}),
        ("DELETE", "/api/v1/jobs/backup"): error(
            403, "forbidden", "token 'ci' has role operate; this needs role admin")})
    assert run(fake, "audit", "--job", "backup", "--token-name", "ci", "--limit", "2") == 0
    assert dict(fake.last.url.params) == {"job": "backup", "token": "ci", "limit": "2"}
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "TOKEN", "ROLE", "ACTION", "JOB", "VIA", "CHANGE"]
    assert lines[1].split()[1:6] == ["ci", "operate", "kill", "backup", "api"]
    assert "run r1" in lines[1] and "created: 0 3 * * * echo" in lines[2]
    assert "\x1b" not in out and "only entries not yet moved" in out
    assert "--cursor abc" in out
    assert run(fake, "jobs", "delete", "backup") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["schedctl: 403 forbidden: token 'ci' has role operate; this needs role "
                   "admin"]


def test_token_add_list_remove_on_a_local_file(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import stat

    from cluster.tokens import hash_token, read_tokens_file

    fake = FakeMaster({})
    path = tmp_path / "tokens"
    assert run(fake, "token", "add", "ci", "--role", "operate") == 2
    assert "--tokens-file" in capsys.readouterr().err
    assert run(fake, "token", "add", "ci", "--role", "operate", "--tokens-file", str(path)) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("sched_") and token not in captured.err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_tokens_file(str(path))[0].digest == hash_token(token)
    assert run(fake, "token", "add", "bad name", "--role", "read", "--tokens-file",
               str(path)) == 2
    assert run(fake, "token", "add", "x", "--role", "root", "--tokens-file", str(path)) == 2
    path.write_text(path.read_text() + "# kept comment\nbroken line\n")
    assert run(fake, "token", "add", "y", "--role", "read", "--tokens-file", str(path)) == 2
    assert "line 3: expected 'name role sha256-hex'" in capsys.readouterr().err
    path.write_text(path.read_text().replace("broken line\n", ""))
    assert run(fake, "token", "add", "y", "--role", "read", "--tokens-file", str(path)) == 0
    capsys.readouterr()
    assert run(fake, "token", "remove", "ci", "--tokens-file", str(path)) == 0
    assert "# kept comment" in path.read_text()
    assert [e.name for e in read_tokens_file(str(path))] == ["y"]
    assert fake.requests == []  # all local: the master is never asked
