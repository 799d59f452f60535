"""JobSpec: one job, validated on construction, to and from its JSON document."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ..alerts import AlertPolicy, AlertSettingsError, parse_policy
from ..cron import CronError, CronSchedule, TimeZoneError, load_zone, parse_schedule
from ._chains import After, ChainOnlySchedule, after_json, parse_after
from ._errors import SpecError
from ._fields import (_EMPTY, MAX_CREATED_AT_MS, MAX_DOCUMENT_BYTES, MAX_RETRIES,
                      MAX_RETRY_BACKOFF_S, MAX_STARTING_DEADLINE_S, MAX_TIMEOUT_S, CatchUp,
                      Concurrency, _catch_up, _check_command, _check_name, _check_user,
                      _concurrency, _count, _env, _expect, _json_type, _seconds, _selector)

__all__ = ["JobSpec", "schedule_changed"]


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
    catch_up: CatchUp = CatchUp.LAST
    selector: Mapping[str, str] = field(default=_EMPTY)
    env: Mapping[str, str] = field(default=_EMPTY)
    created_at_ms: int | None = None
    user: str | None = None
    after: After | None = None  # runs after another job's runs (``_chains``)
    alerts: AlertPolicy | None = None  # None: the cluster's default policy

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_command(self.command)
        _expect(self.cron_expr, str, "cronExpr", "a string")
        _expect(self.timezone, str, "timezone", "a string")
        if self.created_at_ms is not None:
            _count(self.created_at_ms, "createdAt", MAX_CREATED_AT_MS)
        self._set("timeout_s", _seconds(self.timeout_s, "timeout", MAX_TIMEOUT_S))
        self._set("concurrency", _concurrency(self.concurrency))
        self._set("after", parse_after(self.after))
        self.schedule()  # validates cronExpr and timezone (cached by expr and zone)
        _expect(self.paused, bool, "paused", "a boolean")
        _count(self.retries, "retries", MAX_RETRIES)
        self._set("retry_backoff_s",
                  _seconds(self.retry_backoff_s, "retryBackoff", MAX_RETRY_BACKOFF_S))
        self._set("starting_deadline_s", _seconds(
            self.starting_deadline_s, "startingDeadline", MAX_STARTING_DEADLINE_S))
        self._set("catch_up", _catch_up(self.catch_up))
        self._set("selector", _selector(self.selector))
        self._set("env", _env(self.env))
        if self.user is not None:
            _check_user(self.user)
        if self.alerts is not None:
            try:
                self._set("alerts", parse_policy(self.alerts))
            except AlertSettingsError as err:
                raise SpecError(err.field, err.reason) from None

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
        """The parsed schedule in the job's zone (parsing is cached; this is cheap). A
        chained job may leave ``cronExpr`` empty: it then runs only after its upstream."""
        if not self.cron_expr and self.after is not None:
            try:
                load_zone(self.timezone)
            except TimeZoneError as err:
                raise SpecError("timezone", err.reason) from None
            return ChainOnlySchedule(self.timezone, self.after.job)
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
            if key == "cronExpr" and document.get("after") is not None:
                continue  # a chained job may have no schedule of its own
            if key not in document:
                raise SpecError(key, "required field is missing")
        kwargs = {_FROM_JSON[key]: value for key, value in document.items()}
        kwargs.setdefault("cron_expr", "")
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
            "catchUp": self.catch_up.value,
            "selector": dict(sorted(self.selector.items())),
            "env": dict(sorted(self.env.items())),
            "createdAt": self.created_at_ms,
            "user": self.user,
            "after": after_json(self.after),
            "alerts": None if self.alerts is None else self.alerts.to_json(),
        }

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON: the value stored under jobs/<name>.

        A job with no `user`, `after` or `alerts`, or the default `catchUp`, is stored
        without the key: workers of the previous version reject unknown fields, and during
        a rolling upgrade they must still read every job that does not need the new field."""
        data = self.to_json()
        for optional in ("user", "after", "alerts"):
            if data[optional] is None:
                del data[optional]
        if self.catch_up is CatchUp.LAST:
            del data["catchUp"]
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


_FROM_JSON: Final = {
    "name": "name", "command": "command", "cronExpr": "cron_expr", "timezone": "timezone",
    "timeout": "timeout_s", "concurrency": "concurrency", "paused": "paused",
    "retries": "retries", "retryBackoff": "retry_backoff_s",
    "startingDeadline": "starting_deadline_s", "catchUp": "catch_up", "selector": "selector",
    "env": "env", "createdAt": "created_at_ms", "user": "user", "after": "after",
    "alerts": "alerts",
}
_REQUIRED: Final = ("name", "command", "cronExpr")


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
