"""``GET /api/v1/events``: the EventHub as a server-sent event stream (docs/api.md).

Authenticated as every API route (bearer token, role ``read``): the UI reads it with
``fetch`` and a stream reader rather than ``EventSource``, which cannot send a header,
so the token never goes into a URL (where logs and history keep it) and the browser
guard's rules apply as to any GET. ``?job=NAME`` (repeatable, or a comma list) keeps
the events of those jobs and the control events (``ready``, ``reset``, ``dropped``).

The body never ends by itself: events as they come (what queued meanwhile in one
write), a heartbeat comment every ``HEARTBEAT_S`` while idle (proxies and clients
see a live connection; it carries the stream's position, see ``events``), and the
end only when the client goes, the master stops, or the reader is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from quart import Blueprint, Response, request

from .context import MasterContext
from .errors import BadRequest
from .events import EventHub, heartbeat_block
from .inputs import check_job_name
from .services import Services

__all__ = ["EVENT_STREAM_TYPE", "HEARTBEAT_S", "MAX_FILTER_JOBS", "event_routes"]

EVENT_STREAM_TYPE = "text/event-stream; charset=utf-8"
HEARTBEAT_S = 15.0
MAX_FILTER_JOBS = 100
MAX_CHUNK_EVENTS = 256  # events joined into one write when many are queued
MAX_LAST_ID_CHARS = 64


def event_routes(ctx: MasterContext, services: Services) -> Blueprint:
    bp = Blueprint("events", __name__, url_prefix="/api/v1")
    hub = services.events

    @bp.get("/events")
    async def events() -> Response:
        jobs = job_filter(request.args.getlist("job"))
        last_id = request.headers.get("Last-Event-ID")
        if last_id is not None and (len(last_id) > MAX_LAST_ID_CHARS or not last_id.strip()):
            raise BadRequest("Last-Event-ID", f"an event id of this stream "
                                              f"(at most {MAX_LAST_ID_CHARS} characters)")
        if request.method == "HEAD":  # Quart would read the body anyway: it never ends
            return Response(b"", content_type=EVENT_STREAM_TYPE)
        response = Response(stream(hub, jobs, last_id), content_type=EVENT_STREAM_TYPE)
        response.timeout = None  # RESPONSE_TIMEOUT bounds whole answers; this has no end
        response.headers["X-Accel-Buffering"] = "no"  # a proxy must not hold events back
        return response

    return bp


def job_filter(values: list[str]) -> frozenset[str] | None:
    """``job=a&job=b`` or ``job=a,b``; None: no filter."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not values:
        return None
    if not names:
        raise BadRequest("job", "a job name (or a comma-separated list of them)")
    if len(names) > MAX_FILTER_JOBS:
        raise BadRequest("job", f"at most {MAX_FILTER_JOBS} jobs")
    return frozenset(check_job_name(n, "job") for n in names)


async def stream(hub: EventHub, jobs: frozenset[str] | None, last_id: str | None
                 ) -> AsyncIterator[bytes]:
    """The response body. Subscribes when the body is first read, not before: a body
    never read (HEAD, a client gone before it) must leave no reader behind; unsubscribes
    however it ends (client gone: cancelled)."""
    sub = hub.subscribe(jobs, last_id)
    try:
        replay = sub.replay
        sub.replay = []
        for i in range(0, len(replay), MAX_CHUNK_EVENTS):
            chunk = replay[i:i + MAX_CHUNK_EVENTS]
            hub.sent(len(chunk))
            yield b"".join(chunk)
        while True:
            block: bytes | None = None
            with trio.move_on_after(HEARTBEAT_S):
                try:
                    block = await sub.live.receive()
                except trio.EndOfChannel:
                    return  # dropped (its last event was queued) or the master stops
            if block is None:  # idle: the queue is empty, so every event so far was sent
                yield heartbeat_block(hub.last_id)
                continue
            blocks = [block]
            while len(blocks) < MAX_CHUNK_EVENTS:
                try:
                    blocks.append(sub.live.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            hub.sent(len(blocks))
            yield b"".join(blocks)
    finally:
        hub.unsubscribe(sub)
