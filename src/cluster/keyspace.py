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
    <p>shards                        the cluster's slot count and replication factor,
                                     written once (cluster.shard_settings; issue 14)
    <p>outages/quorum                the last etcd quorum outage as the first worker back
                                     saw it: its catch-up's one start (worker.locker.fleet_outage)
    <p>audit/<entry_id>              audit entry of one change, written in the change's own
                                     transaction; moved to the run store by the master
                                     (entry_id = 16-digit time ms, '-', 16 hex digits, so
                                     entries sort by time). No worker reads it.
    <p>unschedulable/<name>          the open unschedulable spell of a job (since, reason),
                                     written and deleted by the master only, so that a
                                     restarted master goes on with it (master.schedulable)

Why names are validated here too: a `/` in a job name would move its keys into another
job's directory (`a/b` under `jobs/` would look like job `a`'s subtree elsewhere), so
building a key from an invalid part raises instead of writing a wrong key. Parsers are
total: a key that does not belong to the shape asked for yields None. The rules of each
part and the typed parts a key parses into (``JobKey``, ``LockKey``, ...) are in
``cluster.key_parts``; this module lays the keys out under the prefix (and reads the
kill-request values), and re-exports those names.

Errors:
    ValueError
     ├── KeyspaceError      an invalid prefix, name, id or fire time for a key
     └── KillValueError     a kill-request value that is neither JSON nor `kill`
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from .key_parts import (ALERT_CHANNEL_RE, AUDIT_ID_RE, ID_RE, JOB_NAME_RE, PLANNED_MS_DIGITS,
                        ActiveKey, AuditKey, JobKey, KeyspaceError, KillerKey, LockKey,
                        LostKey, ParsedKey, RetryKey, RunningKey, StateKey, TriggerKey,
                        UnschedulableKey, WorkerKey, check_id, check_name, check_planned, is_valid_job_name,
                        parse_parts)

__all__ = [
    "AUDIT_ID_RE", "ID_RE", "JOB_NAME_RE", "PLANNED_MS_DIGITS", "ActiveKey", "AuditKey",
    "JobKey", "KeyspaceError", "Keyspace", "KillRequest", "KillValueError", "KillerKey",
    "LockKey", "LostKey", "ParsedKey", "RetryKey", "RunningKey", "StateKey", "TriggerKey",
    "UnschedulableKey", "WorkerKey", "encode_kill_value", "is_valid_job_name", "parse_kill_value",
]

_KILL_WORDS: Final = frozenset({b"", b"kill"})


class KillValueError(ValueError):
    """A kill-request value that is neither `kill`, empty, nor a JSON object."""

    def __init__(self, value: bytes, reason: str) -> None:
        self.value = value
        super().__init__(f"invalid kill request {value[:80]!r}: {reason}")


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
    def unschedulable_prefix(self) -> str:
        return f"{self.prefix}unschedulable/"

    @property
    def alert_channels_prefix(self) -> str:
        return f"{self.prefix}alert-channels/"

    @property
    def alert_settings(self) -> str:
        """The cluster's alert settings (repeat interval, default policy, public URL)."""
        return f"{self.prefix}alerts/settings"

    @property
    def shards(self) -> str:
        """The cluster's shard settings (S, R): written once, read by every process."""
        return f"{self.prefix}shards"

    @property
    def quorum_outage(self) -> str:
        """The fleet's start of its last etcd quorum outage (``worker.locker.fleet_outage``)."""
        return f"{self.prefix}outages/quorum"

    def alert_channel(self, name: str) -> str:
        if not isinstance(name, str) or ALERT_CHANNEL_RE.fullmatch(name) is None:
            raise KeyspaceError("alert channel name", name,
                                f"must match {ALERT_CHANNEL_RE.pattern}")
        return f"{self.prefix}alert-channels/{name}"

    def lock_prefix(self, name: str | None = None) -> str:
        """All locks, or one job's (its locks sort by fire time)."""
        base = f"{self.prefix}lock/"
        return base if name is None else f"{base}{check_name(name)}/"

    def running_prefix(self, name: str | None = None) -> str:
        base = f"{self.prefix}running/"
        return base if name is None else f"{base}{check_name(name)}/"

    def trigger_prefix_of(self, name: str) -> str:
        return f"{self.trigger_prefix}{check_name(name)}/"

    # ---- keys

    def job(self, name: str) -> str:
        return f"{self.prefix}jobs/{check_name(name)}"

    def killer(self, name: str) -> str:
        return f"{self.prefix}killer/{check_name(name)}"

    def trigger(self, name: str, run_id: str) -> str:
        return f"{self.prefix}trigger/{check_name(name)}/{check_id('run id', run_id)}"

    def lock(self, name: str, planned_ms: int, attempt: int = 1) -> str:
        planned = check_planned(planned_ms)
        key = f"{self.prefix}lock/{check_name(name)}/{planned:0{PLANNED_MS_DIGITS}d}"
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise KeyspaceError("attempt", attempt, "must be an int >= 1")
        return key if attempt == 1 else f"{key}.{attempt}"

    def retry(self, name: str, run_id: str) -> str:
        return f"{self.prefix}retry/{check_name(name)}/{check_id('run id', run_id)}"

    def catch_up(self, name: str, after_ms: int) -> str:
        """The outage that began after the fire at ``after_ms`` (its ``state/``): one
        ``catchUp: last`` run, or the one worker that runs ``all`` of it
        (``worker.outages``)."""
        return f"{self.lock(name, after_ms)}.catchup"

    def lost(self, name: str, run_id: str) -> str:
        return f"{self.prefix}lost/{check_name(name)}/{check_id('run id', run_id)}"

    def running(self, name: str, run_id: str) -> str:
        return f"{self.prefix}running/{check_name(name)}/{check_id('run id', run_id)}"

    def active(self, name: str) -> str:
        return f"{self.prefix}active/{check_name(name)}"

    def skipped(self, name: str) -> str:
        return f"{self.prefix}skipped/{check_name(name)}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}workers/{check_id('worker id', worker_id)}"

    def state(self, name: str) -> str:
        return f"{self.prefix}state/{check_name(name)}"

    def unschedulable(self, name: str) -> str:
        """The job's open unschedulable spell (``master.schedulable.Spell``)."""
        return f"{self.prefix}unschedulable/{check_name(name)}"

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
        return parse_parts(directory, rest.split("/"))

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

    def parse_unschedulable(self, key: str | bytes) -> str | None:
        parsed = self.parse(key)
        return parsed.name if isinstance(parsed, UnschedulableKey) else None



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
    data = {} if run_id is None else {"runId": check_id("run id", run_id)}
    if replaced_by is not None:
        data["replacedBy"] = check_id("run id", replaced_by)
    return json.dumps(data).encode("ascii")
