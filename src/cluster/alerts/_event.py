"""An alert event: what the outbox stores and what channels send.

The event id is derived from what raised it (``<run id>:<kind>``, or
``unschedulable:<job>:<ms>``), so that two writers deciding on the same record write
one outbox row, and a receiver that gets the same event twice (a retry after a lost
answer) can tell by its id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from ._kinds import AlertKind

__all__ = ["AlertEvent", "AlertSettings", "EXCERPT_CHARS", "excerpt", "unschedulable_event"]

EXCERPT_CHARS: Final = 2000  # the tail of the output (and of stderr) an alert carries


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The last ``limit`` characters: a failure says why at the end."""
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One event. ``run`` is the run record's JSON (None for unschedulable and test)."""

    event_id: str
    kind: AlertKind
    job: str
    time_ms: int
    count: int = 1
    streak: int = 0
    run: dict[str, Any] | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, public_url: str | None = None) -> dict[str, Any]:
        """The webhook's JSON body: id, kind, job, run record, excerpt, link."""
        run = dict(self.run) if self.run else None
        output = excerpt(run.pop("output", "")) if run else ""
        err = excerpt(run.pop("err", "")) if run else ""
        return {
            "id": self.event_id, "kind": self.kind.value, "job": self.job,
            "time": self.time_ms, "count": self.count, "streak": self.streak,
            "reason": self.reason, "run": run,
            "outputExcerpt": output, "errExcerpt": err,
            "url": self.link(public_url),
        }

    def link(self, public_url: str | None) -> str | None:
        """The run (or the job) in the UI, if the master's public URL is known."""
        if not public_url:
            return None
        base = public_url.rstrip("/")
        if self.run and self.run.get("runId"):
            return f"{base}/#/runs/{quote(str(self.run['runId']), safe='')}"
        return f"{base}/#/jobs/{quote(self.job, safe='')}"

    def summary(self) -> str:
        """One line for humans (Slack text, the email subject)."""
        if self.kind is AlertKind.RECOVERED:
            return f"[scheduler] {self.job} recovered after {self.streak} failure(s)"
        if self.kind is AlertKind.UNSCHEDULABLE:
            return f"[scheduler] {self.job} is unschedulable: {self.reason or 'no worker'}"
        if self.kind is AlertKind.TEST:
            return f"[scheduler] test alert{f' ({self.reason})' if self.reason else ''}"
        more = f" ({self.count} failures since the last alert)" if self.count > 1 else ""
        return f"[scheduler] {self.job} {self.kind.value}{more}"

    def to_stored(self) -> str:
        return json.dumps({"id": self.event_id, "kind": self.kind.value, "job": self.job,
                           "time": self.time_ms, "count": self.count, "streak": self.streak,
                           "run": self.run, "reason": self.reason, "extra": self.extra},
                          ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_stored(cls, text: str) -> AlertEvent:
        d = json.loads(text)
        return cls(d["id"], AlertKind(d["kind"]), d["job"], int(d["time"]), int(d["count"]),
                   int(d.get("streak") or 0), d.get("run"), d.get("reason"),
                   dict(d.get("extra") or {}))


def unschedulable_event(job: str, reason: str, since_ms: int) -> AlertEvent:
    """The ``unschedulable`` event of ``job`` since ``since_ms``.

    For the code that finds a job unschedulable (issue 12, "Semantics" 4): pass the
    time the job *became* unschedulable, as every observer sees it (e.g. kept in
    etcd with the job's state), not the time of the check: the event id is derived
    from it, so every worker and master that raises it writes one outbox row, and the
    job alerts once per spell, not once per fire. Queue it with
    ``RunStore.alerts.enqueue(event)`` (the master: ``AlertManager.unschedulable``).
    """
    return AlertEvent(f"unschedulable:{job}:{since_ms}", AlertKind.UNSCHEDULABLE, job,
                      since_ms, 1, reason=reason)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The cluster-wide settings, in etcd under ``alerts/settings`` (the master writes
    them at start from its config): the repeat interval, the default policy, the UI's
    public URL for links, and the cap of the delivery backoff (retries wait 5 s,
    doubling up to it, for 24 h)."""

    repeat_s: float = 3600.0
    default: dict[str, Any] | None = None  # an AlertPolicy's JSON; None: every event
    public_url: str | None = None
    backoff_max_s: float = 900.0

    def to_json(self) -> dict[str, Any]:
        return {"repeatS": self.repeat_s, "default": self.default,
                "publicUrl": self.public_url, "backoffMaxS": self.backoff_max_s}

    @classmethod
    def from_json(cls, data: object) -> AlertSettings:
        if not isinstance(data, dict):
            return cls()
        return cls(_seconds(data.get("repeatS"), 3600.0), data.get("default"),
                   data.get("publicUrl"), max(_seconds(data.get("backoffMaxS"), 900.0), 1.0))


def _seconds(value: object, default: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        return default
    return float(min(value, 86_400))
