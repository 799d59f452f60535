"""What lives on a worker's session lease: its registration and its runs in progress.

Both the worker (which writes these values) and the master (which reads them to list
workers and running jobs) decode them here, so the JSON shape is defined once. Keys
are built by ``cluster.keyspace``; values are camelCase JSON like the job spec.

Errors::

    ValueError
     └── PresenceDecodeError   a value under workers/ or running/ is not ours
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


# States of a run under running/ (see RunningInfo).
CLAIMED = "claimed"
STARTED = "started"
ORPHANED = "orphaned"  # started by its own process after its worker died (worker.executor.orphan)
ENDED = "ended"  # ended, and its chained runs' triggers written (worker.chains)


class PresenceDecodeError(ValueError):
    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"cannot decode {what}: {reason}")
        self.what = what
        self.reason = reason


def _load(what: str, data: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PresenceDecodeError(what, f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise PresenceDecodeError(what, "not a JSON object")
    return value


def is_seed_registration(value: bytes | str) -> bool:
    """The seed's worker registers itself as ``workers/<its IP>`` with an empty value.

    Such a worker is live (its key is on its lease) but says nothing else about itself:
    the master lists it, as the seed's master did; our workers never place fires on it
    (it does not take part in our claims)."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return not raw.strip()


def _dump(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def fleet_epoch(worker_ids: Iterable[str]) -> str:
    """A short name for one membership (a set of worker ids): the same in every process,
    whatever the order. Workers compare memberships by it instead of by their lists, so
    that a registration stays small in a fleet of hundreds (it is republished to every
    watcher every ``session_ttl_s``/3)."""
    text = "\n".join(sorted(set(worker_ids)))
    return hashlib.blake2b(f"fleet:{text}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Serving:
    """What a worker of a sharded cluster says about its slots (DESIGN §6b, issue 14).

    ``fleet``: the ``fleet_epoch`` of the membership the worker has loaded its slots
    for (their jobs, states and runs read, their watches and plans running), and
    ``fleet_size`` how many workers that membership has. The others take a joining
    worker into their slot tables only once it publishes this, and a leaving worker
    (``leaving``) hands over its slots once their successors publish the membership
    without it: make before break, so no slot is ever left unserved by a move.

    Absent (``WorkerInfo.serving`` None): a worker of an earlier release, or of a
    cluster with shards off; it plans every job, as before issue 14."""

    fleet: str
    fleet_size: int
    leaving: bool = False

    def to_json(self) -> dict[str, object]:
        return {"fleet": self.fleet, "fleetSize": self.fleet_size, "leaving": self.leaving}

    @classmethod
    def from_json(cls, value: object) -> "Serving | None":
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("fleet"), str) \
                or isinstance(value.get("fleetSize"), bool) \
                or not isinstance(value.get("fleetSize"), int) or value["fleetSize"] < 1 \
                or not isinstance(value.get("leaving", False), bool):
            raise TypeError(f"serving must be {{fleet, fleetSize, leaving}}, not {value!r}")
        return cls(value["fleet"], value["fleetSize"], value.get("leaving", False))


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker's registration under ``workers/<id>``; republished every few seconds."""

    worker_id: str
    host: str
    pid: int
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    version: str = ""
    started_ms: int = 0
    running: int = 0
    capacity: int = 0
    wall_ms: int = 0  # the worker's clock when it published: the master shows the skew
    # What keeps it from taking work, one line each ("spill: disk full"); () when healthy.
    problems: tuple[str, ...] = ()
    # The slots it has loaded, in a sharded cluster; None (not written) otherwise.
    serving: Serving | None = None

    def matches(self, selector: Mapping[str, str]) -> bool:
        """True when this worker carries every label the selector asks for."""
        return all(self.labels.get(k) == v for k, v in selector.items())

    def to_bytes(self) -> bytes:
        value: dict[str, object] = {
            "id": self.worker_id, "host": self.host, "pid": self.pid,
            "labels": dict(self.labels), "version": self.version,
            "startedAt": self.started_ms, "running": self.running,
            "capacity": self.capacity, "wallClock": self.wall_ms,
            "problems": list(self.problems),
        }
        if self.serving is not None:  # absent otherwise: the bytes of earlier releases
            value["serving"] = self.serving.to_json()
        return _dump(value)

    @classmethod
    def from_bytes(cls, data: bytes | str) -> "WorkerInfo":
        v = _load("worker info", data)
        try:
            return cls(
                worker_id=str(v["id"]), host=str(v.get("host", "")), pid=int(v.get("pid", 0)),
                labels=MappingProxyType({str(k): str(x) for k, x in v.get("labels", {}).items()}),
                version=str(v.get("version", "")), started_ms=int(v.get("startedAt", 0)),
                running=int(v.get("running", 0)), capacity=int(v.get("capacity", 0)),
                wall_ms=int(v.get("wallClock", 0)),
                problems=tuple(str(p) for p in v.get("problems", ())),
                serving=Serving.from_json(v.get("serving")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PresenceDecodeError("worker info", repr(exc)) from None


@dataclass(frozen=True, slots=True)
class RunningInfo:
    """A run in progress under ``running/<name>/<run_id>`` (on the worker's session lease).

    Carries what another worker needs to write the run's ``lost`` record and apply the
    retry policy if this worker dies mid-run, or to run it in its place if it died
    before the run's command was committed to start (``state``).

    ``state``: ``claimed`` from the claim until the run's process is committed to start
    its command; then ``started`` (``worker.executor.start_marks``), or ``orphaned`` if the
    process committed itself after its worker died; ``ended`` once a run whose job has
    chained jobs ended and their triggers were written (``worker.chains``). A value
    without a state is read as ``started``: nothing may run twice on a guess.
    """

    run_id: str
    job_name: str
    worker_id: str
    planned_ms: int
    attempt: int
    trigger: str
    # When it was claimed; once marked started, when its command starts (never before
    # planned_ms).
    started_ms: int
    state: str = STARTED
    # A catch-up run: the fires it stands for (kept if another worker runs it instead).
    missed_fires: int | None = None
    first_missed_ms: int | None = None

    @property
    def started(self) -> bool:
        """Committed to start: if its worker dies now, the run may have run (``lost``)."""
        return self.state != CLAIMED

    def with_state(self, state: str) -> "RunningInfo":
        return dataclasses.replace(self, state=state)

    def to_bytes(self) -> bytes:
        value: dict[str, object] = {
            "runId": self.run_id, "jobName": self.job_name, "worker": self.worker_id,
            "planTime": self.planned_ms, "attempt": self.attempt,
            "trigger": self.trigger, "startTime": self.started_ms, "state": self.state,
        }
        if self.missed_fires is not None:
            value |= {"missedFires": self.missed_fires, "firstMissed": self.first_missed_ms}
        return _dump(value)

    @classmethod
    def from_bytes(cls, data: bytes | str) -> "RunningInfo":
        v = _load("running run", data)
        try:
            return cls(
                run_id=str(v["runId"]), job_name=str(v["jobName"]), worker_id=str(v["worker"]),
                planned_ms=int(v["planTime"]), attempt=int(v.get("attempt", 1)),
                trigger=str(v.get("trigger", "schedule")), started_ms=int(v.get("startTime", 0)),
                state=v["state"] if v.get("state") in (CLAIMED, ORPHANED, ENDED) else STARTED,
                missed_fires=_optional_int(v.get("missedFires")),
                first_missed_ms=_optional_int(v.get("firstMissed")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PresenceDecodeError("running run", repr(exc)) from None


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
