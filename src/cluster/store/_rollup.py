"""The MySQL/MariaDB rollup behind ``RunStats``: per-minute, 5-minute and hour aggregates of
``job_log``, so that a dashboard window reads a few thousand rows, not a million.

Grouping a million records takes MariaDB 0.6-1 s even over a covering index; their
rollup is read in milliseconds. A rollup kept by the writers (each batch adding its
counts) cannot be exact here: a batch is an upsert, and a record may replace another
(a survivor's ``lost`` by the worker's own record, a growing ``skipped`` tally), so
adding would count a run twice. So the rollup is *recomputed* from the rows, a minute
at a time, and only where rows changed:

- ``job_log.changed_at`` (TIMESTAMP(3), ``DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE
  CURRENT_TIMESTAMP(3)``, indexed) is kept by the server itself: writers are untouched,
  and a replayed batch that changes nothing leaves it as it was;
- ``refresh`` (before each summary) finds the minutes of the rows changed since the
  watermark ``changed``, recomputes those minutes from ``job_log`` and the hours that
  hold them from the minutes, and moves the watermark, in one transaction guarded by
  a compare-and-set on it (two masters: one does it, the other reads). The watermark
  trails the server's clock by LOOKBACK_S, longer than any batch statement may run,
  so a row stamped before its batch commits is still found;
- records older than the rollup's first refresh are added by a backfill, newest first,
  in steps of at most an hour whose length adapts to the rows (``_Steps``: a step
  takes about STEP_S), for at most ``budget_s`` per refresh
  (``built_from``: minutes before it are not built yet; a summary reaching before it
  says ``partial``). The master backfills in the background (``master.stats_builder``),
  so its summaries only follow what changed and wait at most for the step under way.

``changed_at`` is in the table as created; a table made before it gets it at the
first refresh, without rewriting the table: the column is added with a constant
default (an instant change on MariaDB ≥ 10.3 and MySQL ≥ 8.0: the rows already there
read 1970, older than any watermark, and the backfill counts them), then its default
becomes ``CURRENT_TIMESTAMP(3)`` (metadata only), then its index is built online
(writers go on meanwhile). Each step is probed and done if missing, so a master that
stopped half-way, or two at once, leave it whole. Only the index build grows with the
table (BENCHMARKS.md "The jobs page with 10,000 jobs").

Recomputing is idempotent, so a refresh cut off half-way, or one done twice, changes
nothing. Not followed: rows deleted (retention pruning; the rollup keeps what ran, for
ROLLUP_KEEP_MS) and a record moved to another minute by its replacement (a lost
record's schedule-time minute is recomputed too, which covers the usual case).
``changed_at`` is a TIMESTAMP: it works until 2038 on MariaDB 10.x. Store sessions run
in UTC (``_mysql``'s init command), so its comparisons never meet a DST fold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

import trio

from ._backend import Backend, Params
from ._errors import StoreQueryError, StoreSchemaError
from ._schema import TABLE
from ._stats import FAILURE_STATUSES, HOUR_MS, MINUTE_MS, TopJob, raw_aggregates

ROLLUP: Final = "job_log_rollup"
STATE: Final = "job_log_rollup_state"
LOOKBACK_S: Final = 30  # > the longest a batch statement runs before it commits
BACKFILL_BUDGET_S: Final = 0.1  # per summary; ``refresh(budget_s=...)`` for more
STEP_S: Final = 0.05  # what one backfill step should take (``_Steps``)
MAX_CHANGED_MINUTES: Final = 1440  # more than a day of changed minutes: rebuild instead
ROLLUP_KEEP_MS: Final = 8 * 24 * HOUR_MS  # the longest window (7 d) and a day
KINDS: Final = ("s", "l", "f")
DERIVED_GRAINS: Final = (5 * MINUTE_MS, HOUR_MS)  # built from the minutes
INSERT_ROWS: Final = 2000  # rollup rows per INSERT (5 placeholders each, < 65,535)

_CREATE = (
    f"""CREATE TABLE IF NOT EXISTS {ROLLUP} (
        grain INT NOT NULL,
        kind CHAR(1) NOT NULL,
        bucket BIGINT NOT NULL,
        k VARCHAR(128) NOT NULL,
        runs BIGINT NOT NULL,
        PRIMARY KEY (grain, kind, bucket, k)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
        name VARCHAR(32) NOT NULL PRIMARY KEY,
        value BIGINT NOT NULL
    ) ENGINE=InnoDB""",
)
_NOW_MS = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"
# An older table's migration, step by step (module docstring): each with its probe.
_CHANGED_AT_STEPS = (
    (f"SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
     f"TABLE_NAME = '{TABLE}' AND COLUMN_NAME = 'changed_at'",
     f"ALTER TABLE {TABLE} ADD COLUMN changed_at TIMESTAMP(3) NOT NULL "
     "DEFAULT '1970-01-01 00:00:01' ON UPDATE CURRENT_TIMESTAMP(3)"),
    (f"SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
     f"TABLE_NAME = '{TABLE}' AND COLUMN_NAME = 'changed_at' AND "
     "LOCATE('current_timestamp', LOWER(COLUMN_DEFAULT)) = 1",
     f"ALTER TABLE {TABLE} ALTER COLUMN changed_at SET DEFAULT CURRENT_TIMESTAMP(3)"),
    (f"SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
     f"TABLE_NAME = '{TABLE}' AND INDEX_NAME = 'ix_job_log_changed'",
     f"ALTER TABLE {TABLE} ADD INDEX ix_job_log_changed (changed_at)"),
)
# A new rollup: changes are followed from now; everything before is backfilled
# (up to the newest record, should it be ahead of the server's clock).
_INIT_STATE = (f"INSERT INTO {STATE} (name, value) VALUES ('changed', {_NOW_MS}), "
               f"('built_from', GREATEST({_NOW_MS}, (SELECT COALESCE(MAX(sort_time), 0) "
               f"FROM {TABLE})) DIV {MINUTE_MS} + 1) "
               "ON DUPLICATE KEY UPDATE value = value")  # (IGNORE would warn)
_STATE_NOW = (f"SELECT {_NOW_MS}, (SELECT value FROM {STATE} WHERE name = 'changed'), "
              f"(SELECT value FROM {STATE} WHERE name = 'built_from')")
_CHANGED_MINUTES = (f"SELECT sort_time DIV {MINUTE_MS} FROM {TABLE} WHERE changed_at >= "
                    f"FROM_UNIXTIME(%s / 1000) UNION SELECT schedule_time DIV {MINUTE_MS} "
                    f"FROM {TABLE} WHERE changed_at >= FROM_UNIXTIME(%s / 1000)")
_CAS = f"UPDATE {STATE} SET value = %s WHERE name = %s AND value = %s"

Statement = tuple[str, Params]


class Rollup:
    """The rollup tables of one MySQL RunStore; made on the first summary."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._ready = False
        self._lock = trio.Lock()  # one refresh at a time in this process
        self._steps = _Steps()

    def forget_schema(self) -> None:
        self._ready = False

    async def refresh(self, budget_s: float = BACKFILL_BUDGET_S) -> int | None:
        """Bring the rollup up to date with job_log; returns the start (ms) of the
        oldest built minute while the backfill goes on, None once it is done."""
        async with self._lock:
            await self._ensure()
            now_ms, changed, built_from = (await self._backend.fetch(_STATE_NOW))[0]
            now_ms, changed, built_from = int(now_ms), int(changed), int(built_from)
            built_from = await self._follow_changes(now_ms, changed, built_from)
            return await self._backfill(now_ms, built_from, budget_s)

    async def read(self, grain_ms: int, first: int, last: int) -> list[tuple[str, int, str, int]]:
        rows = await self._backend.fetch(
            f"SELECT kind, bucket, k, runs FROM {ROLLUP} WHERE grain = %s AND kind IN "
            "('s', 'l') AND bucket BETWEEN %s AND %s", [grain_ms, first, last])
        return [(str(kind), int(bucket), str(k), int(runs)) for kind, bucket, k, runs in rows]

    async def top_failing(self, grain_ms: int, first: int, last: int, n: int) -> list[TopJob]:
        rows = await self._backend.fetch(
            f"SELECT k, SUM(runs) FROM {ROLLUP} WHERE grain = %s AND kind = 'f' AND bucket "
            f"BETWEEN %s AND %s GROUP BY k ORDER BY 2 DESC, k LIMIT {int(n)}",
            [grain_ms, first, last])
        return [TopJob(str(k), int(runs)) for k, runs in rows]

    async def failures(self, first_minute: int, last_minute: int) -> int:
        statuses = ", ".join(["%s"] * len(FAILURE_STATUSES))
        rows = await self._backend.fetch(
            f"SELECT COALESCE(SUM(runs), 0) FROM {ROLLUP} WHERE grain = %s AND kind = 's' "
            f"AND k IN ({statuses}) AND bucket BETWEEN %s AND %s",
            [MINUTE_MS, *FAILURE_STATUSES, first_minute, last_minute])
        return int(rows[0][0])

    async def _follow_changes(self, now_ms: int, changed: int, built_from: int) -> int:
        """Recompute the built minutes whose rows changed since the watermark; returns
        ``built_from`` (moved to now when so much changed that a rebuild is cheaper)."""
        found = await self._backend.fetch(_CHANGED_MINUTES, [changed, changed])
        minutes = sorted({int(m) for (m,) in found if int(m) >= built_from})
        # Never back (a row stamped before the last watermark was seen then), and always
        # on (the guard must change its row, or the transaction is rolled back).
        guard = (_CAS, [max(changed + 1, now_ms - LOOKBACK_S * 1000), "changed", changed])
        if len(minutes) > MAX_CHANGED_MINUTES:
            rebuild_from = now_ms // MINUTE_MS + 1
            await self._backend.execute_guarded(
                guard, [(_CAS, [rebuild_from, "built_from", built_from])])
            return rebuild_from
        statements: list[Statement] = []
        for first, last in _ranges(minutes):
            statements += await self._recompute(first, last)
        await self._backend.execute_guarded(guard, statements)
        return built_from

    async def _backfill(self, now_ms: int, built_from: int, budget_s: float) -> int | None:
        """Build older minutes, newest hour first, for at most ``budget_s``."""
        oldest = await self._backend.fetch(f"SELECT MIN(sort_time) FROM {TABLE}")
        floor_ms = max(int(oldest[0][0] or now_ms), now_ms - ROLLUP_KEEP_MS)
        floor = floor_ms // MINUTE_MS
        deadline = time.monotonic() + budget_s
        while built_from > floor and time.monotonic() < deadline:
            last = built_from - 1
            first = max(floor, last - self._steps.minutes + 1)
            started = time.monotonic()
            if not await self._backend.execute_guarded(
                    (_CAS, [first, "built_from", built_from]),
                    await self._recompute(first, last)):
                break  # another master moved it: it is building
            self._steps.took(time.monotonic() - started)
            built_from = first
        for grain in (MINUTE_MS, *DERIVED_GRAINS):  # forget what no window reaches
            await self._backend.execute(
                f"DELETE FROM {ROLLUP} WHERE grain = %s AND kind IN ('s', 'l', 'f') "
                "AND bucket < %s", [grain, (now_ms - ROLLUP_KEEP_MS) // grain])
        return None if built_from <= floor else built_from * MINUTE_MS

    async def _recompute(self, first: int, last: int) -> list[Statement]:
        """Statements that rebuild minutes ``first..last``, then the 5-minute buckets
        and the hours that hold them from their minutes.

        The minutes' figures are read here, by plain (consistent, non-locking) SELECTs,
        and written back as values: an ``INSERT ... SELECT`` from job_log would take
        shared locks on the rows it reads until the refresh commits, holding up (or
        deadlocking with) the workers' batches of that minute. A row that changes after
        this read is stamped after the watermark's new value, so the next refresh
        recomputes its minute."""
        since, until = first * MINUTE_MS, (last + 1) * MINUTE_MS
        rows: list[list[object]] = []
        for kind, select in raw_aggregates("mysql", "%s", MINUTE_MS).items():
            rows += [[MINUTE_MS, kind, int(bucket), str(key), int(runs)]
                     for bucket, key, runs in await self._backend.fetch(select, [since, until])]
        return _rebuild(first, last, rows)

    async def _holds(self, probe: str) -> bool:
        return bool(await self._backend.fetch(probe))

    async def _ensure(self) -> None:
        if self._ready:
            return
        try:
            for statement in _CREATE:
                await self._backend.execute(statement)
            for probe, step in _CHANGED_AT_STEPS:
                if not await self._holds(probe):
                    try:
                        await self._backend.execute(step)
                    except StoreQueryError:
                        pass  # done meanwhile by another master? the probe tells
                    if not await self._holds(probe):
                        raise StoreSchemaError(self._backend.display, f"not done: {step}",
                                               TABLE)
            await self._backend.execute(_INIT_STATE)
        except StoreQueryError as exc:
            raise StoreSchemaError(self._backend.display, exc.reason, ROLLUP) from exc
        self._ready = True


class _Steps:
    """How many minutes one backfill step rebuilds: the step should take about STEP_S
    (a summary waits at most for one), so halve it after a slower one and double it
    after a much faster one, between 1 minute and an hour. It starts short: 1,200
    records a minute (1,000,000 in 14 h) take ~15 ms a minute."""

    def __init__(self) -> None:
        self.minutes = 4

    def took(self, elapsed_s: float) -> None:
        if elapsed_s > STEP_S and self.minutes > 1:
            self.minutes //= 2
        elif elapsed_s < STEP_S / 4 and self.minutes < 60:
            self.minutes = min(60, self.minutes * 2)


def _ranges(minutes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted minutes as (first, last) runs of consecutive ones."""
    ranges: list[tuple[int, int]] = []
    for m in minutes:
        if ranges and ranges[-1][1] == m - 1:
            ranges[-1] = (ranges[-1][0], m)
        else:
            ranges.append((m, m))
    return ranges


def _rebuild(first: int, last: int, rows: list[list[object]]) -> list[Statement]:
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    statements: list[Statement] = [
        (f"DELETE FROM {ROLLUP} WHERE grain = %s AND kind IN ({kinds}) AND bucket BETWEEN "
         "%s AND %s", [MINUTE_MS, first, last])]
    for start in range(0, len(rows), INSERT_ROWS):
        chunk = rows[start:start + INSERT_ROWS]
        statements.append((f"INSERT INTO {ROLLUP} (grain, kind, bucket, k, runs) VALUES "
                           + ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk)),
                           [v for row in chunk for v in row]))
    for grain in DERIVED_GRAINS:
        n = grain // MINUTE_MS
        g_first, g_last = first // n, last // n
        statements += [
            (f"DELETE FROM {ROLLUP} WHERE grain = %s AND kind IN ({kinds}) AND bucket BETWEEN "
             "%s AND %s", [grain, g_first, g_last]),
            (f"INSERT INTO {ROLLUP} (grain, kind, bucket, k, runs) SELECT %s, kind, bucket DIV "
             f"{n}, k, SUM(runs) FROM {ROLLUP} WHERE grain = %s AND kind IN ({kinds}) AND "
             f"bucket BETWEEN %s AND %s GROUP BY kind, bucket DIV {n}, k",
             [grain, MINUTE_MS, g_first * n, g_last * n + n - 1]),
        ]
    return statements
