"""The worker's metrics port holds at most ``max_connections`` connections; the rest
wait unaccepted, and an idle connection loses its slot at the read deadline (issue #10).
Real sockets on loopback, wall time with generous bounds."""

from __future__ import annotations

import time

import trio

from worker import metrics_http
from worker.metrics_http import MetricsServer

GET = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


async def answer_of(stream: trio.SocketStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some(4096):
        data += chunk
    return data


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


async def test_beyond_the_limit_a_connection_waits_for_a_free_slot(monkeypatch):
    monkeypatch.setattr(metrics_http, "REQUEST_TIMEOUT_S", 30.0)  # idle ones hold on
    server = MetricsServer(lambda: b"up 1\n", 0, max_connections=2)
    async with trio.open_nursery() as nursery:
        port = port_of(await nursery.start(server.run))
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        waiting = await trio.open_tcp_stream("127.0.0.1", port)  # the kernel queues it
        await waiting.send_all(GET)
        with trio.move_on_after(1.0) as too_soon:
            await waiting.receive_some(4096)
        assert too_soon.cancelled_caught, "answered although both slots were taken"
        await idle[0].aclose()  # a slot frees: the waiting one is accepted and answered
        with trio.fail_after(10):
            reply = await answer_of(waiting)
        assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"up 1\n")
        for stream in (idle[1], waiting):
            await stream.aclose()
        server.request_stop()


async def test_idle_connections_lose_their_slot_at_the_read_deadline(monkeypatch):
    monkeypatch.setattr(metrics_http, "REQUEST_TIMEOUT_S", 1.0)
    server = MetricsServer(lambda: b"up 1\n", 0, max_connections=2)
    async with trio.open_nursery() as nursery:
        port = port_of(await nursery.start(server.run))
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(5)]
        start = time.monotonic()
        scraper = await trio.open_tcp_stream("127.0.0.1", port)
        await scraper.send_all(GET)
        with trio.fail_after(20):
            reply = await answer_of(scraper)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        # Five idle connections ahead of it, two at a time, one second each: ~3 s.
        assert 1.5 < time.monotonic() - start < 15
        with trio.fail_after(5):
            assert await idle[0].receive_some(10) == b""  # closed by the server, unanswered
        for stream in (*idle, scraper):
            await stream.aclose()
        server.request_stop()
