"""A master served by hypercorn (an event stream needs a real HTTP server), and a client
that reads its /api/v1/events as a browser would: a streamed GET with the token.

``serving_master`` builds the tree as ``run_master`` does, with an EventHub of the
test's sizes (a small history or queue makes the limits reachable in a test).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from cluster.config import Config
from cluster.etcd import Etcd, open_etcd
from master import MasterContext, Services, build_tree, open_mailboxes
from master.cli._sse import SseEvent, SseParser
from master.events import HUB_QUEUE_SIZE, HUB_RING_SIZE, EventHub

from master_testkit import AUTH

WAIT_S = 10.0


@dataclass
class Served:
    url: str
    ctx: MasterContext
    etcd: Etcd
    services: Services

    @property
    def hub(self) -> EventHub:
        return self.services.events

    def metric(self, name: str) -> float | None:
        return self.ctx.metrics.value(name)


@asynccontextmanager
async def serving_master(config: Config, *, ring_size: int = HUB_RING_SIZE,
                         queue_size: int = HUB_QUEUE_SIZE) -> AsyncIterator[Served]:
    addresses, inboxes = open_mailboxes(config)
    ctx = MasterContext.create(config)
    async with open_etcd(config.etcd_endpoints, timeout_s=config.etcd_request_timeout_s) as etcd:
        services = Services.create(ctx, etcd, addresses.workers)
        services = dataclasses.replace(services, events=EventHub(
            ctx.metrics, ring_size=ring_size, queue_size=queue_size))
        root = build_tree(ctx, inboxes, etcd, services)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(30):
                started = await nursery.start(root.run)
            try:
                yield Served(started["http"][0], ctx, etcd, services)
            finally:
                root.request_stop()
                nursery.cancel_scope.deadline = trio.current_time() + 30
        await etcd.delete_prefix(config.prefix)


@dataclass
class Reader:
    """One stream's events as they arrive (``events``), its last id, how it ended."""

    status: int = 0
    events: list[SseEvent] = field(default_factory=list)
    heartbeats: int = 0
    last_id: str = ""
    ended: bool = False
    delay_s: float = 0.0  # slept after each chunk read: a slow client while > 0
    arrived: trio.Event = field(default_factory=trio.Event)

    def kinds(self) -> list[str]:
        return [e.event for e in self.events]

    def data(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.events if kind is None or e.event == kind]

    async def until(self, done: Callable[["Reader"], bool], timeout_s: float = WAIT_S) -> None:
        with trio.fail_after(timeout_s):
            while not done(self):
                self.arrived = trio.Event()
                await self.arrived.wait()

    async def count(self, kind: str, n: int, timeout_s: float = WAIT_S) -> list[dict[str, Any]]:
        await self.until(lambda r: len(r.data(kind)) >= n, timeout_s)
        return self.data(kind)


async def read_events(url: str, reader: Reader, *, query: dict[str, Any] | None = None,
                      last_id: str | None = None, headers: dict[str, str] | None = None,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Read the stream into ``reader`` until it ends (or the caller cancels)."""
    sent = {**AUTH, **(headers or {})}
    if last_id is not None:
        sent["Last-Event-ID"] = last_id
    parser = SseParser(last_id or "")
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        async with client.stream("GET", "/api/v1/events", params=query, headers=sent) as answer:
            reader.status = answer.status_code
            task_status.started()
            if answer.status_code != 200:
                await answer.aread()
                reader.ended = True
                reader.arrived.set()
                return
            async for text in answer.aiter_text():
                reader.heartbeats += text.count(": heartbeat")
                reader.events.extend(parser.feed(text))
                reader.last_id = parser.last_id
                reader.arrived.set()
                if reader.delay_s:
                    await trio.sleep(reader.delay_s)
    reader.ended = True
    reader.arrived.set()
