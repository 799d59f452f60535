"""Group commit: requests that are ready together share one etcd transaction.

Why: each etcd round trip costs the worker ~0.7 ms of CPU (a thread hand-off and
gRPC's Python layer), so a burst of a hundred fires paying one round trip each spent
most of its lateness queueing for CPU. Here a request waits only while an earlier
transaction of the same queue is in flight; whatever gathered meanwhile goes in the
next one (up to ``max_batch``). An isolated request finds the queue idle and goes at
once, alone: a spread load pays one channel hop; unless it can afford to wait
(``patience``): then it holds its batch open a little for company. A request whose
submitter was cancelled before its batch went is left out of it.

Two ways to submit: ``submit`` waits for the answer in the submitting task;
``submit_nowait`` leaves a callback that the serving task calls with the answer, so
that a submitter with nothing else to do meanwhile costs no task of its own (the
Executor commits a held run right there).

Mailbox policy: the queue is a bounded channel; a full one makes the submitting task
wait, never drops a request.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class Pending(Generic[T, R]):
    """One request waiting for its batch; ``settle`` is called exactly once."""

    item: T
    result: R
    done: trio.Event = field(default_factory=trio.Event)
    abandoned: bool = False  # its submitter gave up: not sent if not sent yet
    on_settle: Callable[[R], None] | None = None  # submit_nowait's; None once cancelled

    def settle(self, result: R) -> None:
        self.result = result
        self.done.set()
        if self.on_settle is not None:
            on_settle, self.on_settle = self.on_settle, None
            on_settle(result)

    def cancel(self) -> None:
        """Its submitter gives up (a run killed or ended while its mark waited): it is
        left out of its batch if that has not gone yet, and ``on_settle`` is never called."""
        self.abandoned = True
        self.on_settle = None


class GroupQueue(Generic[T, R]):
    """Requests waiting to share a transaction, and the loop that sends them in batches.

    ``unsettled``: the answer of a request its batch left undecided (the batch raised,
    was cancelled, or chose not to decide it). ``patience``: how long (seconds) a request
    may wait for company before its batch goes; by default none: a batch goes with what
    has gathered while the previous one was in flight.
    """

    def __init__(self, size: int, *, unsettled: R, max_batch: int,
                 patience: Callable[[T], float] | None = None) -> None:
        self._send, self._receive = trio.open_memory_channel[Pending[T, R]](size)
        self._unsettled = unsettled
        self._max_batch = max_batch
        self._patience = patience

    def close(self) -> None:
        """No more requests (every submitting task has ended): ``serve`` returns."""
        self._send.close()

    async def submit(self, item: T) -> R:
        pending = Pending(item, self._unsettled)
        try:
            await self._send.send(pending)
            await pending.done.wait()
        except trio.Cancelled:
            pending.cancel()  # e.g. a run killed while its mark waited
            raise
        return pending.result

    def submit_nowait(self, item: T, on_settle: Callable[[R], None]) -> Pending[T, R]:
        """Queue ``item`` without waiting; raises ``trio.WouldBlock`` if the queue is full.

        ``on_settle(result)`` is called once, by the task that settles it (``serve``'s),
        so it must neither block nor raise; ``cancel()`` on the returned Pending gives
        up, and then it is never called.
        """
        pending = Pending(item, self._unsettled, on_settle=on_settle)
        self._send.send_nowait(pending)
        return pending

    async def serve(self, send_batch: Callable[[list[Pending[T, R]]], Awaitable[None]], *,
                    min_batch: int = 1) -> None:
        """Until closed: send each group with ``send_batch`` (which settles them); groups
        smaller than ``min_batch`` are handed back at once, unsettled.

        Why batches of one are sent too: the loop must be busy with a transaction for the
        next requests to gather behind it; handing a lone one back would leave it idle,
        and every request of a burst would then go alone.
        """
        async for gathered in self._batches():
            batch = [p for p in gathered if not p.abandoned]
            if not batch:
                continue
            if len(batch) < min_batch:
                self._settle_rest(batch)
                continue
            try:
                await send_batch(batch)
            finally:
                self._settle_rest(batch)

    def _settle_rest(self, batch: list[Pending[T, R]]) -> None:
        for pending in batch:
            if not pending.done.is_set():
                pending.settle(self._unsettled)

    async def _batches(self) -> AsyncIterator[list[Pending[T, R]]]:
        async for first in self._receive:
            batch = [first]
            deadline = self._deadline(first)
            while len(batch) < self._max_batch \
                    and (more := await self._next(deadline)) is not None:
                batch.append(more)
                deadline = min(deadline, self._deadline(more))
            yield batch

    async def _next(self, deadline: float) -> Pending[T, R] | None:
        """The next request, if one is waiting or comes before ``deadline``."""
        try:
            return self._receive.receive_nowait()
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            return None
        if trio.current_time() >= deadline:
            return None
        with trio.move_on_at(deadline):
            try:
                return await self._receive.receive()
            except trio.EndOfChannel:
                return None
        return None

    def _deadline(self, pending: Pending[T, R]) -> float:
        """Until when this request lets its batch wait for more."""
        if self._patience is None:
            return -math.inf
        return trio.current_time() + max(self._patience(pending.item), 0.0)
