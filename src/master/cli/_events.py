"""`events`: the master's live events (GET /api/v1/events), one line each, until Ctrl-C.

The stream ends when the master stops, when it drops a reader too slow to keep up, or
when the connection breaks or stays silent past READ_TIMEOUT_S (the master sends a
heartbeat every 15 s): it is opened again with the id of the last event received
(``Last-Event-ID``), after a backoff that starts at RECONNECT_S and doubles up to
RECONNECT_MAX_S, so no event is missed or printed twice. When the master cannot
resume from that id (it restarted, or the id is too old), it says ``reset`` first:
printed as such, since what happened in between is not known. An API error (401,
403, 400) ends the command as any other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ._client import api_path
from ._context import Context
from ._errors import ConnectError
from ._format import cell, local_iso
from ._sse import SseEvent, SseParser

READ_TIMEOUT_S: Final = 45.0
RECONNECT_S: Final = 0.5
RECONNECT_MAX_S: Final = 10.0
KIND_WIDTH: Final = 13


def follow_events(ctx: Context, jobs: list[str]) -> None:
    params = {"job": ",".join(jobs)} if jobs else {}
    last_id = ""
    delay_s = RECONNECT_S
    try:
        while True:
            parser = SseParser(last_id)
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with ctx.api.stream(api_path("events"), params=params, headers=headers,
                                    read_timeout_s=READ_TIMEOUT_S) as chunks:
                    for text in chunks:
                        for event in parser.feed(text):
                            _print_event(ctx, event)
                            delay_s = RECONNECT_S
                        last_id = parser.last_id
                reason = "the stream ended"
            except ConnectError as err:
                reason = str(err)
            ctx.warn(f"{reason}; reconnecting in {delay_s:g} s")
            ctx.sleep(delay_s)
            delay_s = min(delay_s * 2, RECONNECT_MAX_S)
    except KeyboardInterrupt:
        return  # Ctrl-C is how it ends: a success


def _print_event(ctx: Context, event: SseEvent) -> None:
    try:
        data = json.loads(event.data)
    except ValueError:
        data = {"data": event.data}
    if ctx.json_mode:  # JSON Lines
        ctx.print_json({"id": event.id, "event": event.event, "data": data}, compact=True)
        return
    ctx.print(event_line(ctx.now_ms(), event.event, data))


def event_line(now_ms: int, kind: str, data: Mapping[str, Any]) -> str:
    """``<time> <kind> <job or worker> k=v ...``, every part escaped for the terminal."""
    subject = data.get("job", data.get("worker", "-"))
    rest = " ".join(f"{k}={cell(v)}" for k, v in data.items() if k not in ("job", "worker")
                    or (k == "worker" and "job" in data))
    return f"{local_iso(now_ms)}  {cell(kind):<{KIND_WIDTH}} {cell(subject)}  {rest}".rstrip()
