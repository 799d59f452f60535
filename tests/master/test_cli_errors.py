"""schedctl against a stand-in master: errors are one line, with the exit code that
says whose fault it is (usage 2, API 1, unreachable 3, unauthorised 4).
"""

from __future__ import annotations

import socket

import httpx
import pytest

from master import cli

from cli_testkit import FakeMaster, error, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)


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
