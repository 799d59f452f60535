"""The audit trail's record and its ``audit_log`` table, in both SQL dialects.

An entry says who changed what: the token's name and role, the time, the action, the
job and the change itself (the new spec of a put, the run id of a run now or a kill;
never a token). The master writes it into etcd in the same transaction as the change
(``audit/<entry_id>``), then moves it here; ``entry_id`` is unique, so moving an entry
twice (a retry, two masters) stores it once. Entry ids sort by time (16-digit epoch
ms first), so the table is paged by id, newest first, like etcd lists them.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import InvalidAuditEntry

__all__ = ["AUDIT_TABLE", "AuditAction", "AuditEntry", "audit_create_statements",
           "audit_insert", "AUDIT_PROBE", "AUDIT_SELECT"]

AUDIT_TABLE: Final = "audit_log"
_COLUMNS: Final = ("entry_id", "time_ms", "token_name", "role", "action", "job_name", "via",
                   "detail")


class AuditAction(enum.Enum):
    PUT = "put"
    DELETE = "delete"
    PAUSE = "pause"
    RESUME = "resume"
    RUN = "run"
    KILL = "kill"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change, as stored in etcd (JSON) and in ``audit_log`` (a row)."""

    entry_id: str
    time_ms: int
    token: str  # the token's name
    role: str
    action: AuditAction
    job: str
    via: str  # "api" (/api/v1) or "seed" (the seed's endpoints)
    change: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.entry_id, "time": self.time_ms, "token": self.token,
                "role": self.role, "action": self.action.value, "job": self.job,
                "via": self.via, "change": self.change}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: Any) -> AuditEntry:
        """The entry of a JSON object; InvalidAuditEntry (a ValueError) if it is not one."""
        if not isinstance(data, dict):
            raise InvalidAuditEntry(data, "not a JSON object")
        try:
            entry = cls(str(data["id"]), int(data["time"]), str(data["token"]),
                        str(data["role"]), AuditAction(data["action"]), str(data["job"]),
                        str(data["via"]), dict(data.get("change") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidAuditEntry(data, f"missing or bad field: {exc}") from None
        return entry

    @classmethod
    def from_bytes(cls, raw: bytes) -> AuditEntry:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidAuditEntry(raw, "not JSON") from None
        return cls.from_json(data)

    def row(self) -> tuple[Any, ...]:
        detail = json.dumps(self.change, ensure_ascii=False, separators=(",", ":"))
        return (self.entry_id, self.time_ms, self.token, self.role, self.action.value,
                self.job, self.via, detail)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> AuditEntry:
        entry_id, time_ms, token, role, action, job, via, detail = row
        return cls(entry_id, int(time_ms), token, role, AuditAction(action), job, via,
                   json.loads(detail) if detail else {})


_MYSQL_TABLE = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    entry_id VARCHAR(40) NOT NULL PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    token_name VARCHAR(64) NOT NULL,
    role VARCHAR(16) NOT NULL,
    action VARCHAR(16) NOT NULL,
    job_name VARCHAR(128) NOT NULL,
    via VARCHAR(8) NOT NULL,
    detail MEDIUMTEXT NOT NULL,
    KEY ix_audit_log_job (job_name, entry_id),
    KEY ix_audit_log_token (token_name, entry_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""

_SQLITE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    entry_id TEXT NOT NULL PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    token_name TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    job_name TEXT NOT NULL,
    via TEXT NOT NULL,
    detail TEXT NOT NULL
)
"""
_SQLITE_INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS {name} ON {AUDIT_TABLE} ({cols})"
    for name, cols in (("ix_audit_log_job", "job_name, entry_id"),
                       ("ix_audit_log_token", "token_name, entry_id")))

# An entry already stored is left as it is: the same id is the same entry.
_IGNORE_DUPLICATE = {
    "mysql": "ON DUPLICATE KEY UPDATE entry_id = entry_id",
    "sqlite": "ON CONFLICT(entry_id) DO NOTHING",
}
_CREATE = {"mysql": (_MYSQL_TABLE,), "sqlite": (_SQLITE_TABLE, *_SQLITE_INDEXES)}

AUDIT_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM {AUDIT_TABLE}"
AUDIT_PROBE: Final = f"{AUDIT_SELECT} WHERE 1 = 0"


def audit_create_statements(dialect: str) -> tuple[str, ...]:
    return _CREATE[dialect]


def audit_insert(dialect: str, mark: str) -> str:
    marks = ", ".join([mark] * len(_COLUMNS))
    return (f"INSERT INTO {AUDIT_TABLE} ({', '.join(_COLUMNS)}) VALUES ({marks}) "
            f"{_IGNORE_DUPLICATE[dialect]}")
