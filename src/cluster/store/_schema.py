"""The ``job_log`` table in both SQL dialects, and the few statements that differ.

Same semantics in MySQL and SQLite: ``id`` auto-increments and never changes on an
upsert (it is the tie-breaker of the page order), ``run_id`` is unique, text is UTF-8
(utf8mb4) and compared byte for byte (job names are case-sensitive etcd keys).

``sort_time`` is the run's ``start_time``, or its ``schedule_time`` for a run that
never started (skipped). Newest-first pages, time filters and pruning all use it,
so a skipped run sorts where it happened instead of after all history (a NULL
start_time would). The design's ``(job_name, start_time)`` index is therefore on
``(job_name, sort_time)``; InnoDB appends ``id`` to it, which the page order needs.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE = "job_log"

# Written columns, in row-tuple order. `trigger` is a reserved word in both dialects;
# both accept backquotes.
COLUMNS = (
    "run_id", "job_name", "worker", "command", "output", "err", "exit_code", "status",
    "`trigger`", "attempt", "plan_time", "schedule_time", "start_time", "end_time",
    "output_truncated", "skip_count", "first_skip_time", "last_skip_time", "missed_fires",
    "first_missed", "sort_time",
)
# Read columns: the ordering key first, then the record's fields (sort_time is derived).
SELECT_LIST = "id, " + ", ".join(COLUMNS[-1:] + COLUMNS[:-1])
ORDER_NEWEST_FIRST = "ORDER BY sort_time DESC, id DESC"

_MYSQL_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id VARCHAR(128) NOT NULL,
    job_name VARCHAR(128) NOT NULL,
    worker VARCHAR(255) NOT NULL,
    command MEDIUMTEXT NOT NULL,
    output MEDIUMTEXT NOT NULL,
    err MEDIUMTEXT NOT NULL,
    exit_code INT NULL,
    status VARCHAR(16) NOT NULL,
    `trigger` VARCHAR(16) NOT NULL,
    attempt INT NOT NULL,
    plan_time BIGINT NOT NULL,
    schedule_time BIGINT NOT NULL,
    start_time BIGINT NULL,
    end_time BIGINT NULL,
    output_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    skip_count INT NOT NULL DEFAULT 0,
    first_skip_time BIGINT NULL,
    last_skip_time BIGINT NULL,
    missed_fires INT NULL,
    first_missed BIGINT NULL,
    sort_time BIGINT NOT NULL,
    changed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
        ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY ux_job_log_run_id (run_id),
    KEY ix_job_log_job_time (job_name, sort_time),
    KEY ix_job_log_status_time (status, sort_time),
    KEY ix_job_log_time (sort_time),
    KEY ix_job_log_changed (changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""
# ``changed_at`` (MySQL only) is kept by the server, never written by us: the statistics'
# rollup (``_rollup``) follows the rows changed since its watermark with it. A table made
# before it had the column gets it from the rollup's first refresh.

_SQLITE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    job_name TEXT NOT NULL,
    worker TEXT NOT NULL,
    command TEXT NOT NULL,
    output TEXT NOT NULL,
    err TEXT NOT NULL,
    exit_code INTEGER NULL,
    status TEXT NOT NULL,
    `trigger` TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    plan_time INTEGER NOT NULL,
    schedule_time INTEGER NOT NULL,
    start_time INTEGER NULL,
    end_time INTEGER NULL,
    output_truncated INTEGER NOT NULL DEFAULT 0,
    skip_count INTEGER NOT NULL DEFAULT 0,
    first_skip_time INTEGER NULL,
    last_skip_time INTEGER NULL,
    missed_fires INTEGER NULL,
    first_missed INTEGER NULL,
    sort_time INTEGER NOT NULL
)
"""
# AUTOINCREMENT: ids are never re-used after the newest rows are deleted, as in InnoDB.

# Columns added since the table was first released, each with the clause that adds it
# to a table made before (the same in both dialects). The schema has no version number:
# ``RunStore`` probes each column and adds the missing ones, in this order, at its first
# use; several processes doing it at once are harmless (a second ADD fails, the probe
# then finds the column). Existing rows get the defaults: not a coalesced skip.
_SQLITE_INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({cols})"
    for name, cols in (
        ("ix_job_log_job_time", "job_name, sort_time"),
        ("ix_job_log_status_time", "status, sort_time"),
        ("ix_job_log_time", "sort_time"),
    )
)


