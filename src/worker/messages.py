"""The payloads several actors share: ``Fire``, ``Run`` and ``SkipTally``. Each actor's own messages
(its ``...Msg`` union) are in its package: ``worker.<actor>.messages``.

Who sends what to whom: ``python -m worker.flow``, shown in DESIGN §0.

Shared values (``Fire``, ``Run``) are frozen so that a message can never be changed
after it was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cluster.spec import JobSpec
from cluster.store import RunTrigger


@dataclass(frozen=True, slots=True)
class Upstream:
    """The finished run a chained run runs after (``worker.chains``)."""

    job: str
    run_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Fire:
    """One planned execution of a job, before anybody claimed it."""

    spec: JobSpec
    planned_ms: int  # the cron time (for manual runs: when it was asked for)
    fired_ms: int  # when this worker's Scheduler handed it over (schedule_time)
    trigger: RunTrigger
    run_id: str
    attempt: int = 1
    # Non-empty: a run that worker ``recovers`` claimed, then died before its command
    # was committed to start; the fire is claimed again under the same run id.
    recovers: str = ""
    # Chains: the jobs that run after this one, as (name, on) when the fire was claimed;
    # for a chained run (trigger ``chain``), the upstream run it runs after.
    chains: tuple[tuple[str, str], ...] = ()
    upstream: Upstream | None = None
    # A catch-up fire: how many fire times within startingDeadline were missed, and the
    # first (``catchUp: last`` runs one fire for them all); its record says so.
    missed_fires: int | None = None
    first_missed_ms: int | None = None
    # A catch-up fire: the last fire before the outage (``state/``), and the newest
    # missed time of the set it belongs to. Workers that came back at different
    # instants see different sets; the outage key (beside the fire's own lock) lets one
    # of them run it, and the claim moves the cursor past the set (``worker.outages``).
    catch_up_after_ms: int | None = None
    last_missed_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """A fire this worker won: it holds ``running/<name>/<run_id>`` on ``session_lease``."""

    fire: Fire
    session_lease: int
    guarded: bool  # it also holds ``active/<name>`` (concurrency forbid/replace)


@dataclass(frozen=True, slots=True)
class SkipTally:
    """The fires skipped while run ``run_id`` held the job's guard (``worker.skips``)."""

    run_id: str  # the run that was still going
    count: int
    first_planned_ms: int
    first_fired_ms: int
    last_planned_ms: int

    @classmethod
    def first(cls, run_id: str, fire: Fire) -> SkipTally:
        return cls(run_id, 1, fire.planned_ms, fire.fired_ms, fire.planned_ms)

    def plus(self, fire: Fire) -> SkipTally:
        return SkipTally(self.run_id, self.count + 1, min(self.first_planned_ms, fire.planned_ms),
                         self.first_fired_ms, max(self.last_planned_ms, fire.planned_ms))

    def to_bytes(self) -> bytes:
        return json.dumps({"runId": self.run_id, "count": self.count,
                           "firstPlanned": self.first_planned_ms,
                           "firstFired": self.first_fired_ms,
                           "lastPlanned": self.last_planned_ms},
                          separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> SkipTally | None:
        """None for a value that is not a tally (the key is then written anew)."""
        try:
            d = json.loads(value)
            tally = cls(d["runId"], d["count"], d["firstPlanned"], d["firstFired"],
                        d["lastPlanned"])
        except (ValueError, TypeError, KeyError):
            return None
        ints = (tally.count, tally.first_planned_ms, tally.first_fired_ms, tally.last_planned_ms)
        if not isinstance(tally.run_id, str) or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in ints):
            return None
        return tally
