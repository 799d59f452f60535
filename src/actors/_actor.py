"""The Actor base class: one task, its own state, one Inbox, one message union.

The common shape needs only ``handle``::

    class Counter(Actor[CounterMsg]):
        def __init__(self, inbox: Inbox[CounterMsg]) -> None:
            super().__init__(inbox)
            self.count = 0

        async def handle(self, msg: CounterMsg) -> None:
            match msg:
                case Increment(by):
                    self.count += by
                case Get(reply):
                    reply.send(self.count)

An actor that must set up first, or wait on more than its inbox, overrides ``run``
and calls ``task_status.started()`` once it is ready to serve, then ``self.serve()``
(or its own loop over ``self.inbox``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from ._call import fail_unanswered
from ._mailbox import Address, Inbox, MailboxStatistics

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """A snapshot of one actor, including what its predecessors on the inbox did."""

    name: str
    mailbox: MailboxStatistics
    messages_handled: int  # taken from the inbox, across restarts (the one in hand counts)
    restarts: int  # actors built on this inbox before this one


class Actor(Generic[M]):
    """Base class of actors. A supervisor builds a fresh one on the same inbox per restart.

    Graceful stop (``request_stop``) seals the inbox: the loop in ``serve`` handles what
    is still queued, then awaits ``drain()`` and returns; the supervisor cancels the
    actor if that takes longer than its grace. A crash in ``handle`` fails the caller's
    Reply (CallFailed) before it propagates to the supervisor.
    """

    def __init__(self, inbox: Inbox[M]) -> None:
        self.inbox = inbox
        self._restarts = inbox._attach()  # noqa: SLF001 (package-internal)

    @property
    def name(self) -> str:
        return self.inbox.name

    @property
    def address(self) -> Address[M]:
        return self.inbox.address

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Report ready at once, then serve until stopped. Override to set up first."""
        task_status.started()
        await self.serve()

    async def serve(self) -> None:
        """Handle every message until the inbox is sealed and empty, then drain()."""
        async for msg in self.inbox:
            try:
                await self.handle(msg)
            except Exception as exc:
                fail_unanswered(msg, exc)
                raise
        await self.drain()

    async def handle(self, msg: M) -> None:
        """Handle one message; dispatch with ``match`` on the actor's message union."""
        raise NotImplementedError(f"{type(self).__name__} must define handle() or run()")

    async def drain(self) -> None:
        """Graceful-stop hook: flush, finish work in flight. Runs within the grace."""

    def request_stop(self) -> None:
        """Ask for a graceful stop by sealing the inbox; never blocks. Override to wake
        a run loop that waits on something else, and call super()."""
        self.inbox.seal()

    def statistics(self) -> ActorStatistics:
        mailbox = self.inbox.statistics()
        return ActorStatistics(
            name=self.name,
            mailbox=mailbox,
            messages_handled=mailbox.received_total,
            restarts=self._restarts,
        )
