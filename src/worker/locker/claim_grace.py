"""How long a failed claim of one fire is tried again: the fire's misfire grace.

Apart from the Locker because it is one rule with one input, the fire, and it is
where the claim's retries (``SinglePath.try_once``) get their deadlines: a scheduled
fire's grace counts from its time, so a claim etcd did not answer is never won after
the fire would have been a misfire anyway; any other fire (manual, retry, catch-up,
one claimed again after its worker died) is late by design, and its grace counts from
when it was handed over. Each attempt is cut to what is left of the grace, so the last
one does not outlive it; once the grace is over, a last attempt gets the adapter's own
deadline (nothing would be tried after it). Between attempts the fire waits in the
Locker's due fires (``due_fires``), ``ClaimAttempts`` says where its claim stands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.backoff import Backoff
from cluster.store import RunTrigger

from worker.clock import WallClock
from worker.messages import Fire
from .transport import CLAIM_ATTEMPT_S

MIN_ATTEMPT_S = 0.2  # an attempt near the grace's end still gets this long
ETCD_RETRY_S = 0.1  # first wait before a claim is tried again; doubles up to the max
ETCD_RETRY_MAX_S = 0.5


@dataclass(frozen=True, slots=True)
class ClaimGrace:
    deadline_ms: int  # wall-clock ms after which a failed claim is not tried again
    clock: WallClock

    @classmethod
    def of(cls, fire: Fire, clock: WallClock, misfire_grace_s: float) -> ClaimGrace:
        since_ms = fire.planned_ms
        if fire.trigger is not RunTrigger.SCHEDULE or fire.recovers:
            since_ms = max(fire.planned_ms, fire.fired_ms)
        return cls(since_ms + round(misfire_grace_s * 1000), clock)

    def passed(self) -> bool:
        return self.clock.now_ms() >= self.deadline_ms

    def left_s(self) -> float:
        return max(0.0, (self.deadline_ms - self.clock.now_ms()) / 1000)

    def attempt_s(self) -> float | None:
        """One attempt's deadline: ``CLAIM_ATTEMPT_S``, cut to what is left of the grace
        (``MIN_ATTEMPT_S`` at least); None (the adapter's own) for a last chance, when
        the grace is over already and nothing would be tried again."""
        left_s = self.left_s()
        if left_s <= 0:
            return None
        return min(CLAIM_ATTEMPT_S, max(left_s, MIN_ATTEMPT_S))


@dataclass(slots=True)
class ClaimAttempts:
    """Where the single path's claim of one fire stands, between its attempts."""

    grace: ClaimGrace
    unknown: bool = False  # an answer was lost: read the running key back first
    again: bool = False  # the next claim is sent again (and counted a retry)
    why: str = "its answer was lost"  # the last failure, for the line if it is missed
    backoff: Backoff = field(default_factory=lambda: Backoff(ETCD_RETRY_S, ETCD_RETRY_MAX_S))

    @classmethod
    def of(cls, fire: Fire, clock: WallClock, misfire_grace_s: float, *,
           answer_lost: bool = False) -> ClaimAttempts:
        """``answer_lost``: a batch's answer was lost; the running key is read back first."""
        return cls(ClaimGrace.of(fire, clock, misfire_grace_s), unknown=answer_lost,
                   again=answer_lost)
