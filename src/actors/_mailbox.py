"""Typed, bounded mailboxes: an Address to send, an Inbox to receive.

The mailbox is made apart from the actor and outlives it: a supervisor restart builds
a new actor on the same Inbox, so every Address others hold stays valid and messages
queued behind a crash are delivered to the next incarnation (only the message in hand
when the actor crashed is lost). Many tasks may send through one Address (fan-in);
nobody but the Inbox's owner ever closes it, so a sender cannot end the mailbox for
the others (the trio pitfall that ``clone()`` exists to avoid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generic, TypeVar, final

import trio

from ._errors import MailboxClosed, MailboxFull

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A snapshot of one mailbox."""

    name: str
    depth: int  # messages queued now
    capacity: int
    senders_waiting: int  # tasks blocked in send(): backpressure in action
    received_total: int  # messages taken out since the mailbox opened, across restarts
    discarded: int  # messages still queued when the Inbox was closed (never silent)
    sealed: bool  # no longer accepts messages: its actor is stopping or stopped


class _Mailbox(Generic[M]):
    """State shared by one Address and one Inbox."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        # Invariant: this send channel is never cloned, so closing it (seal) ends the
        # receive side after the queue is drained.
        self.send_channel, self.receive_channel = trio.open_memory_channel[M](capacity)
        self.received_total = 0
        self.discarded = 0
        self.sealed = False
        self.closed = False
        self.incarnations = 0  # actors built on the Inbox so far (see Inbox._attach)

    def statistics(self) -> MailboxStatistics:
        channel = self.receive_channel.statistics()
        return MailboxStatistics(
            name=self.name,
            depth=channel.current_buffer_used,
            capacity=self.capacity,
            senders_waiting=channel.tasks_waiting_send,
            received_total=self.received_total,
            discarded=self.discarded,
            sealed=self.sealed,
        )


@final
class Address(Generic[M]):
    """The only way to reach an actor. Made by ``open_mailbox``; share it freely."""

    __slots__ = ("_box",)

    def __init__(self, box: _Mailbox[M]) -> None:
        self._box = box

    @property
    def name(self) -> str:
        return self._box.name

    async def send(self, msg: M) -> None:
        """Queue ``msg``, waiting while the mailbox is full: that wait is the backpressure.

        Raises MailboxClosed if the actor has stopped for good (also when it stops
        while we wait). A cancel point always, a schedule point only when it must wait:
        with room, the sender goes on without a trip through trio's run queue (issue 14:
        a yield per message cost every hop of a fire a task step); fairness needs no
        more, since a mailbox is bounded and its receiver yields at each message.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._box.send_channel.send_nowait(msg)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosed(self._box.name) from None
        try:
            await self._box.send_channel.send(msg)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosed(self._box.name) from None

    def send_nowait(self, msg: M) -> None:
        """Queue ``msg`` or raise MailboxFull at once; never blocks."""
        try:
            self._box.send_channel.send_nowait(msg)
        except trio.WouldBlock:
            raise MailboxFull(self._box.name, self._box.capacity) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosed(self._box.name) from None

    async def tell(self, msg: M) -> bool:
        """Queue ``msg``, waiting while the mailbox is full; False if the actor has stopped.

        ``send`` for a sender that outlives its receiver in a shutdown: the wait for room
        is the same backpressure, but a mailbox closed for good (before or during the
        wait) is an answer, not an error. False means "not delivered"; the caller decides
        whether that is worth a log line or a count (it is never silent by itself).
        """
        try:
            await self.send(msg)
        except MailboxClosed:
            return False
        return True

    async def tell_or_log(self, msg: M, log: logging.Logger, level: int = logging.DEBUG) -> bool:
        """``tell``, and when the actor has stopped, one line in ``log`` at ``level``."""
        if await self.tell(msg):
            return True
        log.log(level, "%s has stopped: %s not delivered", self.name, type(msg).__name__)
        return False

    def offer(self, msg: M) -> bool:
        """Queue ``msg`` if there is room now; False if the mailbox is full or closed.

        Never blocks, never raises. For values where the next message supersedes this one
        (a gauge), or for a sender that must not wait (a task being cancelled). Use
        ``send_nowait`` where a full mailbox must be told apart from a stopped actor.
        """
        try:
            self.send_nowait(msg)
        except (MailboxFull, MailboxClosed):
            return False
        return True

    def statistics(self) -> MailboxStatistics:
        return self._box.statistics()

    def __repr__(self) -> str:
        return f"<Address {self._box.name!r}>"


@final
class Inbox(Generic[M]):
    """The receiving end, owned by whichever actor currently serves the mailbox.

    ``async for msg in inbox`` ends once the inbox is sealed and emptied.
    """

    __slots__ = ("_box", "address")

    def __init__(self, box: _Mailbox[M], address: Address[M]) -> None:
        self._box = box
        self.address = address  # the same object open_mailbox returned, for self-sends

    @property
    def name(self) -> str:
        return self._box.name

    async def receive(self) -> M:
        """The next message; trio.EndOfChannel once sealed and empty."""
        msg = await self._box.receive_channel.receive()
        self._box.received_total += 1
        return msg

    def receive_nowait(self) -> M:
        """The next message, or trio.WouldBlock if none is queued."""
        msg = self._box.receive_channel.receive_nowait()
        self._box.received_total += 1
        return msg

    def __aiter__(self) -> Inbox[M]:
        return self

    async def __anext__(self) -> M:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def seal(self) -> None:
        """Stop accepting messages (graceful stop); final, idempotent, never blocks.

        Senders, including those already waiting, get MailboxClosed; messages already
        queued are still delivered, then receive() raises trio.EndOfChannel.
        """
        self._box.sealed = True
        self._box.send_channel.close()

    def close(self) -> None:
        """Seal and drop whatever is still queued (counted in ``discarded``).

        receive() then raises trio.ClosedResourceError: you closed it.
        """
        self.seal()
        if not self._box.closed:
            self._box.closed = True
            self._box.discarded += self._box.statistics().depth
            self._box.receive_channel.close()

    def statistics(self) -> MailboxStatistics:
        return self._box.statistics()

    def _attach(self) -> int:
        """Count one more actor built on this inbox; returns how many came before."""
        self._box.incarnations += 1
        return self._box.incarnations - 1


@final
class open_mailbox(tuple[Address[M], Inbox[M]]):  # noqa: N801 (a factory, as in trio)
    """Open a bounded mailbox: ``address, inbox = open_mailbox[Msg](16, name="executor")``.

    A class only so that it can be subscripted with the message type, like trio's
    ``open_memory_channel[T]``; calling it returns a plain ``(Address, Inbox)`` pair.
    ``capacity`` is the backpressure point: keep it small (an unbounded queue only
    hides overload). ``name`` appears in errors and statistics.
    """

    def __new__(  # type: ignore[misc]  # returns a plain tuple, as trio's does
        cls, capacity: int, *, name: str
    ) -> tuple[Address[M], Inbox[M]]:
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"mailbox capacity must be an int >= 0, not {capacity!r}")
        box: _Mailbox[M] = _Mailbox(name, capacity)
        address = Address(box)
        return address, Inbox(box, address)

    def __init__(self, capacity: int, *, name: str) -> None:
        """Only here so that type checkers see the parameters."""
