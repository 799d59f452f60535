"""The etcd keyspace (DESIGN §4): every key is built and parsed here, nowhere else.

Keys under a configurable prefix (default `/cron/`; tests use one per test):

    <p>jobs/<name>                   job spec JSON
    <p>killer/<name>                 kill request (JSON with optional runId and replacedBy,
                                     or plain `kill`)
    <p>trigger/<name>/<run_id>       manual "run now" request
    <p>retry/<name>/<run_id>         a pending retry: its fire, attempt and due time
    <p>lock/<name>/<planned_ms>      claim of one fire; planned_ms zero-padded to 16 digits
                                     so that a job's locks sort by fire time
    <p>lock/<name>/<ms>.catchup      one view of the outage after the fire at <ms>: the
                                     one `catchUp: last` run, or who runs `all` of it
    <p>running/<name>/<run_id>       run in progress
    <p>active/<name>                 the one run allowed now (forbid / replace)
    <p>skipped/<name>                fires skipped while that run goes on (a tally)
    <p>workers/<worker_id>           worker info JSON
    <p>state/<name>                  the last fire, and the catch-up cursor (cluster.last_fire)
    <p>alert-channels/<name>         an alert channel's JSON (secrets included; issue 12)
    <p>alerts/settings               the cluster's alert settings (written by the master)
    <p>audit/<entry_id>              audit entry of one change, written in the change's own
                                     transaction; moved to the run store by the master
                                     (entry_id = 16-digit time ms, '-', 16 hex digits, so
                                     entries sort by time). No worker reads it.

Why names are validated here too: a `/` in a job name would move its keys into another
job's directory (`a/b` under `jobs/` would look like job `a`'s subtree elsewhere), so
building a key from an invalid part raises instead of writing a wrong key. Parsers are
total: a key that does not belong to the shape asked for yields None.

Errors:
    ValueError
     ├── KeyspaceError      an invalid prefix, name, id or fire time for a key
     └── KillValueError     a kill-request value that is neither JSON nor `kill`
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from collections.abc import Callable
from typing import Final

__all__ = [
    "AUDIT_ID_RE", "JOB_NAME_RE", "ActiveKey", "AuditKey", "JobKey", "KeyspaceError",
    "Keyspace", "KillRequest", "KillValueError", "KillerKey", "LockKey", "ParsedKey",
    "RetryKey", "RunningKey", "StateKey", "TriggerKey", "WorkerKey", "encode_kill_value", "is_valid_job_name", "parse_kill_value",
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
_KILL_WORDS: Final = frozenset({b"", b"kill"})


class KeyspaceError(ValueError):
    """A key part is not valid: it would build a key of another shape."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"invalid {what} {value!r}: {rule}")


class KillValueError(ValueError):
    """A kill-request value that is neither `kill`, empty, nor a JSON object."""

    def __init__(self, value: bytes, reason: str) -> None:
        self.value = value
        super().__init__(f"invalid kill request {value[:80]!r}: {reason}")


def is_valid_job_name(name: object) -> bool:
    return isinstance(name, str) and JOB_NAME_RE.fullmatch(name) is not None


def _check_name(name: str) -> str:
    if not is_valid_job_name(name):
        raise KeyspaceError("job name", name, f"must match {JOB_NAME_RE.pattern}")
    return name


def _check_id(what: str, value: str) -> str:
    if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
        raise KeyspaceError(what, value, f"must match {ID_RE.pattern}")
    return value


def _check_planned(planned_ms: int) -> int:
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


ParsedKey = (JobKey | KillerKey | TriggerKey | RetryKey | LockKey | LostKey | RunningKey
             | ActiveKey | WorkerKey | StateKey | AuditKey)


# --------------------------------------------------------------------------- keyspace


