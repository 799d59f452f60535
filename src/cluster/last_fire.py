"""``state/<name>``: a job's last fire, whatever its path, and where catch-up starts.

Every path that runs a job writes it: a scheduled fire, a catch-up, a ``replace``, a
run claimed again after its worker died, a manual run, a retry, a chain. Two things
are kept apart in it, because they move differently:

* ``cursor_ms``, the latest *scheduled* time claimed: after an outage, the fires
  missed are those after it (``worker.scheduler.catch_up``). Only a scheduled or
  catch-up fire moves it, and never backwards: a manual run at 10:30 does not make the
  fires of 10:05-10:25 any less missed, and a retry or a recovered run of 10:00 claimed
  at 10:01 must not make 10:00:01-10:01 look missed again (it would run them twice).
* the last fire itself (``planned_ms``, ``trigger``, ``run_id``, ``attempt``,
  ``worker``, ``at_ms``: when it was claimed), for operators and tools.

The scheduled paths put the whole value in their claim transaction (one write, no
read: the hot path), so two scheduled claims of one job that land out of order (a
backup claiming within the misfire grace after a later fire was claimed) leave the
earlier time: back by at most the grace, and those fires' locks (``lock_ttl_s``) keep
a restart from running them twice. The others merge into it by compare-and-set
(``worker.last_fires``). A value of an earlier release is the cursor alone, in decimal
milliseconds: it still reads, with no last fire known.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["LastFire", "LastFireDecodeError", "SCHEDULED_TRIGGERS"]

# Triggers whose planned time is a time of the schedule: they move the cursor.
SCHEDULED_TRIGGERS = frozenset({"schedule", "catchup"})
_DECIMAL_MS = re.compile(r"\s*\d{1,16}\s*")


class LastFireDecodeError(ValueError):
    """A ``state/`` value that is neither ours nor the earlier decimal form."""


@dataclass(frozen=True, slots=True)
class LastFire:
    cursor_ms: int | None  # the latest scheduled time claimed (None: none yet)
    planned_ms: int
    trigger: str
    run_id: str = ""
    attempt: int = 1
    worker: str = ""
    at_ms: int | None = None

    def after(self, planned_ms: int, trigger: str, run_id: str, attempt: int, worker: str,
              at_ms: int) -> LastFire:
        """This value with a newer fire merged in: it becomes the last fire; the cursor
        moves only forward, and only for a scheduled time."""
        cursor = self.cursor_ms
        if trigger in SCHEDULED_TRIGGERS:
            cursor = planned_ms if cursor is None else max(cursor, planned_ms)
        return LastFire(cursor, planned_ms, trigger, run_id, attempt, worker, at_ms)

    @classmethod
    def first(cls, planned_ms: int, trigger: str, run_id: str, attempt: int, worker: str,
              at_ms: int, *, cursor_ms: int | None = None) -> LastFire:
        """``cursor_ms``: a catch-up fire's newest time of its set, where the cursor
        goes at once (``worker.outages``); never behind ``planned_ms``."""
        cursor = None
        if trigger in SCHEDULED_TRIGGERS:
            cursor = planned_ms if cursor_ms is None else max(planned_ms, cursor_ms)
        return cls(cursor, planned_ms, trigger, run_id, attempt, worker, at_ms)

    def to_bytes(self) -> bytes:
        return json.dumps({
            "cursor": self.cursor_ms, "planTime": self.planned_ms, "trigger": self.trigger,
            "runId": self.run_id, "attempt": self.attempt, "worker": self.worker,
            "at": self.at_ms,
        }, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> LastFire:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if _DECIMAL_MS.fullmatch(text):  # an earlier release's value: the cursor alone
            return cls(int(text), int(text), "schedule")
        try:
            v = json.loads(text)
            cursor = v.get("cursor")
            return cls(
                cursor_ms=None if cursor is None else int(cursor),
                planned_ms=int(v["planTime"]), trigger=str(v["trigger"]),
                run_id=str(v.get("runId", "")), attempt=int(v.get("attempt", 1)),
                worker=str(v.get("worker", "")),
                at_ms=None if v.get("at") is None else int(v["at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LastFireDecodeError(f"not a last fire: {text[:40]!r} ({exc!r})") from None
