"""RequestActor: an actor whose requests each run in a task of their own.

Why not one message at a time: an etcd or store call takes milliseconds when the
server is healthy and seconds when it is not, and one client's slow request must not
hold up everybody else's. At most ``concurrency`` requests run at once; beyond that
the actor stops taking messages, its bounded mailbox fills, and callers wait within
their own deadlines (backpressure, never a drop).

Each message carries a ``reply``; ``answer`` returns the value to send. An exception
fails that reply (the caller sees CallFailed with it as the cause) and does not
crash the actor: one bad request must not restart the service for all. Graceful
stop: the inbox is sealed, queued requests are still answered, in-flight ones finish
(within the supervisor's grace), then ``drain`` runs and background tasks stop.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypeVar

import trio

from actors import Actor, Inbox, Reply

__all__ = ["Request", "RequestActor"]

log = logging.getLogger(__name__)


class Request(Protocol):
    @property
    def reply(self) -> Reply[Any]: ...


M = TypeVar("M", bound=Request)


class RequestActor(Actor[M]):
    def __init__(self, inbox: Inbox[M], *, concurrency: int) -> None:
        super().__init__(inbox)
        self._slots = trio.Semaphore(concurrency)
        self.in_flight = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as background:
            await self.start_background(background)
            task_status.started()
            async with trio.open_nursery() as requests:
                async for msg in self.inbox:  # ends once sealed and empty
                    await self._slots.acquire()
                    self.in_flight += 1
                    requests.start_soon(self._answer, msg)
            await self.drain()
            background.cancel_scope.cancel()

    async def start_background(self, nursery: trio.Nursery) -> None:
        """Start tasks that live as long as the actor (before it takes requests)."""

    async def answer(self, msg: M) -> object:
        """The value to reply to ``msg`` with; raise to fail the reply."""
        raise NotImplementedError

    def on_error(self, msg: M, error: Exception) -> None:
        """Count or log a failed request (the caller gets the error itself)."""

    async def _answer(self, msg: M) -> None:
        try:
            value = await self.answer(msg)
        except Exception as exc:
            self.on_error(msg, exc)
            log.debug("%s: %s failed: %r", self.name, type(msg).__name__, exc)
            msg.reply.fail(exc)
        else:
            msg.reply.send(value)
        finally:
            self.in_flight -= 1
            self._slots.release()