@dataclass(frozen=True, slots=True)
class Keyspace:
    """Builds and parses the keys under one prefix. Cheap; make one per cluster."""

    prefix: str = "/cron/"

    def __post_init__(self) -> None:
        p = self.prefix
        if not isinstance(p, str) or not p.startswith("/") or not p.endswith("/") \
                or "//" in p or any(c.isspace() for c in p):
            raise KeyspaceError("prefix", p, "must start and end with '/', no '//' or blanks")

    # ---- directories (prefixes for range reads and watches)

    @property
    def jobs_prefix(self) -> str:
        return f"{self.prefix}jobs/"

    @property
    def killer_prefix(self) -> str:
        return f"{self.prefix}killer/"

    @property
    def trigger_prefix(self) -> str:
        return f"{self.prefix}trigger/"

    @property
    def retry_prefix(self) -> str:
        return f"{self.prefix}retry/"

    @property
    def workers_prefix(self) -> str:
        return f"{self.prefix}workers/"

    @property
    def active_prefix(self) -> str:
        return f"{self.prefix}active/"

    @property
    def state_prefix(self) -> str:
        return f"{self.prefix}state/"

    @property
    def audit_prefix(self) -> str:
        return f"{self.prefix}audit/"

    @property
    def alert_channels_prefix(self) -> str:
        return f"{self.prefix}alert-channels/"

    @property
    def alert_settings(self) -> str:
        """The cluster's alert settings (repeat interval, default policy, public URL)."""
        return f"{self.prefix}alerts/settings"

    def alert_channel(self, name: str) -> str:
        if not isinstance(name, str) or ALERT_CHANNEL_RE.fullmatch(name) is None:
            raise KeyspaceError("alert channel name", name,
                                f"must match {ALERT_CHANNEL_RE.pattern}")
        return f"{self.prefix}alert-channels/{name}"

    def lock_prefix(self, name: str | None = None) -> str:
        """All locks, or one job's (its locks sort by fire time)."""
        base = f"{self.prefix}lock/"
        return base if name is None else f"{base}{_check_name(name)}/"

    def running_prefix(self, name: str | None = None) -> str:
        base = f"{self.prefix}running/"
        return base if name is None else f"{base}{_check_name(name)}/"

    def trigger_prefix_of(self, name: str) -> str:
        return f"{self.trigger_prefix}{_check_name(name)}/"

    # ---- keys

    def job(self, name: str) -> str:
        return f"{self.prefix}jobs/{_check_name(name)}"

    def killer(self, name: str) -> str:
        return f"{self.prefix}killer/{_check_name(name)}"

    def trigger(self, name: str, run_id: str) -> str:
        return f"{self.prefix}trigger/{_check_name(name)}/{_check_id('run id', run_id)}"

    def lock(self, name: str, planned_ms: int, attempt: int = 1) -> str:
        planned = _check_planned(planned_ms)
        key = f"{self.prefix}lock/{_check_name(name)}/{planned:0{PLANNED_MS_DIGITS}d}"
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise KeyspaceError("attempt", attempt, "must be an int >= 1")
        return key if attempt == 1 else f"{key}.{attempt}"

    def retry(self, name: str, run_id: str) -> str:
        return f"{self.prefix}retry/{_check_name(name)}/{_check_id('run id', run_id)}"

    def catch_up(self, name: str, after_ms: int) -> str:
        """The outage that began after the fire at ``after_ms`` (its ``state/``): one
        ``catchUp: last`` run, or the one worker that runs ``all`` of it
        (``worker.outages``)."""
        return f"{self.lock(name, after_ms)}.catchup"

    def lost(self, name: str, run_id: str) -> str:
        return f"{self.prefix}lost/{_check_name(name)}/{_check_id('run id', run_id)}"

    def running(self, name: str, run_id: str) -> str:
        return f"{self.prefix}running/{_check_name(name)}/{_check_id('run id', run_id)}"

    def active(self, name: str) -> str:
        return f"{self.prefix}active/{_check_name(name)}"

    def skipped(self, name: str) -> str:
        return f"{self.prefix}skipped/{_check_name(name)}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}workers/{_check_id('worker id', worker_id)}"

    def state(self, name: str) -> str:
        return f"{self.prefix}state/{_check_name(name)}"

    def audit(self, entry_id: str) -> str:
        if not isinstance(entry_id, str) or AUDIT_ID_RE.fullmatch(entry_id) is None:
            raise KeyspaceError("audit entry id", entry_id, f"must match {AUDIT_ID_RE.pattern}")
        return f"{self.prefix}audit/{entry_id}"

    # ---- parsers: a key of the asked shape -> its parts, anything else -> None

    def parse(self, key: str | bytes) -> ParsedKey | None:
        """Any key of this keyspace -> its typed parts (for `match`); others -> None."""
        if isinstance(key, bytes):
            try:
                key = key.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if not isinstance(key, str) or not key.startswith(self.prefix):
            return None
        directory, _, rest = key[len(self.prefix):].partition("/")
        parser = _PARSERS.get(directory)
        return None if parser is None else parser(rest.split("/"))

    def name_from_job_key(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.name if isinstance(parsed, JobKey) else None

    def parse_killer(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.name if isinstance(parsed, KillerKey) else None

    def parse_trigger(self, key: str | bytes) -> tuple[str, str] | None:
        parsed = self.parse(key)
        return (parsed.name, parsed.run_id) if isinstance(parsed, TriggerKey) else None

    def parse_lock(self, key: str | bytes) -> tuple[str, int] | None:
        parsed = self.parse(key)
        return (parsed.name, parsed.planned_ms) if isinstance(parsed, LockKey) else None

    def parse_retry(self, key: str | bytes) -> tuple[str, str] | None:
        parsed = self.parse(key)
        return (parsed.name, parsed.run_id) if isinstance(parsed, RetryKey) else None

    def parse_running(self, key: str | bytes) -> tuple[str, str] | None:
        parsed = self.parse(key)
        return (parsed.name, parsed.run_id) if isinstance(parsed, RunningKey) else None

    def parse_active(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.name if isinstance(parsed, ActiveKey) else None

    def parse_worker(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.worker_id if isinstance(parsed, WorkerKey) else None

    def parse_state(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.name if isinstance(parsed, StateKey) else None

    def parse_audit(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.entry_id if isinstance(parsed, AuditKey) else None


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
}


# --------------------------------------------------------------------------- kill values


@dataclass(frozen=True, slots=True)
class KillRequest:
    """Kill one run (run_id) or every run of the job (None, the seed's plain `kill`).

    ``replaced_by``: the run that takes this one's place (concurrency ``replace``), so
    that the killed run's record says what replaced it; None for an operator's kill.
    """

    run_id: str | None = None
    replaced_by: str | None = None


def parse_kill_value(value: bytes | str) -> KillRequest:
    """`kill` or empty (the seed) -> kill all; `{"runId": "..."}` -> that run; `{}` -> all."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    text = raw.strip()
    if text.lower() in _KILL_WORDS:
        return KillRequest()
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise KillValueError(raw, "expected JSON or 'kill'") from None
    if not isinstance(data, dict):
        raise KillValueError(raw, "expected a JSON object")
    run_id, replaced_by = data.get("runId"), data.get("replacedBy")
    for field, value in (("runId", run_id), ("replacedBy", replaced_by)):
        if value is not None and (not isinstance(value, str) or not ID_RE.fullmatch(value)):
            raise KillValueError(raw, f"{field} must be a run id matching {ID_RE.pattern}")
    return KillRequest(run_id, replaced_by)


def encode_kill_value(run_id: str | None = None, *, replaced_by: str | None = None) -> bytes:
    """The value to put under killer/<name>: `{}` (all runs) or `{"runId": ...}`, with
    `"replacedBy"` when a newer run of a ``replace`` job takes the run's place."""
    data = {} if run_id is None else {"runId": _check_id("run id", run_id)}
    if replaced_by is not None:
        data["replacedBy"] = _check_id("run id", replaced_by)
    return json.dumps(data).encode("ascii")
