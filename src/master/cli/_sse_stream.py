"""One server-sent event stream of the master, followed across breaks: the events of
`schedctl events` and of `schedctl runs logs RUN --follow`, written once.

A stream ends when the master stops or drops a reader too slow for it, and breaks when
the connection does or stays silent past ``read_timeout_s`` (the master sends a
heartbeat every 15 s). Either way it is opened again with the id of the last complete
event block received (``Last-Event-ID``; a heartbeat's id counts, as in the browser),
so the master goes on after it: nothing is missed or given twice. Before each attempt
one warning line says why, then it waits a backoff that starts at ``RECONNECT_S``,
doubles up to ``RECONNECT_MAX_S`` and starts again once an event came through.

It gives up only on an answer of the API (401, 403, 404, 400, 503...): that error
is raised as it is, and the command ends with its one line and exit code, since
asking again would get the same answer. It never ends by itself otherwise: the
consumer stops iterating when it has what it wants (the run's ``end``), and Ctrl-C
(KeyboardInterrupt, from the read or the backoff's sleep) goes through to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from ._context import Context
from ._errors import ConnectError
from ._sse import SseEvent, SseParser

__all__ = ["READ_TIMEOUT_S", "RECONNECT_MAX_S", "RECONNECT_S", "sse_events"]

READ_TIMEOUT_S: Final = 45.0  # three heartbeats missed
RECONNECT_S: Final = 0.5
RECONNECT_MAX_S: Final = 10.0


def sse_events(ctx: Context, path: str, *, params: Mapping[str, Any] | None = None,
               ended: str = "the stream ended",
               read_timeout_s: float = READ_TIMEOUT_S) -> Iterator[SseEvent]:
    """The events of GET `path`, across reconnections, until the consumer stops.

    `ended` is the warning's reason when the master closed the stream cleanly (what
    that means depends on the stream: the run's output had not ended yet...)."""
    last_id = ""
    delay_s = RECONNECT_S
    while True:
        parser = SseParser(last_id)
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            with ctx.api.stream(path, params=params or {}, headers=headers,
                                read_timeout_s=read_timeout_s) as chunks:
                for text in chunks:
                    for event in parser.feed(text):
                        delay_s = RECONNECT_S
                        yield event
            reason = ended
        except ConnectError as err:
            reason = str(err)
        last_id = parser.last_id  # of the last block that ended, even before a break
        ctx.warn(f"{reason}; reconnecting in {delay_s:g} s")
        ctx.sleep(delay_s)
        delay_s = min(delay_s * 2, RECONNECT_MAX_S)
