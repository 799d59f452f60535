"""schedctl runs logs RUN [--follow] against a stand-in master: the output as it is
streamed (stdout and stderr apart, escaped), resuming after a break with the last
chunk's number, then how the run ended and the matching exit code."""

from __future__ import annotations

import json

import httpx
import pytest

from cli_testkit import FakeMaster, error, ok, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)

STREAM = {"Content-Type": "text/event-stream; charset=utf-8"}
PATH = "/api/v1/runs/r1/output"


def out(seq: int, data: str, stream: str = "out") -> str:
    body = json.dumps({"stream": stream, "data": data, "at": 1})
    return f"id: {seq}\nevent: output\ndata: {body}\n\n"


def end(status: str, code: int) -> str:
    body = json.dumps({"runId": "r1", "status": status, "exitCode": code, "endTime": 2,
                       "outputTruncated": False})
    return f"event: end\ndata: {body}\n\n"


def test_follow_prints_the_output_as_it_comes_and_resumes_after_a_break(
        capsys: pytest.CaptureFixture[str]) -> None:
    streams = [
        (out(1, "line 1\n") + out(2, "warn \x1b[31m\n", "err") + ": heartbeat\nid: 2\n\n"),
        (out(3, "line 2\n") + "id: 4\nevent: eof\ndata: {}\n\n" + end("succeeded", 0)),
    ]
    seen: list[httpx.Request] = []

    def output(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers=STREAM, content=streams[len(seen) - 1].encode())

    sleeps: list[float] = []
    fake = FakeMaster({("GET", PATH): output})
    assert run(fake, "runs", "logs", "r1", "--follow", sleep=sleeps.append) == 0
    assert "Last-Event-ID" not in seen[0].headers
    assert seen[1].headers["Last-Event-ID"] == "2"  # resumed after the last chunk
    assert sleeps == [0.5]
    printed = capsys.readouterr()
    assert printed.out == "line 1\nline 2\n"
    assert "warn \\x1b[31m\n" in printed.err  # escaped: a job's output drives no terminal
    assert "the stream ended before the run did; reconnecting in 0.5 s" in printed.err
    assert printed.err.rstrip().endswith("[run r1 succeeded, exit 0]")


def test_follow_exits_1_when_the_run_did_not_succeed(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", PATH): httpx.Response(
        200, headers=STREAM, content=(out(1, "boom\n") + end("failed", 3)).encode())})
    assert run(fake, "runs", "logs", "r1", "-f") == 1
    printed = capsys.readouterr()
    assert printed.out == "boom\n"
    assert "schedctl: run r1 failed, exit 3" in printed.err


def test_follow_json_prints_each_event(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", PATH): httpx.Response(
        200, headers=STREAM, content=(out(1, "a\n") + end("succeeded", 0)).encode())})
    assert run(fake, "runs", "logs", "r1", "--follow", "--json") == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["event"] for x in lines] == ["output", "end"]
    assert lines[0]["data"]["data"] == "a\n"


def test_an_unknown_run_is_the_apis_error(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", PATH): error(404, "not_found", "run r1 not found")})
    assert run(fake, "runs", "logs", "r1", "--follow") == 1
    assert "404 not_found" in capsys.readouterr().err


def test_without_follow_it_prints_the_records_output(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/runs/r1"): ok({"run": {"runId": "r1", "output": "hi\n",
                                                                "err": "oops\n"}})})
    assert run(fake, "runs", "logs", "r1") == 0
    printed = capsys.readouterr()
    assert printed.out == "hi\n" and printed.err == "oops\n"


def test_runs_alone_still_lists_runs(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/runs"): ok({"runs": [], "nextCursor": None})})
    assert run(fake, "runs", "--job", "app") == 0
    assert fake.last.url.params["job"] == "app"
