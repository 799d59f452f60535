"""Group commit for claims (``group_commit``): fires ready together share one transaction.

A batch never decides anything the single path would decide differently: a batched
claim transaction either wins every fire in it (each fire's compare held), or tells
from its failure-branch reads which fires another worker holds; every other fire goes
back to the single path (``Outcome.SINGLE``), which also handles the answers that need
more than a yes or no (a lost answer, a held guard).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from cluster.store import RunTrigger

from worker.clock import WallClock
from worker.group_commit import GroupQueue, Pending
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
AHEAD_MARGIN_S = 0.1
CLAIM_GATHER_S = 0.005
CHECK_GATHER_S = 0.05


class Outcome(enum.Enum):
    TAKEN = "taken"  # another worker holds the fire
    SINGLE = "single"  # not decided here: take the single-fire path
    UNKNOWN = "unknown"  # the transaction's answer was lost: read the running key back
    NO_SESSION = "no session"  # our session lease is gone: nothing is claimed
    GUARDED = "guarded"  # single path only: the job's guard is held, a run of it goes on


Result = Run | Outcome
PendingClaim = Pending[Fire, Result]


class BatchQueue(GroupQueue[Fire, Result]):
    """Fires waiting to share a claim transaction; undecided ones take the single path."""

    def __init__(self, size: int, *, patience: Callable[[Fire], float] | None = None) -> None:
        super().__init__(size, unsettled=Outcome.SINGLE, max_batch=MAX_BATCH_FIRES,
                         patience=patience)


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
    put the same key, the job's ``state/``, twice)."""
    seen: set[str] = set()
    kept = []
    for pending in batch:
        if pending.item.spec.name in seen:
            pending.settle(Outcome.SINGLE)
        else:
            seen.add(pending.item.spec.name)
            kept.append(pending)
    return kept
