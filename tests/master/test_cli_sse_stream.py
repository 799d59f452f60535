"""The reconnecting event stream that `schedctl events` and `runs logs --follow` share
(master.cli._sse_stream): against a small local HTTP server that drops the connection
in the middle of an event, or falls silent, and against httpx.MockTransport for the
backoff and the API errors that end it."""

from __future__ import annotations

import http.server
import io
import socket
import threading
from collections.abc import Callable, Iterator
from itertools import islice

import httpx
import pytest

from master.cli._client import Api
from master.cli._context import Context
from master.cli._errors import ApiError, AuthError
from master.cli._sse_stream import RECONNECT_MAX_S, RECONNECT_S, sse_events

PATH = "/api/v1/events"
# Each connection's script: what the server writes, then how it leaves.
Script = tuple[list[bytes], str]  # (chunks, "drop" | "silent" | "end")


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 answering the n-th GET with the n-th script, in
    chunked encoding: "drop" closes the socket in the middle of a chunk (a broken
    stream), "silent" keeps the connection open with nothing more, "end" ends cleanly.
    Records each request's Last-Event-ID."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.last_ids: list[str | None] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                server.last_ids.append(self.headers.get("Last-Event-ID"))
                chunks, leave = server.scripts[len(server.last_ids) - 1]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                if leave == "drop":  # a chunk announced, never sent in full
                    self.wfile.write(b"100\r\nid: 9\n")
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                elif leave == "silent":
                    server.release.wait(10)
                    self.close_connection = True
                else:
                    self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def context(client: httpx.Client, url: str, sleep: Callable[[float], None]) -> Context:
    return Context(Api(client, url, 5.0), io.StringIO(), False, lambda: 0.0, sleep)


@pytest.fixture
def local_ctx() -> Iterator[Callable[[ScriptedServer, list[float]], Context]]:
    clients: list[httpx.Client] = []

    def make(server: ScriptedServer, sleeps: list[float]) -> Context:
        clients.append(httpx.Client(base_url=server.url, timeout=5.0))
        return context(clients[-1], server.url, sleeps.append)

    yield make
    for client in clients:
        client.close()


def block(event_id: str, data: str, kind: str = "tick") -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode()


def test_a_dropped_stream_is_resumed_from_the_last_complete_event(
        local_ctx, capsys: pytest.CaptureFixture[str]) -> None:
    scripts: list[Script] = [
        # event 2 is cut in the middle of its block by the drop: it does not count
        ([block("1", "one"), b"id: 2\nevent: tick\ndata: tw"], "drop"),
        ([block("2", "two"), b": heartbeat\nid: 3\n\n"], "end"),
        ([block("4", "four")], "end"),
    ]
    sleeps: list[float] = []
    with ScriptedServer(scripts) as server:
        events = sse_events(local_ctx(server, sleeps), PATH)
        got = list(islice(events, 3))
        events.close()
    assert [(e.id, e.data) for e in got] == [("1", "one"), ("2", "two"), ("4", "four")]
    # resumed after the last block that ended: 1, then the heartbeat's id
    assert server.last_ids == [None, "1", "3"]
    assert sleeps == [RECONNECT_S, RECONNECT_S]  # an event came each time: no growth
    warnings = capsys.readouterr().err.splitlines()
    assert warnings[0].startswith("schedctl: warning: cannot connect to ")
    assert "the stream broke: RemoteProtocolError" in warnings[0]
    assert warnings[0].endswith(f"; reconnecting in {RECONNECT_S:g} s")
    assert warnings[1] == f"schedctl: warning: the stream ended; reconnecting in {RECONNECT_S:g} s"


def test_a_silent_stream_is_given_up_after_the_read_timeout_and_resumed(
        local_ctx, capsys: pytest.CaptureFixture[str]) -> None:
    scripts: list[Script] = [([block("7", "seven")], "silent"), ([block("8", "eight")], "end")]
    sleeps: list[float] = []
    with ScriptedServer(scripts) as server:
        events = sse_events(local_ctx(server, sleeps), PATH, read_timeout_s=0.3)
        got = list(islice(events, 2))
        events.close()
    assert [e.data for e in got] == ["seven", "eight"]
    assert server.last_ids == [None, "7"]
    assert "the stream was silent for 0.3 s" in capsys.readouterr().err


def mock_ctx(handler: Callable[[httpx.Request], httpx.Response],
             sleep: Callable[[float], None]) -> Context:
    client = httpx.Client(base_url="http://master.test",
                          transport=httpx.MockTransport(handler))
    return context(client, "http://master.test", sleep)


def test_the_backoff_doubles_while_it_fails_and_starts_again_after_an_event(
        capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) in (1, 9):
            return httpx.Response(200, content=block(str(len(seen)), "x"))
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    sleeps: list[float] = []
    events = sse_events(mock_ctx(answer, sleeps.append), PATH, params={"job": "a,b"})
    assert [e.id for e in islice(events, 2)] == ["1", "9"]
    assert sleeps == [0.5, 1, 2, 4, 8, RECONNECT_MAX_S, RECONNECT_MAX_S, RECONNECT_MAX_S]
    assert [r.headers.get("Last-Event-ID") for r in seen] == [None] + ["1"] * 8
    assert {r.url.params["job"] for r in seen} == {"a,b"}
    err = capsys.readouterr().err.splitlines()
    assert err[1] == ("schedctl: warning: cannot connect to http://master.test: Connection "
                      "refused (is the master running?); reconnecting in 1 s")
    events.close()


def test_an_api_answer_gives_up_at_once_even_after_a_reconnect(
        capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, content=block("e-1", "x"))
        return httpx.Response(401, json={"error": {"code": "unauthorized",
                                                   "message": "token revoked"}})

    sleeps: list[float] = []
    events = sse_events(mock_ctx(answer, sleeps.append), PATH)
    assert next(events).id == "e-1"
    with pytest.raises(AuthError, match="token revoked"):
        next(events)
    assert seen[1].headers["Last-Event-ID"] == "e-1"
    assert sleeps == [RECONNECT_S]  # the one before asking again; none after the answer
    with pytest.raises(StopIteration):  # given up: the generator is done
        next(events)
    assert capsys.readouterr().err.count("reconnecting") == 1


def test_an_api_error_at_the_first_request_is_raised_before_any_event() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": {"code": "unavailable",
                                                   "message": "too many output streams"}})

    sleeps: list[float] = []
    with pytest.raises(ApiError, match="too many output streams") as raised:
        next(sse_events(mock_ctx(answer, sleeps.append), PATH))
    assert raised.value.status == 503 and sleeps == []


def test_ctrl_c_in_the_backoff_reaches_the_consumer() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("silent", request=request)

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        next(sse_events(mock_ctx(answer, sleep), PATH))
