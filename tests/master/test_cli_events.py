"""schedctl events against a stand-in master: one line per event, reconnecting with the
id of the last event (heartbeats' ids too) after a stream ends or breaks, until Ctrl-C."""

from __future__ import annotations

import json

import httpx
import pytest

from cli_testkit import FakeMaster, error, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)

STREAM = {"Content-Type": "text/event-stream; charset=utf-8"}


def sse(*blocks: str) -> bytes:
    return "".join(blocks).encode()


def test_prints_each_event_and_resumes_from_the_last_id(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    streams = [
        sse("id: e-0\nevent: ready\ndata: {\"resumed\":false}\n\n",
            'id: e-1\nevent: job.saved\ndata: {"job":"app","created":true,"paused":false}\n\n',
            ": heartbeat\nid: e-3\n\n"),  # then the master stops: the stream ends
        sse('id: e-4\nevent: run.finished\ndata: {"job":"app","runId":"r1","worker":"w1",'
            '"status":"failed"}\n\n',
            'id: e-5\nevent: worker.left\ndata: {"worker":"w\\u001b[31m"}\n\n'),
    ]
    seen: list[httpx.Request] = []

    def events(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers=STREAM, content=streams[len(seen) - 1])

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    fake = FakeMaster({("GET", "/api/v1/events"): events})
    assert run(fake, "events", "--job", "app", "--job", "other", sleep=sleep) == 0
    assert [r.url.params["job"] for r in seen] == ["app,other", "app,other"]
    assert "Last-Event-ID" not in seen[0].headers
    assert seen[1].headers["Last-Event-ID"] == "e-3"  # the heartbeat's, not e-1
    assert sleeps == [0.5, 0.5]  # an event came in between: the backoff starts again
    lines = capsys.readouterr()
    assert lines.out.splitlines() == [
        "2024-05-01T12:00:00+00:00  ready         -  resumed=False",
        "2024-05-01T12:00:00+00:00  job.saved     app  created=True paused=False",
        "2024-05-01T12:00:00+00:00  run.finished  app  runId=r1 worker=w1 status=failed",
        "2024-05-01T12:00:00+00:00  worker.left   w\\x1b[31m",
    ]
    assert "reconnecting in 0.5 s" in lines.err


def test_json_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    body = sse('id: e-1\nevent: job.deleted\ndata: {"job":"app"}\n\n')
    fake = FakeMaster({("GET", "/api/v1/events"): httpx.Response(200, headers=STREAM,
                                                                   content=body)})

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    assert run(fake, "events", "--json", sleep=sleep) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"id": "e-1", "event": "job.deleted", "data": {"job": "app"}}


def test_an_api_error_ends_it_with_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/events"): error(400, "bad_request", "job: bad", "job")})
    assert run(fake, "events", "--job", "a/b") == 1
    assert "job: bad" in capsys.readouterr().err
    fake = FakeMaster({("GET", "/api/v1/events"): error(401, "unauthorized", "token")})
    assert run(fake, "events") == 4
