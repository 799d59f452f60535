"""Group commit for claims: fires that are ready together share one etcd transaction.

Why: a burst (a hundred jobs due at the same second) cost one etcd round trip per fire,
and each round trip costs the worker ~0.7 ms of CPU (a thread hand-off and gRPC's
Python layer), so a burst of 100 spent most of its lateness queueing for CPU. Here a
fire waits only while an earlier transaction of the same queue is in flight; whatever
gathered meanwhile goes in the next one (up to ``MAX_BATCH_FIRES``). An isolated fire
finds the queue idle and goes at once, alone: the spread load pays one channel hop.

A batch never decides anything the single path would decide differently: a batched
claim transaction either wins every fire in it (each fire's compare held), or tells
from its failure-branch reads which fires another worker holds; every other fire goes
back to the single path (``Outcome.SINGLE``), which also handles the answers that need
more than a yes or no (a lost answer, a held guard).

Mailbox policy: the queue is a bounded channel (the Locker's in-flight bound); a full
one makes the claiming task wait, never drops a fire.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import trio

from .messages import Fire, Run

# Each claimed fire adds 3 success ops (running, lock, state) and 1 compare and 1 read:
# below etcd's default --max-txn-ops (128) per list, with room to spare.
MAX_BATCH_FIRES = 32


class Outcome(enum.Enum):
    TAKEN = "taken"  # another worker holds the fire
    SINGLE = "single"  # not decided here: take the single-fire path
    UNKNOWN = "unknown"  # the transaction's answer was lost: read the running key back
    NO_SESSION = "no session"  # our session lease is gone: nothing is claimed


Result = Run | Outcome


@dataclass(eq=False)
class Pending:
    """One fire waiting for its batch; ``settle`` is called exactly once."""

    fire: Fire
    done: trio.Event = field(default_factory=trio.Event)
    result: Result = Outcome.SINGLE

    def settle(self, result: Result) -> None:
        self.result = result
        self.done.set()


class BatchQueue:
    """Fires waiting to share a transaction, and the loop that sends them in batches."""

    def __init__(self, size: int) -> None:
        self._send, self._receive = trio.open_memory_channel[Pending](size)

    def close(self) -> None:
        """No more fires (every claiming task has ended): ``serve`` returns."""
        self._send.close()

    async def submit(self, fire: Fire) -> Result:
        pending = Pending(fire)
        await self._send.send(pending)
        await pending.done.wait()
        return pending.result

    async def serve(self, send_batch: Callable[[list[Pending]], Awaitable[None]], *,
                    min_batch: int = 1) -> None:
        """Until closed: send each group with ``send_batch`` (which settles them); groups
        smaller than ``min_batch`` are handed back at once (``SINGLE``).

        Why claims use batches of one too: the loop must be busy with a transaction for
        the next fires to gather behind it; handing a lone fire back would leave it idle,
        and every fire of a burst would then go alone. Whatever ``send_batch`` leaves
        unsettled (it raised, or was cancelled) is settled ``SINGLE``, so no claiming
        task waits forever.
        """
        async for batch in self._batches():
            if len(batch) < min_batch:
                for pending in batch:
                    pending.settle(Outcome.SINGLE)
                continue
            try:
                await send_batch(batch)
            finally:
                for pending in batch:
                    if not pending.done.is_set():
                        pending.settle(Outcome.SINGLE)

    async def _batches(self) -> AsyncIterator[list[Pending]]:
        async for first in self._receive:
            batch = [first]
            while len(batch) < MAX_BATCH_FIRES:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            yield batch


def distinct_jobs(batch: list[Pending]) -> list[Pending]:
    """The first fire of each job; the others go the single path (a transaction may not
    put the same key, the job's ``state/``, twice)."""
    seen: set[str] = set()
    kept = []
    for pending in batch:
        if pending.fire.spec.name in seen:
            pending.settle(Outcome.SINGLE)
        else:
            seen.add(pending.fire.spec.name)
            kept.append(pending)
    return kept
