"""The alert tables, in both SQL dialects: ``alert_state`` and ``alert_outbox``.

``alert_state``: one row per job that ever failed, its flapping state
(``cluster.alerts.JobAlertState``) and a ``version`` for compare-and-set.

``alert_outbox``: one row per delivery. An event is first written *unresolved*
(``channel`` = ''): the writer of a run record knows the event, not the job's
channels. A deliverer resolves it into one row per channel (``delivery_id`` =
``<event id>><channel>``), then marks the unresolved row ``resolved``. A row is
``pending`` until ``sent``, ``dropped`` (no channel wants it, or the channel is gone)
or ``expired`` (not delivered within 24 h). ``claimed_by``/``claimed_until_ms`` are
the lease of the deliverer sending it; a row whose lease passed is due again.
Delivery is ordered per job and channel by the event's ``time`` in ``payload``
(``EVENT_MS``): no column of its own, so tables made before it need no change.
"""

from __future__ import annotations

from typing import Final

STATE_TABLE: Final = "alert_state"
OUTBOX_TABLE: Final = "alert_outbox"

STATE_COLUMNS: Final = ("job_name", "failing", "failures", "unalerted", "last_alert_ms",
                        "last_time_ms", "last_run_id", "version")
OUTBOX_COLUMNS: Final = ("delivery_id", "event_id", "kind", "job_name", "channel",
                         "created_ms", "payload", "state", "attempts", "next_at_ms",
                         "claimed_by", "claimed_until_ms", "sent_ms", "last_error")

_MYSQL = (f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    job_name VARCHAR(128) NOT NULL PRIMARY KEY,
    failing BOOLEAN NOT NULL DEFAULT FALSE,
    failures INT NOT NULL DEFAULT 0,
    unalerted INT NOT NULL DEFAULT 0,
    last_alert_ms BIGINT NOT NULL DEFAULT 0,
    last_time_ms BIGINT NOT NULL DEFAULT 0,
    last_run_id VARCHAR(128) NOT NULL DEFAULT '',
    version BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
""", f"""
CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
    delivery_id VARCHAR(255) NOT NULL PRIMARY KEY,
    event_id VARCHAR(190) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    job_name VARCHAR(128) NOT NULL,
    channel VARCHAR(64) NOT NULL,
    created_ms BIGINT NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    state VARCHAR(8) NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_at_ms BIGINT NOT NULL,
    claimed_by VARCHAR(255) NOT NULL DEFAULT '',
    claimed_until_ms BIGINT NOT NULL DEFAULT 0,
    sent_ms BIGINT NULL,
    last_error TEXT NULL,
    KEY ix_alert_outbox_due (state, next_at_ms),
    KEY ix_alert_outbox_claim (claimed_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
""")

_SQLITE = (f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    job_name TEXT NOT NULL PRIMARY KEY,
    failing INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    unalerted INTEGER NOT NULL DEFAULT 0,
    last_alert_ms INTEGER NOT NULL DEFAULT 0,
    last_time_ms INTEGER NOT NULL DEFAULT 0,
    last_run_id TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 0
)
""", f"""
CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
    delivery_id TEXT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL,
    claimed_by TEXT NOT NULL DEFAULT '',
    claimed_until_ms INTEGER NOT NULL DEFAULT 0,
    sent_ms INTEGER NULL,
    last_error TEXT NULL
)
""", f"CREATE INDEX IF NOT EXISTS ix_alert_outbox_due ON {OUTBOX_TABLE} (state, next_at_ms)",
    f"CREATE INDEX IF NOT EXISTS ix_alert_outbox_claim ON {OUTBOX_TABLE} (claimed_by)")

_CREATE: Final = {"mysql": _MYSQL, "sqlite": _SQLITE}
_IGNORE: Final = {"mysql": "ON DUPLICATE KEY UPDATE {key} = {key}",
                  "sqlite": "ON CONFLICT({key}) DO NOTHING"}

# An outbox row's event time (its run's end), from its payload: delivery is ordered by it.
EVENT_MS: Final = {"mysql": "CAST(JSON_EXTRACT(payload, '$.time') AS SIGNED)",
                   "sqlite": "CAST(json_extract(payload, '$.time') AS INTEGER)"}

ALERT_PROBE: Final = (f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM {OUTBOX_TABLE} WHERE 1 = 0",
                      f"SELECT {', '.join(STATE_COLUMNS)} FROM {STATE_TABLE} WHERE 1 = 0")


def alert_create_statements(dialect: str) -> tuple[str, ...]:
    return _CREATE[dialect]


def insert_ignoring(dialect: str, mark: str, table: str, columns: tuple[str, ...]) -> str:
    """INSERT that leaves a row with the same primary key as it is."""
    marks = ", ".join([mark] * len(columns))
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            + _IGNORE[dialect].format(key=columns[0]))
