"""Group commit for claims: fires ready together share one transaction.

A batch never decides anything the single path would decide differently: a batched
claim transaction either wins every fire in it (each fire's compare held), or tells
from its failure-branch reads which fires another worker holds; every other fire goes
back to the single path (``Outcome.SINGLE``), which also handles the answers that need
more than a yes or no (a lost answer, a held guard).

As ``group_commit`` does for the Executor's marks, a batch goes as soon as the
previous one is answered, with whatever gathered meanwhile (up to ``MAX_BATCH_FIRES``);
unlike it, nobody waits for an answer: ``submit`` never blocks, and the batch's answers
are handed to ``settled`` by the serving task once it is answered (issue 14: a task
waiting per fire was the Locker's main cost at 100 fires/s). Bounded by its
submitter: the Locker has at most ``mailbox_size`` fires in flight.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

import trio

from cluster.store import RunTrigger

from worker.clock import WallClock
from worker.messages import Fire, Run

# Each claimed fire adds 3 success ops (running, lock, state) and 1 compare and 1 read:
# below etcd's default --max-txn-ops (128) per list, with room to spare.
MAX_BATCH_FIRES = 32
# A scheduled fire handed over ahead of its time (``scheduler.plan``: a window of them
# at a time) may wait for company, as long as that leaves AHEAD_MARGIN_S before its
# instant for the claim, a backup's own claim, the spawn and the start mark: a first
# choice up to CLAIM_GATHER_S (its window's fires reach the Locker one message at a
# time), a backup's check up to CHECK_GATHER_S (its checks come one rank step after
# each fire's hand-over, ~10 ms apart at 100 fires/s: without waiting, each went alone).
# 50 ms of margin: a backup whose check finds the fire free claims it alone, spawns it
# and marks it in about 10-20 ms on a loaded 2-core machine; 100 ms left the checks of
# a 200 ms lead 40 ms to gather, about 14 transactions a second a worker at 100/s.
AHEAD_MARGIN_S = 0.05
CLAIM_GATHER_S = 0.005
CHECK_GATHER_S = 0.15


class Outcome(enum.Enum):
    TAKEN = "taken"  # another worker holds the fire
    SINGLE = "single"  # not decided here: take the single-fire path
    UNKNOWN = "unknown"  # the transaction's answer was lost: read the running key back
    NO_SESSION = "no session"  # our session lease is gone: nothing is claimed
    GUARDED = "guarded"  # single path only: the job's guard is held, a run of it goes on


Result = Run | Outcome


@dataclass(eq=False, slots=True)
class PendingClaim:
    """One fire in a batch; its transaction may ``settle`` it (else: ``Outcome.SINGLE``)."""

    item: Fire
    result: Result = Outcome.SINGLE
    until: float = -math.inf  # trio time until which it may wait for company

    def settle(self, result: Result) -> None:
        self.result = result


class ClaimBatcher:
    """Fires waiting to share a claim (or check) transaction, and the task that sends them.

    ``send_batch`` settles what its transaction decided; ``settled(batch)`` then gets
    the batch, every fire's answer in its ``result`` (undecided ones:
    ``Outcome.SINGLE``): whole, so that the runs it won go on in one message.
    ``patience``: how long (seconds) a fire may hold its batch open for company; by
    default none.
    """

    def __init__(self, send_batch: Callable[[list[PendingClaim]], Awaitable[None]],
                 settled: Callable[[list[PendingClaim]], Awaitable[None]], *,
                 patience: Callable[[Fire], float] | None = None) -> None:
        self._send_batch = send_batch
        self._settled = settled
        self._patience = patience
        self._waiting: deque[PendingClaim] = deque()
        self._arrived = trio.Event()
        # While the serving task gathers: the trio time it sleeps until. A submitted fire
        # wakes it only if it must go sooner or fills the batch (issue 14: a backup's
        # checks, ~15 to a transaction, woke it once each).
        self._gathering_until: float | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def submit(self, fire: Fire) -> None:
        """Into the next batch; never blocks."""
        pending = PendingClaim(fire, until=self._until(fire))
        self._waiting.append(pending)
        until = self._gathering_until
        if until is None or pending.until < until or len(self._waiting) >= MAX_BATCH_FIRES:
            self._arrived.set()

    async def serve(self) -> NoReturn:
        """Forever: send each batch, then hand its fires' answers on."""
        while True:
            batch = await self._gather()
            await self._send_batch(batch)
            await self._settled(batch)

    async def _gather(self) -> list[PendingClaim]:
        while not self._waiting:
            await self._wait_until(math.inf)
        try:
            while len(self._waiting) < MAX_BATCH_FIRES:
                until = min(p.until for p in self._waiting)
                self._gathering_until = until
                if trio.current_time() >= until or not await self._wait_until(until):
                    break
        finally:
            self._gathering_until = None
        return [self._waiting.popleft() for _ in range(min(len(self._waiting), MAX_BATCH_FIRES))]

    async def _wait_until(self, deadline: float) -> bool:
        """Until ``submit`` wakes us (True) or ``deadline`` passes (False)."""
        self._arrived = trio.Event()
        with trio.move_on_at(deadline):
            await self._arrived.wait()
            return True
        return False

    def _until(self, fire: Fire) -> float:
        """Until when this fire lets its batch wait for more."""
        if self._patience is None:
            return -math.inf
        return trio.current_time() + max(self._patience(fire), 0.0)


def ahead_patience(clock: WallClock, gather_s: float) -> Callable[[Fire], float]:
    """How long a fire may wait for company (seconds): up to ``gather_s`` while it
    leaves ``AHEAD_MARGIN_S`` before its time; a manual run, a retry or a late fire
    not at all."""
    def patience(fire: Fire) -> float:
        if fire.trigger is not RunTrigger.SCHEDULE:
            return 0.0
        ahead_s = (fire.planned_ms - clock.now_ms()) / 1000
        return min(ahead_s - AHEAD_MARGIN_S, gather_s)
    return patience


def distinct_jobs(batch: list[PendingClaim]) -> list[PendingClaim]:
    """The first fire of each job; the others go the single path (a transaction may not
    put the same key, the job's ``state/``, twice): left unsettled."""
    seen: set[str] = set()
    kept = []
    for pending in batch:
        if pending.item.spec.name not in seen:
            seen.add(pending.item.spec.name)
            kept.append(pending)
    return kept
