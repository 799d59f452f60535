"""The job spec (DESIGN §5): what an operator registers, stored as JSON under jobs/<name>.

JSON is camelCase as in the seed; only `name`, `command`, `cronExpr` are required, so a
job written by the seed's master is valid here (and the seed reads those three fields
of ours). Validation is strict and happens in one place, `JobSpec.__post_init__`, so a
spec built in Python is checked exactly like one read from etcd or the API: unknown
fields, wrong types, bad names, out-of-bound numbers, unknown zones and unparsable cron
expressions raise SpecError naming the JSON field.

    name              ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (one etcd key segment)
    command           bash -c text, non-empty, <= 64 KiB UTF-8, no NUL
    cronExpr          see cluster.cron (5/6/7 fields, macros, @every)
    timezone          IANA name, default UTC (never the machine's zone)
    timeout           seconds, 0 = none, <= 30 days
    concurrency       allow | forbid | replace (default forbid, the seed's behaviour)
    paused            bool
    retries           0..100 extra attempts after a failure
    retryBackoff      seconds before a retry (default 10, <= 1 day)
    startingDeadline  seconds a missed fire may still be caught up; 0 = no catch-up
    selector          labels a worker must have (<= 32, key <= 63 chars, value <= 255)
    env               extra environment (<= 128 names, <= 64 KiB in all)
    createdAt         epoch ms: the `@every` anchor, kept across updates; null = unset
    user              run as this user; a worker honours it only if it allows it
                      (`--allowed-users`); null = the worker's `--run-as` (or its own)

`@every` jobs without createdAt (seed jobs) are anchored on a stable per-name phase,
crc32(name) milliseconds after the epoch, so that such jobs do not all fire together
and every worker computes the same fire times.

Errors:
    ValueError
     └── SpecError   field + reason, e.g. "cronExpr: expected 5, 6 or 7 fields, got 4"
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from .cron import CronError, CronSchedule, TimeZoneError, parse_schedule
from .keyspace import JOB_NAME_RE

__all__ = ["Concurrency", "FrozenStrMap", "JobSpec", "SpecError", "USER_NAME_RE",
           "schedule_changed"]

MAX_NAME_CHARS: Final = 128
MAX_COMMAND_BYTES: Final = 64 * 1024
MAX_DOCUMENT_BYTES: Final = 256 * 1024
MAX_TIMEOUT_S: Final = 30 * 86_400
MAX_RETRIES: Final = 100
MAX_RETRY_BACKOFF_S: Final = 86_400
MAX_STARTING_DEADLINE_S: Final = 30 * 86_400
MAX_CREATED_AT_MS: Final = 2**53
MAX_SELECTOR_ENTRIES: Final = 32
MAX_ENV_ENTRIES: Final = 128
MAX_ENV_BYTES: Final = 64 * 1024
LABEL_KEY_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}", re.ASCII)
ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
MAX_LABEL_VALUE_CHARS: Final = 255
# POSIX portable user names (useradd's rule), as the worker's --run-as takes them.
USER_NAME_RE: Final = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?", re.ASCII)


class SpecError(ValueError):
    """A job spec is invalid: `field` is the JSON field (or `job` for the document)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Concurrency(StrEnum):
    """What a fire does while the job's previous run is still going."""

    ALLOW = "allow"  # run in parallel
    FORBID = "forbid"  # skip this fire
    REPLACE = "replace"  # kill the running one, then run


