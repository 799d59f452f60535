"""`events`: the master's live events (GET /api/v1/events), one line each, until Ctrl-C.

The stream ends when the master stops, when it drops a reader too slow to keep up, or
when the connection breaks or stays silent: it is opened again with the id of the last
event received (``Last-Event-ID``), after a backoff (`_sse_stream`, shared with `runs
logs --follow`), so no event is missed or printed twice. When the master cannot
resume from that id (it restarted, or the id is too old), it says ``reset`` first:
printed as such, since what happened in between is not known. An API error (401,
403, 400) ends the command as any other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import closing
from typing import Any, Final

from ._client import api_path
from ._context import Context
from ._format import cell, local_iso
from ._sse import SseEvent
from ._sse_stream import sse_events

KIND_WIDTH: Final = 13


def follow_events(ctx: Context, jobs: list[str]) -> None:
    params = {"job": ",".join(jobs)} if jobs else {}
    try:
        with closing(sse_events(ctx, api_path("events"), params=params)) as events:
            for event in events:
                _print_event(ctx, event)
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
