"""Real alert receivers for the tests: an HTTP webhook receiver that checks the
signature, and an SMTP server (aiosmtpd) that speaks STARTTLS.

Both run in threads of the test process and listen on 127.0.0.1 only. The webhook
receiver can be stopped and started again on the same port (a receiver that is
down refuses connections), or made to hang (it accepts and never answers), or to
hold an event a while before it takes it (``before_taking``, in the request's
thread), or refuse chosen attempts with a 503 (``refuse``). It counts deliveries per event id, so a test can assert "every alert, each
once".
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cluster.alerts import HEADER, SignatureError, verify


@dataclass
class WebhookReceiver:
    """POSTs to any path; each checked against ``secret`` (when given)."""

    secret: str | None = None
    port: int = 0
    hang: bool = False  # accept and never answer
    before_taking: Callable[[dict], None] | None = None  # called with each event, then taken
    refuse: Callable[[dict], bool] | None = None  # True: answer 503 (an attempt that failed)
    events: list[dict] = field(default_factory=list)  # bodies accepted, in order
    refused: list[str] = field(default_factory=list)  # why a request was refused
    requests: int = 0  # POSTs received (hanging ones included)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests += 1
                if receiver.hang:
                    receiver._release.wait(120)
                    return
                try:
                    if receiver.secret is not None:
                        verify(self.headers.get(HEADER), body, receiver.secret, now=time.time())
                    event = json.loads(body)
                except (SignatureError, ValueError) as exc:
                    with receiver._lock:
                        receiver.refused.append(str(exc))
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.refuse is not None and receiver.refuse(event):
                    self.send_response(503)
                    self.end_headers()
                    return
                if receiver.before_taking is not None:
                    receiver.before_taking(event)
                with receiver._lock:
                    receiver.events.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        """Down: the port refuses connections until ``start`` again."""
        if self._server is not None:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._release = threading.Event()

    def ids(self) -> Counter:
        with self._lock:
            return Counter(e["id"] for e in self.events)

    def kinds(self) -> list[str]:
        with self._lock:
            return [e["kind"] for e in self.events]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 with STARTTLS required and AUTH (user ``alerts``)."""

    def __init__(self, cert: Path, key: Path, password: str) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                receiver.messages.append(envelope)
                return "250 OK"

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts"
                  and auth_data.password == password.encode())
            return AuthResult(success=ok, handled=False)

        self.port = free_port()
        # A loop of its own, made directly: once trio_asyncio is imported (the MySQL
        # store), its policy refuses asyncio.new_event_loop() inside trio.
        self._controller = Controller(
            Handler(), loop=asyncio.SelectorEventLoop(), hostname="127.0.0.1",
            port=self.port, tls_context=context,
            require_starttls=True, authenticator=authenticate, auth_require_tls=True)

    def start(self) -> "SmtpReceiver":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
