"""A key's parts: what each may be, and what a key parses into (``cluster.keyspace``).

The rules every part of a key obeys (a job name, a run or worker id, a fire time, an
alert channel name, an audit entry id), checked when a key is built, so that a bad part
raises instead of writing a key of another shape; and the typed parts a key parses into
(``JobKey``, ``LockKey``, ...), one parser per directory, total: anything not of the shape
yields None. ``Keyspace`` (``cluster.keyspace``) builds the keys from these parts and
keeps the layout; this module knows no prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ALERT_CHANNEL_RE", "AUDIT_ID_RE", "ID_RE", "JOB_NAME_RE", "PLANNED_MS_DIGITS",
    "ActiveKey", "AuditKey", "JobKey", "KeyspaceError", "KillerKey", "LockKey", "LostKey",
    "ParsedKey", "RetryKey", "RunningKey", "StateKey", "TriggerKey", "UnschedulableKey",
    "WorkerKey",
    "check_id", "check_name", "check_planned", "is_valid_job_name", "parse_parts",
]

#: A job name is one key segment: no `/`, no leading dot (so never `.` or `..`).
JOB_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
#: Run ids and worker ids: one key segment too (host names, uuids, `host:pid` fit).
ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}", re.ASCII)
PLANNED_MS_DIGITS: Final = 16
#: Alert channel names (cluster.alerts.CHANNEL_NAME_RE is the same rule).
ALERT_CHANNEL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
#: Audit entry ids: the entry's time (ms, zero-padded like lock keys) and a random part.
AUDIT_ID_RE: Final = re.compile(r"[0-9]{16}-[0-9a-f]{16}", re.ASCII)
_MAX_PLANNED_MS: Final = 10**PLANNED_MS_DIGITS - 1


class KeyspaceError(ValueError):
    """A key part is not valid: it would build a key of another shape."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"invalid {what} {value!r}: {rule}")


def is_valid_job_name(name: object) -> bool:
    return isinstance(name, str) and JOB_NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    if not is_valid_job_name(name):
        raise KeyspaceError("job name", name, f"must match {JOB_NAME_RE.pattern}")
    return name


def check_id(what: str, value: str) -> str:
    if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
        raise KeyspaceError(what, value, f"must match {ID_RE.pattern}")
    return value


def check_planned(planned_ms: int) -> int:
    if isinstance(planned_ms, bool) or not isinstance(planned_ms, int) \
            or not 0 <= planned_ms <= _MAX_PLANNED_MS:
        raise KeyspaceError("planned_ms", planned_ms, f"must be an int in 0..{_MAX_PLANNED_MS}")
    return planned_ms


# --------------------------------------------------------------------------- parsed keys


@dataclass(frozen=True, slots=True)
class JobKey:
    name: str


@dataclass(frozen=True, slots=True)
class KillerKey:
    name: str


@dataclass(frozen=True, slots=True)
class TriggerKey:
    name: str
    run_id: str


@dataclass(frozen=True, slots=True)
class RetryKey:
    name: str
    run_id: str


@dataclass(frozen=True, slots=True)
class LockKey:
    name: str
    planned_ms: int
    attempt: int = 1  # retries of a fire are fires of their own


@dataclass(frozen=True, slots=True)
class LostKey:
    """Claim of a run that vanished with its worker: to run it again or record it lost.
    ``run_id`` is ``<run id>@<worker id>`` (or a hash of it, when that is too long)."""

    name: str
    run_id: str


@dataclass(frozen=True, slots=True)
class RunningKey:
    name: str
    run_id: str


@dataclass(frozen=True, slots=True)
class ActiveKey:
    name: str


@dataclass(frozen=True, slots=True)
class WorkerKey:
    worker_id: str


@dataclass(frozen=True, slots=True)
class StateKey:
    name: str


@dataclass(frozen=True, slots=True)
class AuditKey:
    entry_id: str


@dataclass(frozen=True, slots=True)
class UnschedulableKey:
    name: str


ParsedKey = (JobKey | KillerKey | TriggerKey | RetryKey | LockKey | LostKey | RunningKey
             | ActiveKey | WorkerKey | StateKey | AuditKey | UnschedulableKey)


# --------------------------------------------------------------------------- parsers


def _one_name(make: Callable[[str], ParsedKey]) -> Callable[[list[str]], ParsedKey | None]:
    def parse(parts: list[str]) -> ParsedKey | None:
        if len(parts) == 1 and is_valid_job_name(parts[0]):
            return make(parts[0])
        return None
    return parse


def _name_and_id(
        make: Callable[[str, str], ParsedKey]) -> Callable[[list[str]], ParsedKey | None]:
    def parse(parts: list[str]) -> ParsedKey | None:
        if len(parts) == 2 and is_valid_job_name(parts[0]) and ID_RE.fullmatch(parts[1]):
            return make(parts[0], parts[1])
        return None
    return parse


def _lock(parts: list[str]) -> LockKey | None:
    if len(parts) != 2 or not is_valid_job_name(parts[0]):
        return None
    planned, dot, attempt = parts[1].partition(".")
    if not (planned.isascii() and planned.isdigit() and len(planned) == PLANNED_MS_DIGITS):
        return None
    if not dot:
        return LockKey(parts[0], int(planned))
    if attempt.isascii() and attempt.isdigit() and int(attempt) > 1 and attempt[0] != "0":
        return LockKey(parts[0], int(planned), int(attempt))
    return None


def _worker(parts: list[str]) -> WorkerKey | None:
    if len(parts) == 1 and ID_RE.fullmatch(parts[0]):
        return WorkerKey(parts[0])
    return None


def _audit(parts: list[str]) -> AuditKey | None:
    if len(parts) == 1 and AUDIT_ID_RE.fullmatch(parts[0]):
        return AuditKey(parts[0])
    return None


_PARSERS: Final[dict[str, Callable[[list[str]], ParsedKey | None]]] = {
    "jobs": _one_name(JobKey),
    "killer": _one_name(KillerKey),
    "trigger": _name_and_id(TriggerKey),
    "retry": _name_and_id(RetryKey),
    "lock": _lock,
    "lost": _name_and_id(LostKey),
    "running": _name_and_id(RunningKey),
    "active": _one_name(ActiveKey),
    "workers": _worker,
    "state": _one_name(StateKey),
    "audit": _audit,
    "unschedulable": _one_name(UnschedulableKey),
}


def parse_parts(directory: str, parts: list[str]) -> ParsedKey | None:
    """The typed parts of a key below the prefix: its directory and the segments after."""
    parser = _PARSERS.get(directory)
    return None if parser is None else parser(parts)
