"""The payloads several actors share: ``Fire`` and ``Run``. Each actor's own messages
(its ``...Msg`` union) are in its package: ``worker.<actor>.messages``.

Who sends what to whom: ``python -m worker.flow``, shown in DESIGN §0.

Shared values (``Fire``, ``Run``) are frozen so that a message can never be changed
after it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.spec import JobSpec
from cluster.store import RunTrigger


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
    # A catch-up fire: how many fire times within startingDeadline were missed, and the
    # first (``catchUp: last`` runs one fire for them all); its record says so.
    missed_fires: int | None = None
    first_missed_ms: int | None = None
    # A ``catchUp: last`` fire: the last fire before the outage (``state/``). Workers
    # that came back at different instants pick different times; this key (beside the
    # fire's own lock) lets one of them run it.
    catch_up_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """A fire this worker won: it holds ``running/<name>/<run_id>`` on ``session_lease``."""

    fire: Fire
    session_lease: int
    guarded: bool  # it also holds ``active/<name>`` (concurrency forbid/replace)
