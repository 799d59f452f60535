"""What the schedctl tests share: a stand-in master (httpx.MockTransport) answering from
a table and recording requests, ``run`` (schedctl against it at a fixed now), answers,
sample documents, and ``utc_and_token`` (an autouse fixture: each test module imports it
so that it applies there).
"""

from __future__ import annotations

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