@dataclass(frozen=True)
class Dialect:
    """What differs between the backends; everything else is shared SQL."""

    name: str
    mark: str  # parameter placeholder
    create_statements: tuple[str, ...]
    upsert_suffix: str  # turns the INSERT into an upsert on run_id
    delete_via_subquery: bool  # SQLite has no DELETE ... LIMIT (by default)

    @property
    def upsert(self) -> str:
        marks = ", ".join([self.mark] * len(COLUMNS))
        return f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks}) {self.upsert_suffix}"

    def delete_limited(self, where: str) -> str:
        """Delete at most ``limit`` (the last parameter) rows matching ``where``,
        oldest first, so that each statement holds its locks only briefly."""
        if self.delete_via_subquery:
            return (f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} WHERE {where}"
                    f" ORDER BY sort_time, id LIMIT {self.mark})")
        return f"DELETE FROM {TABLE} WHERE {where} ORDER BY sort_time, id LIMIT {self.mark}"


# Invariant: ``start_time``, ``skip_count`` then ``status`` are assigned last, because
# MySQL evaluates the assignments of ON DUPLICATE KEY UPDATE in order and the guard below
# must read the old values (each reads the new values of those before it, which are the
# old ones if kept, and cannot turn the guard true if replaced).
_GUARDED = ("start_time", "skip_count", "status")
_UPDATED = [c for c in COLUMNS if c not in ("run_id", *_GUARDED)] + list(_GUARDED)

# A ``lost`` record (written by a survivor when a worker's lease vanished) never replaces
# the record of a run that finished: the worker that ran it knew better. Nor does a
# survivor's ``lost`` (no start time: it cannot know one) replace the run's own worker's
# ``lost`` ("fenced": it started the run and killed it, with its output), whichever
# lands first. A real record does replace a ``lost`` one. Everything else is last-write-wins: replays are identical,
# and a run id is reused only for a run claimed again after its worker died (or lost its
# session) before starting it; that worker writes at most a ``lost`` record of it, unless
# a kill of that very run reached it in the same instant (a double fault we accept).
# Nor does a coalesced ``skipped`` record (``worker.skips``) replace one with a higher
# count: workers write it as the tally grows, and their writes may land out of order.
_MYSQL_KEEP_OLD = ("(VALUES(status) = 'lost' AND (status <> 'lost' OR (VALUES(start_time) IS "
                   "NULL AND start_time IS NOT NULL))) OR (VALUES(status) = 'skipped' AND "
                   "status = 'skipped' AND VALUES(skip_count) < skip_count)")

MYSQL = Dialect(
    name="mysql",
    mark="%s",
    create_statements=(_MYSQL_TABLE,),
    # VALUES(col) works on MariaDB and MySQL (deprecated but kept in MySQL 8).
    upsert_suffix="ON DUPLICATE KEY UPDATE " + ", ".join(
        f"{c} = IF({_MYSQL_KEEP_OLD}, {c}, VALUES({c}))" for c in _UPDATED),
    delete_via_subquery=False,
)

SQLITE = Dialect(
    name="sqlite",
    mark="?",
    create_statements=(_SQLITE_TABLE, *_SQLITE_INDEXES),
    upsert_suffix="ON CONFLICT(run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATED)
    + f" WHERE NOT ((excluded.status = 'lost' AND ({TABLE}.status <> 'lost' OR "
    f"(excluded.start_time IS NULL AND {TABLE}.start_time IS NOT NULL))) OR "
    f"(excluded.status = 'skipped' AND {TABLE}.status = 'skipped' "
    f"AND excluded.skip_count < {TABLE}.skip_count))",
    delete_via_subquery=True,
)

# Reads every column we need: fails on a foreign table that happens to be called job_log
# (the seed's own job_log, say) before any write is attempted.
SCHEMA_PROBE = f"SELECT {SELECT_LIST} FROM {TABLE} WHERE 1 = 0"

# Columns added after the first release, each with the statement that adds it to a
# table created before (the same in both dialects; NULL, or 0, for the rows already
# there).
# ``ADDED_PROBE`` fails on such a table; only then are they added, and only to a table
# that has every original column (``ORIGINAL_PROBE``): never to a foreign job_log.
ADDED_COLUMNS = tuple((name, f"ALTER TABLE {TABLE} ADD COLUMN {name} {definition}")
                      for name, definition in (
    ("skip_count", "INTEGER NOT NULL DEFAULT 0"),  # 0 on the rows already there
    ("first_skip_time", "BIGINT NULL"),
    ("last_skip_time", "BIGINT NULL"),
    ("missed_fires", "INTEGER NULL"),
    ("first_missed", "BIGINT NULL"),
))


def column_probe(column: str) -> str:
    return f"SELECT {column} FROM {TABLE} WHERE 1 = 0"


ADDED_PROBE = (f"SELECT {', '.join(name for name, _ in ADDED_COLUMNS)} FROM {TABLE} "
               "WHERE 1 = 0")
ORIGINAL_PROBE = ("SELECT id, " + ", ".join(
    c for c in COLUMNS if c not in dict(ADDED_COLUMNS)) + f" FROM {TABLE} WHERE 1 = 0")
