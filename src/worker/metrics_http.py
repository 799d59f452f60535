"""``GET /metrics`` (for Prometheus) and ``GET /healthz`` on the loopback: a tiny HTTP
server written on trio.

Why by hand and not hypercorn: two routes, one answer per connection, and a worker
that must stay small; the whole protocol needed is a request line and a response head.
Loopback only: the worker has no host setting, and its metrics are not for the world.

Per connection: read the request head (at most ``MAX_HEAD_BYTES``, within
``REQUEST_TIMEOUT_S``, else the connection is just closed), answer, close
(``Connection: close``; a scraper reconnecting every few seconds costs nothing).

Connection limit: at most ``max_connections`` (``metrics_max_connections``) are
accepted at once; further ones wait in the kernel's listen queue, unaccepted, so they
hold no file descriptor of ours. Why: every accepted connection is an fd, and a flood
of idle ones once used up the worker's fds, so that every fire failed with "Too many
open files". The deadline above bounds how long one connection holds its slot: idle
connections cannot keep them forever, and the queue drains once a flood stops. A
flood can make scrapes wait, never stop a fire; put a firewall on the port anyway.

- ``GET``/``HEAD /metrics`` (any query string) → 200, text format 0.0.4 as
  ``render()`` returns it (``generate_latest`` of the worker's registry)
- ``GET``/``HEAD /healthz`` → 200 ``ok``, or 503 with one line per problem that keeps
  the worker from taking work (``health()``: ``spill: disk full``, see
  ``worker.spill_room``), for a load balancer, systemd or a person with curl
- either path with another method → 405; any other path → 404; a malformed request
  line → 400; an oversized head → 431
- rendering raised → 500, logged: a bug in one metric must not stop the scrapes.

Errors: ``CannotServeMetrics`` (the port cannot be bound), raised at start-up, so the
supervisor retries it and, if it persists, stops the worker with it as the cause.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus

import trio

from cluster.metrics import CONTENT_TYPE

__all__ = ["CannotServeMetrics", "LOOPBACK", "MetricsServer", "respond"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_HEAD_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0
DEFAULT_MAX_CONNECTIONS = 32
# accept(2) errors that mean "overloaded now", as trio.serve_listeners treats them.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY_S = 0.1
PATH = b"/metrics"
HEALTH_PATH = b"/healthz"
Health = Callable[[], Sequence[str]]  # one line per problem; empty when healthy


def no_problems() -> Sequence[str]:
    return ()


class CannotServeMetrics(Exception):
    """The metrics port cannot be bound (in use, or not ours)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host, self.port, self.reason = host, port, reason
        super().__init__(f"cannot serve metrics on {host}:{port}: {reason}")


class _HeadTooLarge(Exception):
    """The client sent more than MAX_HEAD_BYTES without ending its request head."""


class MetricsServer:
    """A supervisor child serving the bytes of ``render()`` at ``/metrics`` and the lines
    of ``health()`` at ``/healthz``; fresh per start.

    ``port`` 0 binds any free port. ``started()`` reports the URL actually bound.
    ``request_stop()`` closes the listener and drops connections at once: answers are
    small and a scraper simply retries. At most ``max_connections`` are open at once.
    """

    def __init__(self, render: Callable[[], bytes], port: int, *, host: str = LOOPBACK,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 health: Health = no_problems) -> None:
        self._render = render
        self._health = health
        self._port = port
        self._host = host
        # Invariant: one token per accepted connection, given back when it is closed.
        self._slots = trio.Semaphore(max_connections)
        self._scope = trio.CancelScope()  # may be cancelled before run() enters it

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            listeners = await trio.open_tcp_listeners(self._port, host=self._host)
        except OSError as exc:
            raise CannotServeMetrics(self._host, self._port, exc.strerror or str(exc)) from None
        port = listeners[0].socket.getsockname()[1]
        url = f"http://{self._host}:{port}/metrics"
        with self._scope:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept_loop, listener, nursery)
                log.info("metrics at %s", url)
                task_status.started(url)

    def request_stop(self) -> None:
        self._scope.cancel()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """Accept only with a free slot: beyond the limit, connections wait unaccepted."""
        async with listener:
            while True:
                await self._slots.acquire()
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    self._slots.release()
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    log.error("metrics port: accept failed (%s); retrying",
                              errno.errorcode[exc.errno])
                    await trio.sleep(_ACCEPT_RETRY_S)
                    continue
                except BaseException:
                    self._slots.release()
                    raise
                nursery.start_soon(self._serve_one, stream)

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(REQUEST_TIMEOUT_S):
                try:
                    head = await _read_head(stream)
                except _HeadTooLarge:
                    await stream.send_all(_response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE))
                    return
                if head is not None:
                    await stream.send_all(respond(head, self._render, self._health))
        except trio.BrokenResourceError:
            pass  # the client went away: nothing to answer
        finally:
            await trio.aclose_forcefully(stream)  # never waits: the slot is free at once
            self._slots.release()


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    """The request head up to its blank line; None if the client closed before it."""
    head = bytearray()
    while b"\r\n\r\n" not in head and b"\n\n" not in head:
        if len(head) > MAX_HEAD_BYTES:
            raise _HeadTooLarge()
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        head += chunk
    return bytes(head)


def respond(head: bytes, render: Callable[[], bytes], health: Health = no_problems) -> bytes:
    """The whole response to one request head (pure: the server's logic, testable alone)."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return _response(HTTPStatus.BAD_REQUEST)
    method, target = parts[0], parts[1]
    path = target.split(b"?", 1)[0]
    if path not in (PATH, HEALTH_PATH):
        return _response(HTTPStatus.NOT_FOUND)
    if method not in (b"GET", b"HEAD"):
        return _response(HTTPStatus.METHOD_NOT_ALLOWED, extra=("Allow: GET, HEAD",))
    if path == HEALTH_PATH:
        return _health_response(health, send_body=method == b"GET")
    try:
        body = render()
    except Exception:  # a fault barrier: one broken metric must not stop the server
        log.exception("rendering the metrics failed")
        return _response(HTTPStatus.INTERNAL_SERVER_ERROR)
    return _response(HTTPStatus.OK, body, CONTENT_TYPE, send_body=method == b"GET")


def _health_response(health: Health, *, send_body: bool) -> bytes:
    try:
        problems = list(health())
    except Exception:  # a fault barrier, as for the metrics
        log.exception("checking the worker's health failed")
        problems = ["health check failed: the worker's log has the details"]
    if not problems:
        return _response(HTTPStatus.OK, b"ok\n", send_body=send_body)
    body = "".join(f"{p}\n" for p in problems).encode("utf-8", "backslashreplace")
    return _response(HTTPStatus.SERVICE_UNAVAILABLE, body, send_body=send_body)


def _response(status: HTTPStatus, body: bytes | None = None,
              content_type: str = "text/plain; charset=utf-8", *,
              extra: Sequence[str] = (), send_body: bool = True) -> bytes:
    if body is None:
        body = f"{status.value} {status.phrase}\n".encode()
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", "Connection: close", *extra]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if send_body else head
