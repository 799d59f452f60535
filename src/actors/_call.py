"""Request/response between actors: ``call`` and its one-shot ``Reply``.

The request message carries a Reply; the server answers with ``reply.send(value)`` or
``reply.fail(exc)``, both non-blocking. The reply slot has buffer 1, so answering never
waits, and a caller that gave up (its ``trio.fail_after`` fired) has closed its end,
which the server's answer silently skips: a slow caller can never crash a server.
Deadlines are the caller's: ``with trio.fail_after(2): n = await call(addr, make)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, final

import trio

from ._errors import AlreadyReplied, CallFailed
from ._mailbox import Address

M = TypeVar("M")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _Value(Generic[R]):
    value: R


@dataclass(frozen=True, slots=True)
class _Failure:
    error: Exception


@final
class Reply(Generic[R]):
    """The answer slot of one call; made by ``call``, answered once by the server."""

    __slots__ = ("_actor", "_answered", "_receive", "_send")

    def __init__(self, actor: str) -> None:
        self._actor = actor
        self._answered = False
        # Buffer 1: the single answer always fits, so the server never blocks on it.
        self._send, self._receive = trio.open_memory_channel[_Value[R] | _Failure](1)

    @property
    def answered(self) -> bool:
        return self._answered

    def send(self, value: R) -> None:
        """Answer the call; a no-op if the caller already gave up. Never blocks."""
        self._put(_Value(value))

    def fail(self, error: Exception) -> None:
        """Make the caller raise CallFailed(actor, error) from ``error``. Never blocks."""
        self._put(_Failure(error))

    def _put(self, outcome: _Value[R] | _Failure) -> None:
        if self._answered:
            raise AlreadyReplied(self._actor)
        self._answered = True
        try:
            self._send.send_nowait(outcome)
        except trio.BrokenResourceError:
            pass  # the caller timed out or was cancelled: nobody is left to tell

    async def _wait(self) -> R:
        try:
            outcome = await self._receive.receive()
        finally:
            self._receive.close()  # from now on a late answer finds nobody, harmlessly
        if isinstance(outcome, _Failure):
            raise CallFailed(self._actor, outcome.error) from outcome.error
        return outcome.value


async def call(address: Address[M], make_request: Callable[[Reply[R]], M]) -> R:
    """Send ``make_request(reply)`` to ``address`` and wait for the answer.

    Waits on the mailbox first if it is full (backpressure), then for the reply.
    Raises CallFailed if the server failed the call, MailboxClosed if it has stopped.
    Set a deadline around it: a server that is cancelled mid-call never answers.
    """
    reply: Reply[R] = Reply(address.name)
    await address.send(make_request(reply))
    return await reply._wait()  # noqa: SLF001 (Reply and call are one unit)


def fail_unanswered(msg: object, error: Exception) -> None:
    """Fail every unanswered Reply in a dataclass message: its server crashed on it.

    Lets the caller raise CallFailed at once instead of waiting out its deadline.
    """
    if not dataclasses.is_dataclass(msg):
        return
    for field in dataclasses.fields(msg):
        value = getattr(msg, field.name)
        if isinstance(value, Reply) and not value.answered:
            value.fail(error)