class FrozenStrMap(Mapping[str, str]):
    """An immutable, hashable str -> str mapping (selector, env)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenStrMap({self._data!r})"


_EMPTY: Final = FrozenStrMap()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job. Frozen and validated on construction; build from JSON with from_json."""

    name: str
    command: str
    cron_expr: str
    timezone: str = "UTC"
    timeout_s: float = 0
    concurrency: Concurrency = Concurrency.FORBID
    paused: bool = False
    retries: int = 0
    retry_backoff_s: float = 10
    starting_deadline_s: float = 0
    selector: Mapping[str, str] = field(default=_EMPTY)
    env: Mapping[str, str] = field(default=_EMPTY)
    created_at_ms: int | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_command(self.command)
        _expect(self.cron_expr, str, "cronExpr", "a string")
        _expect(self.timezone, str, "timezone", "a string")
        if self.created_at_ms is not None:
            _count(self.created_at_ms, "createdAt", MAX_CREATED_AT_MS)
        self.schedule()  # validates cronExpr and timezone (cached by expr and zone)
        self._set("timeout_s", _seconds(self.timeout_s, "timeout", MAX_TIMEOUT_S))
        self._set("concurrency", _concurrency(self.concurrency))
        _expect(self.paused, bool, "paused", "a boolean")
        _count(self.retries, "retries", MAX_RETRIES)
        self._set("retry_backoff_s",
                  _seconds(self.retry_backoff_s, "retryBackoff", MAX_RETRY_BACKOFF_S))
        self._set("starting_deadline_s", _seconds(
            self.starting_deadline_s, "startingDeadline", MAX_STARTING_DEADLINE_S))
        self._set("selector", _selector(self.selector))
        self._set("env", _env(self.env))
        if self.user is not None:
            _check_user(self.user)

    def _set(self, attr: str, value: object) -> None:
        object.__setattr__(self, attr, value)

    # ---- schedule

    @property
    def anchor_ms(self) -> int:
        """The `@every` anchor: createdAt, else a stable per-name phase (crc32 ms)."""
        if self.created_at_ms is not None:
            return self.created_at_ms
        return zlib.crc32(self.name.encode("utf-8"))

    def schedule(self) -> CronSchedule:
        """The parsed schedule in the job's zone (parsing is cached; this is cheap)."""
        try:
            return parse_schedule(self.cron_expr, timezone=self.timezone,
                                  anchor_ms=self.anchor_ms)
        except TimeZoneError as err:
            raise SpecError("timezone", err.reason) from None
        except CronError as err:
            raise SpecError("cronExpr", err.reason) from None

    def with_created_at(self, created_at_ms: int | None) -> JobSpec:
        return replace(self, created_at_ms=created_at_ms)

    # ---- JSON

    @classmethod
    def from_json(cls, data: bytes | bytearray | str | Mapping[str, Any]) -> JobSpec:
        """Parse and validate; raises SpecError naming the offending field."""
        document = _load_document(data)
        unknown = [key for key in document if key not in _FROM_JSON]
        if unknown:
            raise SpecError(str(unknown[0]), "unknown field (known: "
                            + ", ".join(_FROM_JSON) + ")")
        for key in _REQUIRED:
            if key not in document:
                raise SpecError(key, "required field is missing")
        kwargs = {_FROM_JSON[key]: value for key, value in document.items()}
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        """camelCase, every field, fixed key order; from_json(to_json()) == self."""
        return {
            "name": self.name,
            "command": self.command,
            "cronExpr": self.cron_expr,
            "timezone": self.timezone,
            "timeout": self.timeout_s,
            "concurrency": self.concurrency.value,
            "paused": self.paused,
            "retries": self.retries,
            "retryBackoff": self.retry_backoff_s,
            "startingDeadline": self.starting_deadline_s,
            "selector": dict(sorted(self.selector.items())),
            "env": dict(sorted(self.env.items())),
            "createdAt": self.created_at_ms,
            "user": self.user,
        }

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON: the value stored under jobs/<name>.

        A job with no `user` is stored without the key: workers of the previous version
        reject unknown fields, and during a rolling upgrade they must still read every
        job that does not need the new field."""
        data = self.to_json()
        if data["user"] is None:
            del data["user"]
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def schedule_changed(old: JobSpec, new: JobSpec) -> bool:
    """True when saving `new` over `old` must re-plan the next fire.

    The Scheduler keeps a job's next fire when only other fields change (§11: saving a
    job must not reset its schedule). Blank differences in cronExpr do not count.
    """
    if old.name != new.name or old.timezone != new.timezone:
        return True
    old_expr, new_expr = " ".join(old.cron_expr.split()), " ".join(new.cron_expr.split())
    if old_expr != new_expr:
        return True
    return old_expr.lower().startswith("@every") and old.anchor_ms != new.anchor_ms


# --------------------------------------------------------------------------- validators

_FROM_JSON: Final = {
    "name": "name", "command": "command", "cronExpr": "cron_expr", "timezone": "timezone",
    "timeout": "timeout_s", "concurrency": "concurrency", "paused": "paused",
    "retries": "retries", "retryBackoff": "retry_backoff_s",
    "startingDeadline": "starting_deadline_s", "selector": "selector", "env": "env",
    "createdAt": "created_at_ms", "user": "user",
}
_REQUIRED: Final = ("name", "command", "cronExpr")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _expect(value: object, kind: type, field_name: str, expected: str) -> None:
    if type(value) is kind:  # the common case, without isinstance's abc machinery
        return
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(field_name, f"expected {expected}, got {_json_type(value)}")


def _load_document(data: bytes | bytearray | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        document: object = data
    elif isinstance(data, (bytes, bytearray, memoryview, str)):
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SpecError("job", f"document larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            # Duplicate keys: the last wins, as everywhere in Python (a hook to reject
            # them costs ~10 us per job at load time).
            document = json.loads(text)
        except UnicodeDecodeError:
            raise SpecError("job", "not valid UTF-8") from None
        except json.JSONDecodeError as err:
            raise SpecError("job", f"invalid JSON: {err.msg} at line {err.lineno} "
                            f"column {err.colno}") from None
        except RecursionError:
            raise SpecError("job", "invalid JSON: nested too deeply") from None
    else:
        raise SpecError("job", f"expected JSON bytes, str or a mapping, got "
                        f"{type(data).__name__}")
    if not isinstance(document, Mapping):
        raise SpecError("job", f"expected a JSON object, got {_json_type(document)}")
    return document


def _check_name(name: object) -> None:
    _expect(name, str, "name", "a string")
    assert isinstance(name, str)
    if not name:
        raise SpecError("name", "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise SpecError("name", f"at most {MAX_NAME_CHARS} characters, got {len(name)}")
    if JOB_NAME_RE.fullmatch(name) is None:
        raise SpecError("name", f"must match ^{JOB_NAME_RE.pattern}$ (letters, digits, "
                        f"'.', '_', '-'; no '/'; not starting with '.'), got {name!r}")


def _check_command(command: object) -> None:
    _expect(command, str, "command", "a string")
    assert isinstance(command, str)
    if not command.strip():
        raise SpecError("command", "must not be empty")
    if "\0" in command:
        raise SpecError("command", "must not contain NUL characters")
    size = _utf8_size(command, "command")
    if size > MAX_COMMAND_BYTES:
        raise SpecError("command", f"at most {MAX_COMMAND_BYTES} bytes, got {size}")


def _utf8_size(text: str, field_name: str) -> int:
    """UTF-8 length; lone surrogates (possible in JSON `\\ud800`) cannot be stored."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecError(field_name, "must be valid Unicode (no lone surrogates)") from None


