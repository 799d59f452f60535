"""A server-sent events parser (the WHATWG rules ``EventSource`` follows), for
`_sse_stream` (what `events` and `runs logs --follow` read).

Fed text as it arrives, in pieces of any size, it returns the complete events. As in
the browser: ``id:`` sets the last event id when its block ends, even a block with no
``data:`` (which dispatches nothing: the master's heartbeats move the id that way); a
block without ``id:`` keeps the previous one; lines starting with ``:`` are comments.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    id: str  # the last event id once this event was dispatched
    event: str
    data: str


class SseParser:
    def __init__(self, last_id: str = "") -> None:
        self.last_id = last_id
        self._pending = ""
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, text: str) -> list[SseEvent]:
        out: list[SseEvent] = []
        lines = (self._pending + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()
        for line in lines:
            if not line:
                if self._id is not None:
                    self.last_id = self._id
                if self._data:
                    out.append(SseEvent(self.last_id, self._event or "message",
                                        "\n".join(self._data)))
                self._id, self._event, self._data = None, "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id" and "\0" not in value:
                self._id = value
            elif name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
        return out
