"""schedctl against a stand-in master (httpx.MockTransport): jobs commands, help, and
the helpers (times, tables). Errors and exit codes are in test_cli_errors; runs, workers
and preview in test_cli_runs; tokens and audit in test_cli_tokens.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from master import cli

from cli_testkit import NOW_MS, NOW_S, JOB, LONG, TOKEN, FakeMaster, ok, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)


# ---------------------------------------------------------------- jobs


def test_jobs_list_prints_an_aligned_table_with_token(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok({"jobs": [JOB, LONG]})})
    assert run(fake, "jobs", "list") == 0
    assert fake.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert str(fake.last.url) == "http://127.0.0.1:8070/api/v1/jobs"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "IN", "WORDS", "NEXT", "FIRE", "LAST",
                                "RUN", "STATE", "RUNNING", "COMMAND"]
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
               "--starting-deadline", "60", "--catch-up", "all", "--selector", "zone=eu,disk=ssd",
               "--env", "A=1", "--env", "B=x=y", "--paused", "--user", "backup")
    assert code == 0
    assert fake.last.headers["content-type"] == "application/json"
    assert json.loads(fake.last.content) == {
        "command": "tar czf /b.tgz /srv", "cronExpr": "0 3 * * *", "timezone": "Europe/Paris",
        "timeout": 30, "concurrency": "replace", "retries": 2, "retryBackoff": 1.5,
        "startingDeadline": 60, "catchUp": "all", "selector": {"zone": "eu", "disk": "ssd"},
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
    ["jobs", "lsit"],  # `jobs` alone lists (test_cli_jobs_list)
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
