"""A master's actors and services running in-process, with its app and Quart's test client.

The HTTP server itself is not started here (``serve_http=False``): requests go
through ``app.test_client()``, which runs the app in the test's own trio run. One
test file starts the real hypercorn server.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from cluster.config import Config
from cluster.etcd import Etcd, open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunRecord
from master import MasterContext, Services, build_tree, create_app, open_mailboxes
from master.context import Clock, wall_ms
from master.schedulable_watch import SETTLE_S

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30


def make_webapp(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<!doctype html><title>ui</title>")
    (root / "app.js").write_text("export const x = 1;")
    (root / "app.css").write_text("body { margin: 0 }")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "note.txt").write_text("hello")
    (root / ".secret.js").write_text("nope")
    return root


def make_config(tmp_path: Path, etcd_endpoint: str, prefix: str, **overrides: Any) -> Config:
    fields: dict[str, Any] = dict(
        etcd_endpoints=(etcd_endpoint,), prefix=prefix,
        db_url=f"sqlite:///{tmp_path}/runs.db", api_port=0, api_token=TOKEN,
        webapp_dir=str(make_webapp(tmp_path / "webapp")), etcd_request_timeout_s=2.0,
        db_timeout_s=2.0,
    )
    fields.update(overrides)
    return Config(**fields)


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        body = self.json
        assert set(body) == {"error"}, body
        return body["error"]


@dataclass
class Master:
    ctx: MasterContext
    app: Any
    etcd: Etcd
    config: Config
    services: Services

    @property
    def keyspace(self) -> Keyspace:
        return self.ctx.keyspace

    async def request(self, method: str, path: str, *, auth: bool = True,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
        client = self.app.test_client()
        all_headers = {**(AUTH if auth else {}), **(headers or {})}
        response = await client.open(path, method=method, headers=all_headers, **kwargs)
        return Response(response.status_code, response.headers, await response.get_data())

    async def first_chunk(self, path: str, *, auth: bool = True,
                          headers: dict[str, str] | None = None,
                          query_string: dict[str, Any] | None = None) -> Response:
        """A GET whose answer may never end (``/api/v1/events``): its status, headers
        and first chunk of body (all of it for an error), then the client leaves."""
        all_headers = {"Host": "localhost", **(AUTH if auth else {}), **(headers or {})}
        return await first_chunk(self.app, path, all_headers, query_string or {})

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Response:
        return await self.request("PUT", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        return await self.request("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)

    async def stored(self, name: str) -> dict[str, Any] | None:
        kv = await self.etcd.get(self.keyspace.job(name))
        return None if kv is None else json.loads(kv.value)


async def first_chunk(app: Any, path: str, headers: dict[str, str],
                      query: dict[str, Any]) -> Response:
    """One GET straight through the ASGI app, left after the first chunk of its body.

    Not Quart's test client: it waits for the body's end even after a disconnect.
    Here the client goes as a real one does: ``http.disconnect``, and the app cancels
    the request."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": urllib.parse.urlencode(query).encode(), "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 1), "server": ("localhost", 80), "extensions": {}}
    gone = trio.Event()
    got: dict[str, Any] = {"body": b""}
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            got["status"], got["headers"] = message["status"], message["headers"]
        elif message["type"] == "http.response.body":
            got["body"] += message.get("body", b"")
            if got["body"] or not message.get("more_body", False):
                gone.set()

    with trio.fail_after(10):
        await app(scope, receive, send)
    names = {k.decode().lower(): v.decode() for k, v in got["headers"]}
    return Response(got["status"], names, got["body"])


@asynccontextmanager
async def running_master(config: Config, *, clock: Clock = wall_ms,
                         schedulable_settle_s: float = SETTLE_S) -> AsyncIterator[Master]:
    """The master's actors (no HTTP server: ``Master.request`` calls the app); its
    SchedulableWatch announces a change once it held ``schedulable_settle_s``."""
    addresses, inboxes = open_mailboxes(config)
    ctx = MasterContext.create(config, clock=clock)
    async with open_etcd(config.etcd_endpoints, timeout_s=config.etcd_request_timeout_s) as etcd:
        services = Services.create(ctx, etcd, addresses.workers)
        root = build_tree(ctx, inboxes, etcd, services, serve_http=False,
                          schedulable_settle_s=schedulable_settle_s)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(START_TIMEOUT_S):
                await nursery.start(root.run)
            try:
                yield Master(ctx, create_app(ctx, services), etcd, config, services)
            finally:
                root.request_stop()  # graceful; a stuck stop is cut short:
                nursery.cancel_scope.deadline = trio.current_time() + STOP_TIMEOUT_S


def record(run_id: str, job: str = "job-a", start: int | None = 1_000, **fields: Any
           ) -> RunRecord:
    base: dict[str, Any] = dict(
        run_id=run_id, job_name=job, worker="w1", command="echo hi", output="hi\n", err="",
        exit_code=0, status="succeeded", trigger="schedule", attempt=1,
        plan_time=start if start is not None else 500, schedule_time=start or 500,
        start_time=start, end_time=None if start is None else start + 10,
    )
    base.update(fields)
    return RunRecord(**base)


def with_fields(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, **changes)
