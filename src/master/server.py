"""Hypercorn inside the master's trio.run, as one more child of the supervisor.

``HttpServer`` serves an ASGI app until ``request_stop()``: hypercorn's shutdown
trigger fires, listening stops, in-flight requests get ``HTTP_GRACE_S`` to finish,
then the app's lifespan ends. Its ``started()`` value is the list of bound URLs (with
the real port when the config says 0).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

__all__ = ["CannotListen", "HTTP_GRACE_S", "HttpServer", "check_listen", "hypercorn_config"]

HTTP_GRACE_S = 5.0


class CannotListen(Exception):
    """The address cannot be bound (in use, not ours, or the name does not resolve)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host, self.port, self.reason = host, port, reason
        super().__init__(f"cannot listen on {host}:{port}: {reason}")


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def hypercorn_config(host: str, port: int, *, read_timeout_s: float,
                     logger_name: str = "master.http") -> HyperConfig:
    config = HyperConfig()
    config.bind = [bind_address(host, port)]
    config.accesslog = None  # off: requests are counted in /metrics instead
    config.errorlog = logging.getLogger(logger_name)
    # The wait for a request's head: hypercorn's idle timer runs from the connection's
    # start (and after each response) until a whole head has come, however slowly its
    # bytes trickle in; the body's is Quart's BODY_TIMEOUT (web.py). Not hypercorn's
    # read_timeout: it bounds every read of the connection, so it would cut a response
    # that lasts, an event stream (/api/v1/events), after that many seconds in which
    # the client, only listening, sent nothing.
    config.keep_alive_timeout = read_timeout_s
    config.read_timeout = None
    config.graceful_timeout = HTTP_GRACE_S
    config.shutdown_timeout = HTTP_GRACE_S
    config.include_server_header = False
    return config


def check_listen(host: str, port: int) -> None:
    """Fail early and clearly if ``host:port`` cannot be bound now (a race remains
    possible; then the HTTP child fails to start and the supervisor reports it)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:  # socket.gaierror is an OSError
        raise CannotListen(host, port, exc.strerror or str(exc)) from None


class HttpServer:
    """A supervisor child serving ``app`` with hypercorn; build a fresh one per start."""

    def __init__(self, app: Any, config: HyperConfig, *,
                 on_stop: Callable[[], None] | None = None) -> None:
        """``on_stop``: called when asked to stop, to end requests that never end by
        themselves (the event streams) before the grace period runs out on them."""
        self._app = app
        self._on_stop = on_stop
        self._config = config
        self._stopping = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        await serve(self._app, self._config, shutdown_trigger=self._stopping.wait,
                    task_status=task_status)

    def request_stop(self) -> None:
        self._stopping.set()
        if self._on_stop is not None:
            self._on_stop()
