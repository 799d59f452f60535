"""The worker's ``/healthz`` (``worker.metrics_http``): 200 ``ok``, or 503 with one line
per problem, as its ``SpillRoom`` says (issue 11, item 5)."""

from __future__ import annotations

import errno

import httpx
import trio

from worker.metrics_http import MetricsServer, respond
from worker.spill_room import SpillRoom


def render() -> bytes:
    return b"x 1\n"


def split(response: bytes) -> tuple[int, bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


def test_healthz_is_ok_then_503_with_one_line_per_problem():
    status, head, body = split(respond(b"GET /healthz HTTP/1.1\r\n\r\n", render))
    assert (status, body) == (200, b"ok\n") and b"text/plain" in head
    problems = ("spill: disk full", "etcd: no quorum")
    status, _, body = split(respond(b"GET /healthz?x HTTP/1.1\r\n\r\n", render, lambda: problems))
    assert (status, body) == (503, b"spill: disk full\netcd: no quorum\n")
    status, head, body = split(respond(b"HEAD /healthz HTTP/1.1\r\n\r\n", render, lambda: problems))
    assert status == 503 and body == b"" and b"Content-Length: 33" in head
    status, head, _ = split(respond(b"POST /healthz HTTP/1.1\r\n\r\n", render))
    assert status == 405 and b"Allow: GET, HEAD" in head
    assert split(respond(b"GET /healthzz HTTP/1.1\r\n\r\n", render))[0] == 404


def test_a_failing_health_check_is_a_503_not_a_crash(caplog):
    def broken() -> tuple[str, ...]:
        raise RuntimeError("bug")

    status, _, body = split(respond(b"GET /healthz HTTP/1.1\r\n\r\n", render, broken))
    assert status == 503 and body.startswith(b"health check failed")
    assert "checking the worker's health failed" in caplog.text


async def test_the_server_answers_the_spill_rooms_state():
    room = SpillRoom()
    server = MetricsServer(render, 0, health=room.problems)
    async with trio.open_nursery() as nursery:
        url = (await nursery.start(server.run)).removesuffix("/metrics") + "/healthz"
        async with httpx.AsyncClient() as client:
            ok = await client.get(url)
            assert (ok.status_code, ok.text) == (200, "ok\n")
            room.refused(OSError(errno.ENOSPC, "No space left on device"), kept=3)
            full = await client.get(url)
            assert (full.status_code, full.text) == (503, "spill: disk full\n")
            room.has_room("the spill file takes records again")
            assert (await client.get(url)).status_code == 200
            assert (await client.get(url.removesuffix("healthz") + "metrics")).text == "x 1\n"
        server.request_stop()