def _check_user(user: object) -> None:
    _expect(user, str, "user", "a string or null")
    assert isinstance(user, str)
    if USER_NAME_RE.fullmatch(user) is None:
        raise SpecError("user", f"must be a user name matching ^{USER_NAME_RE.pattern}$, "
                        f"got {user!r}")


def _seconds(value: object, field_name: str, maximum: int) -> float:
    """A non-negative duration in seconds; integral values are kept as int."""
    if not (type(value) is int or type(value) is float):
        raise SpecError(field_name, f"expected a number of seconds, got {_json_type(value)}")
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= maximum:
        raise SpecError(field_name, f"must be between 0 and {maximum} seconds, got {value}")
    return int(value) if float(value).is_integer() else float(value)


def _count(value: object, field_name: str, maximum: int) -> None:
    _expect(value, int, field_name, "an integer")
    assert isinstance(value, int)
    if not 0 <= value <= maximum:
        raise SpecError(field_name, f"must be between 0 and {maximum}, got {value}")


def _concurrency(value: object) -> Concurrency:
    if type(value) is Concurrency:
        return value
    _expect(value, str, "concurrency", "a string")
    assert isinstance(value, str)
    try:
        return Concurrency(value)
    except ValueError:
        raise SpecError("concurrency", f"must be allow, forbid or replace, got {value!r}") \
            from None


def _string_map(value: object, field_name: str, max_entries: int) -> FrozenStrMap:
    if not value and type(value) in (dict, FrozenStrMap):
        return _EMPTY
    if type(value) is not dict:
        _expect(value, Mapping, field_name, "an object of strings")
    assert isinstance(value, Mapping)
    if len(value) > max_entries:
        raise SpecError(field_name, f"at most {max_entries} entries, got {len(value)}")
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            raise SpecError(field_name, f"entry {key!r}: expected a string, got "
                            f"{_json_type(item if isinstance(key, str) else key)}")
    return value if isinstance(value, FrozenStrMap) else FrozenStrMap(value)


def _selector(value: object) -> FrozenStrMap:
    labels = _string_map(value, "selector", MAX_SELECTOR_ENTRIES)
    for key, item in labels.items():
        if LABEL_KEY_RE.fullmatch(key) is None:
            raise SpecError("selector", f"label {key!r} must match ^{LABEL_KEY_RE.pattern}$")
        _utf8_size(item, "selector")
        if len(item) > MAX_LABEL_VALUE_CHARS or not item.isprintable():
            raise SpecError("selector", f"label {key!r}: value must be printable and at "
                            f"most {MAX_LABEL_VALUE_CHARS} characters")
    return labels


def _env(value: object) -> FrozenStrMap:
    env = _string_map(value, "env", MAX_ENV_ENTRIES)
    size = 0
    for key, item in env.items():
        if ENV_NAME_RE.fullmatch(key) is None:
            raise SpecError("env", f"name {key!r} must match ^{ENV_NAME_RE.pattern}$")
        if "\0" in item:
            raise SpecError("env", f"{key}: value must not contain NUL characters")
        size += len(key) + _utf8_size(item, "env") + 2
    if size > MAX_ENV_BYTES:
        raise SpecError("env", f"at most {MAX_ENV_BYTES} bytes in all, got {size}")
    return env
