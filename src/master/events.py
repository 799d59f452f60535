"""The event hub behind ``GET /api/v1/events``: one numbered history, many readers.

The feeds (``event_feeds``: one etcd watch, one run-store follower, one alert poller)
``publish`` what changed; the hub numbers each event (``seq``), renders it once as a
server-sent event and keeps the last ``ring_size`` of them. A stream ``subscribe``s
with the id of the last event it saw (``Last-Event-ID``) and gets, atomically (no
checkpoint in between), the events it missed from that history and a bounded queue of
the ones to come. Why one hub and not a watch per client: a hundred browsers then
cost one etcd watch and one store query every ``FOLLOW_POLL_S``, not a hundred.

Ids are ``<epoch>-<seq>``: ``epoch`` names this hub (a new one at every master
start), ``seq`` counts its events from 1. The guarantee: a client that gives the id
of an event it received gets every later event that matches its filter, each once,
in order, *if* that id is of this master's life and still within the history (the
last ``ring_size`` events: minutes at 500 runs/s, hours at a normal pace). Otherwise
its first event is ``reset`` (reload, then go on from its id); so is everybody's when
the hub's own etcd watch lost history (compaction). Heartbeats carry an ``id:`` too
(an SSE block with an id and no data moves the client's last id without an event):
a filtered client stays current while nothing it asked for happens.

A queue holds at most ``queue_size`` events; a reader that lets it fill up is
dropped: its queue gets a last ``dropped`` event and is closed, so the client reads
what was queued, sees why it ends, and reconnects with the id of its last event.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from .metrics import Metrics

__all__ = ["CONTROL_KINDS", "Event", "EventHub", "HUB_QUEUE_SIZE", "HUB_RING_SIZE",
           "Subscription", "heartbeat_block"]

HUB_RING_SIZE: Final = 20_000  # events kept for resuming (~10 MB of rendered events)
HUB_QUEUE_SIZE: Final = 1_000  # events queued for one reader before it is dropped
CONTROL_KINDS: Final = frozenset({"ready", "reset", "dropped"})  # sent whatever the filter


@dataclass(frozen=True, slots=True)
class Event:
    """One numbered event as it goes on the wire; ``job`` None: not a job's (workers,
    resets), so a job filter leaves it out unless it is a control event."""

    seq: int
    kind: str
    job: str | None
    block: bytes  # the rendered SSE block, ``id:`` to the blank line


@dataclass(eq=False)
class Subscription:
    """One reader: what it missed (``replay``), then its live queue (``live``)."""

    jobs: frozenset[str] | None  # None: every event
    replay: list[bytes]
    live: trio.MemoryReceiveChannel[bytes]
    _send: trio.MemorySendChannel[bytes] = field(repr=False)
    dropped: bool = False

    def wants(self, event: Event) -> bool:
        if self.jobs is None or event.kind in CONTROL_KINDS:
            return True
        return event.job is not None and event.job in self.jobs


def render(event_id: str, kind: str, data: dict[str, Any]) -> bytes:
    """One SSE block. JSON escapes newlines, so ``data`` is always one line."""
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {kind}\ndata: {body}\n\n".encode("utf-8")


def heartbeat_block(event_id: str) -> bytes:
    return f": heartbeat\nid: {event_id}\n\n".encode("ascii")


class EventHub:
    """Numbers, keeps and fans out events; see the module docstring. Sync methods
    never block: a full reader is dropped, never waited for."""

    def __init__(self, metrics: Metrics, *, ring_size: int = HUB_RING_SIZE,
                 queue_size: int = HUB_QUEUE_SIZE) -> None:
        self.epoch = secrets.token_hex(4)
        self._metrics = metrics
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._queue_size = queue_size
        self._seq = 0
        self._readers: set[Subscription] = set()
        # Where the feeds are, so that a restarted feed goes on from there (event_feeds).
        self.etcd_position: tuple[int, int] | None = None  # (revision, events of it seen)
        self.store_cursor: str | None = None
        self.job_paused: dict[str, bool] = {}  # to tell a pause from another save
        self.alert_seen: dict[str, int] = {}  # alert event id -> its time (ms)
        self.alerts_primed = False  # the outbox was read once (older alerts not sent)
        self.early_readers = False  # subscribed while etcd_position was None: reset them

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self._seq}"

    @property
    def readers(self) -> int:
        return len(self._readers)

    def publish(self, kind: str, job: str | None, data: dict[str, Any]) -> None:
        self._seq += 1
        event = Event(self._seq, kind, job, render(self.last_id, kind, data))
        self._ring.append(event)
        for reader in list(self._readers):
            if reader.wants(event):
                self._offer(reader, event.block)

    def reset(self, reason: str) -> None:
        """Everyone reloads: what happened since the last event is not known."""
        self.publish("reset", None, {"reason": reason})

    def subscribe(self, jobs: Iterable[str] | None, last_event_id: str | None
                  ) -> Subscription:
        """A reader from ``last_event_id`` (None: from now, after a ``ready`` event)."""
        send, receive = trio.open_memory_channel[bytes](self._queue_size)
        wanted = None if jobs is None else frozenset(jobs)
        sub = Subscription(wanted, [], receive, send)
        if self.etcd_position is None:
            self.early_readers = True
        if last_event_id is None:
            sub.replay.append(render(self.last_id, "ready", {"resumed": False}))
        else:
            missed = self._since(last_event_id)
            if isinstance(missed, str):
                sub.replay.append(render(self.last_id, "reset", {"reason": missed}))
            else:
                sub.replay.extend(e.block for e in missed if sub.wants(e))
        self._readers.add(sub)
        self._metrics.events_clients.set(len(self._readers))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._readers.discard(sub)
        sub._send.close()
        self._metrics.events_clients.set(len(self._readers))

    def close_all(self) -> None:
        """The master stops: every stream ends (its client reconnects to the next)."""
        for reader in list(self._readers):
            self.unsubscribe(reader)

    def sent(self, count: int = 1) -> None:
        self._metrics.events_sent.inc(count)

    def _since(self, last_event_id: str) -> list[Event] | str:
        """The events after ``last_event_id``, or why they cannot be given."""
        epoch, _, number = last_event_id.strip().partition("-")
        if epoch != self.epoch or not number.isdigit() or len(number) > 19:
            return "unknown event id (the master restarted since): reload"
        seq = int(number)
        if seq > self._seq:
            return "unknown event id (from the future): reload"
        oldest = self._ring[0].seq if self._ring else self._seq + 1
        if seq < oldest - 1:
            return "the events after this id are no longer kept: reload"
        skip = seq - oldest + 1
        return list(itertools.islice(self._ring, skip, None))

    def _offer(self, reader: Subscription, block: bytes) -> None:
        if reader.dropped:
            return
        if reader._send.statistics().current_buffer_used >= self._queue_size - 1:
            reason = f"too slow: {self._queue_size} events queued; reconnect with Last-Event-ID"
            # No id: the client keeps the id of the last event it got (resumes there).
            body = json.dumps({"reason": reason}, separators=(",", ":"))
            reader._send.send_nowait(f"event: dropped\ndata: {body}\n\n".encode())
            reader.dropped = True
            self._readers.discard(reader)
            reader._send.close()
            self._metrics.events_clients.set(len(self._readers))
            self._metrics.events_dropped.inc()
            return
        reader._send.send_nowait(block)
