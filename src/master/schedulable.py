"""Can any live worker run a job? The answer the API shows, and its transitions.

A job whose ``selector`` matches no live worker is planned by every worker and run by
none (``worker.locker``: its fires are counted, never recorded one by one). The master
says so instead: ``schedulable: false`` with the reason (``no live worker has
zone=b``) in ``GET /api/v1/jobs`` and in the UI (``views.JobView``), computed from the
live workers' labels by ``no_worker_reason``, here and nowhere else.

``SchedulableTracker`` turns those states into *transitions*, one event per change of
a job's state (``SchedulableChanged``), which is what the ``unschedulable`` alert is
raised and cleared on: once, not once per fire. A new state must hold ``settle_ms``
before it is announced, so that a worker restarting (gone for a second, then back)
announces nothing. A paused job is never unschedulable: it would not fire anyway (it
is announced when it is resumed, if no worker can run it then).

A *spell* is the time from a job's announcement as unschedulable to its return (or its
deletion). The open ones are kept in etcd (``unschedulable/<name>``: a ``Spell``, the
time it began and why), and a restarted master starts from them (``restore``): a job
still unschedulable goes on with the same spell, so it is not announced again and its
alert, whose id is built from the spell's start, is not raised twice; one that became
schedulable while the master was down is announced schedulable once the settle time
has passed, which closes the spell. Pure arithmetic on epoch ms, no I/O: the
``SchedulableWatch`` actor (``schedulable_watch``) feeds it, announces, and keeps the
spells.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["SchedulableChanged", "SchedulableTracker", "Spell", "no_worker_reason"]

Labels = Mapping[str, str]


def no_worker_reason(selector: Labels, fleet: Iterable[Labels]) -> str | None:
    """Why no live worker can run a job with this selector (``fleet``: each live
    worker's labels); None when one can. A job without a selector is never judged
    so: any worker runs it, and no worker at all is an outage of the whole fleet
    (``GET /api/v1/workers``, ``scheduler_master_workers``), not of each job."""
    if not selector:
        return None
    if any(all(labels.get(k) == v for k, v in selector.items()) for labels in fleet):
        return None
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return f"no live worker has {wanted}"


@dataclass(frozen=True, slots=True)
class SchedulableChanged:
    """A job became unschedulable (``schedulable`` False, with the ``reason``) or
    schedulable again: the one event per transition the ``unschedulable`` alert
    hangs on."""

    job: str
    schedulable: bool
    reason: str | None  # why no worker can run it; None when schedulable
    since_ms: int  # when the new state began
    at_ms: int  # when it was announced (``since_ms`` + the settle time, or later)


@dataclass(frozen=True, slots=True)
class Spell:
    """An open unschedulable spell, as kept under ``unschedulable/<name>``:
    ``{"since": ms, "reason": str}``."""

    since_ms: int  # when the job became unschedulable: the alert's id is built from it
    reason: str

    def to_bytes(self) -> bytes:
        return json.dumps({"since": self.since_ms, "reason": self.reason}).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> Spell | None:
        """None for a value that is not a spell (written by hand): it is closed."""
        try:
            data = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        since, reason = data.get("since"), data.get("reason")
        if isinstance(since, bool) or not isinstance(since, int) or since < 0 \
                or not isinstance(reason, str):
            return None
        return cls(since, reason)


class SchedulableTracker:
    """Each job's announced state, and the changes waiting out the settle time."""

    def __init__(self, settle_ms: int) -> None:
        self._settle_ms = settle_ms
        self._announced: dict[str, str] = {}  # job -> reason, announced unschedulable
        self._pending: dict[str, tuple[str | None, int]] = {}  # job -> (reason, since)

    @property
    def unschedulable(self) -> int:
        """Jobs announced unschedulable (and not announced schedulable since)."""
        return len(self._announced)

    def observe(self, job: str, reason: str | None, now_ms: int) -> None:
        """The job's state now: ``reason`` None if a live worker can run it."""
        announced = self._announced.get(job)
        if (reason is None) == (announced is None):
            self._pending.pop(job, None)  # back to what was announced: nothing to say
            if reason is not None:
                self._announced[job] = reason  # same state, other words (labels changed)
            return
        pending = self._pending.get(job)
        if pending is not None and (pending[0] is None) == (reason is None):
            self._pending[job] = (reason, pending[1])  # same change, still settling
        else:
            self._pending[job] = (reason, now_ms)

    def restore(self, job: str, reason: str) -> None:
        """A spell a master before this one announced and did not close: the job is
        unschedulable as announced, until seen otherwise (for the settle time)."""
        self._announced[job] = reason

    def announced(self) -> set[str]:
        """The jobs announced unschedulable: each has an open spell."""
        return set(self._announced)

    def is_announced(self, job: str) -> bool:
        return job in self._announced

    def forget(self, job: str) -> None:
        """The job is gone (deleted): nothing more to announce about it."""
        self._announced.pop(job, None)
        self._pending.pop(job, None)

    def next_due_ms(self) -> int | None:
        if not self._pending:
            return None
        return min(since for _, since in self._pending.values()) + self._settle_ms

    def due(self, now_ms: int) -> list[SchedulableChanged]:
        """The changes that have held for the settle time, now announced (by job)."""
        changes = []
        for job, (reason, since) in sorted(self._pending.items()):
            if since + self._settle_ms > now_ms:
                continue
            del self._pending[job]
            if reason is None:
                self._announced.pop(job, None)
            else:
                self._announced[job] = reason
            changes.append(SchedulableChanged(job, reason is None, reason, since, now_ms))
        return changes
