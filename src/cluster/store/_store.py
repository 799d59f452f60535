"""``RunStore``: the run history API, one class over either SQL backend.

The SQL here is shared; ``Dialect`` carries the few differences and ``Backend`` the
I/O. The table is created on first use rather than at open: a worker must start,
and keep its runs in the LogSink, while MySQL is down, and the store must pick up by
itself once the server is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Sequence
from typing import NamedTuple, TypeVar, final

import trio

from ._audit import (AUDIT_PROBE, AUDIT_SELECT, AuditEntry, audit_create_statements,
                     audit_insert)
from ._alerts import AlertOutbox
from ._output import RunOutput
from ._backend import Backend, Params, Row, StoreStatistics
from ._cursor import decode_cursor, encode_cursor
from ._follow import START_LOOKBACK, FollowCursor, FollowPage
from ._latest import (LATEST_RUNS, RECENT_RUNS, LastRun, latest_by_job, latest_runs_of,
                      recent_of_job)
from ._errors import InvalidQuery, StoreQueryError, StoreSchemaError, StoreUnavailable
from ._record import RunRecord, RunStatus
from ._rollup import Rollup
from ._rows import record_from_row, record_row
from ._stats import RunStats
from ._schema import (ADDED_COLUMNS, ADDED_PROBE, ORDER_NEWEST_FIRST, ORIGINAL_PROBE,
                      SCHEMA_PROBE, SELECT_LIST, TABLE)

T = TypeVar("T")
MAX_PAGE_LIMIT = 1000


class RunPage(NamedTuple):
    """One page of runs, newest first; pass ``next_cursor`` back for the next page
    (None: this was the last one)."""

    records: list[RunRecord]
    next_cursor: str | None


@final
class RunStore:
    """The run history. Made by ``open_store``, valid inside its ``async with`` block.

    Every method may raise StoreUnavailable (retry later) and is bounded by the
    store's call timeout. Time filters use the run's ``sort_time`` (its start time,
    or for a run that never started its schedule time): ``since_ms`` inclusive,
    ``until_ms`` exclusive.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._mark = backend.dialect.mark
        self._schema_ready = False
        self._audit_schema_ready = False
        self._schema_lock = trio.Lock()
        self.alerts = AlertOutbox(backend)  # the alert state and outbox (issue 12)
        self.output = RunOutput(backend)  # running runs' live output, in chunks (issue 13)
        # The dashboard's figures (issue 13): MySQL's from a rollup, SQLite's from rows.
        self.stats = RunStats(backend, self._ready,
                              Rollup(backend) if backend.dialect.name == "mysql" else None)

    def __repr__(self) -> str:
        return f"<RunStore {self._backend.display}>"

    def statistics(self) -> StoreStatistics:
        return self._backend.statistics()

    async def ping(self) -> None:
        """Raise unless the store can take writes now (connects; creates the table)."""
        await self._ready()
        await self._fetch("SELECT 1")

    async def write_batch(self, records: Sequence[RunRecord], *,
                          repeat_s: float | None = None) -> int:
        """Upsert ``records`` in one multi-row statement; a run_id already stored is
        replaced, so replaying a batch after a failure never duplicates a run.

        With ``repeat_s``, the alert rule (issue 12) is applied to the batch in the same
        transaction (``AlertOutbox.write_deciding``): the records are never durable
        without their alert decisions, and a replay decides nothing again. Returns the
        alert events raised."""
        if not records:
            return 0
        await self._ready()
        batch = (self._backend.dialect.upsert, [record_row(r) for r in records])
        if repeat_s is None:
            await self._executemany(*batch)
            return 0
        return await self._unless_gone(
            self.alerts.write_deciding(records, batch, repeat_s=repeat_s))

    async def write_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Store audit entries; one already stored (same id) is left as it is, so
        moving an entry again after a failure never duplicates it."""
        if not entries:
            return
        await self._audit_ready()
        dialect = self._backend.dialect
        await self._executemany(audit_insert(dialect.name, self._mark),
                                [e.row() for e in entries])

    async def query_audit(self, *, job_name: str | None = None, token: str | None = None,
                          before_id: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """Audit entries matching every given filter, newest first (by id), at most
        ``limit``; ``before_id``: only entries older than that one (paging)."""
        _check_range("limit", limit, 1, MAX_PAGE_LIMIT + 1)
        m = self._mark
        where: list[str] = []
        params: list[object] = []
        for column, value in (("job_name", job_name), ("token_name", token),
                              ("entry_id", before_id)):
            if value is not None:
                where.append(f"{column} {'<' if column == 'entry_id' else '='} {m}")
                params.append(value)
        await self._audit_ready()
        rows = await self._fetch(f"{AUDIT_SELECT} {_where(where)} ORDER BY entry_id DESC "
                                 f"LIMIT {m}", [*params, limit])
        return [AuditEntry.from_row(r) for r in rows]

    async def get(self, run_id: str) -> RunRecord | None:
        await self._ready()
        rows = await self._select(f"WHERE run_id = {self._mark}", [run_id])
        return record_from_row(rows[0]) if rows else None

    async def query(
        self,
        *,
        job_name: str | None = None,
        status: str | Collection[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> RunPage:
        """Runs matching every given filter, newest first, ``limit`` per page."""
        _check_range("limit", limit, 1, MAX_PAGE_LIMIT)
        where, params = self._filters(job_name, status, since_ms, until_ms)
        if cursor is not None:
            sort_time, row_id = decode_cursor(cursor)
            m = self._mark
            where.append(f"(sort_time < {m} OR (sort_time = {m} AND id < {m}))")
            params += [sort_time, sort_time, row_id]
        await self._ready()
        rows = await self._select(f"{_where(where)} {ORDER_NEWEST_FIRST} LIMIT {self._mark}",
                                  [*params, limit + 1])
        page = rows[:limit]
        more = len(rows) > limit
        return RunPage([record_from_row(r) for r in page],
                       encode_cursor(page[-1][1], page[-1][0]) if more else None)

    async def follow_start(self, now_ms: int) -> str:
        """A follow cursor at the newest record: ``follow`` then gives what lands after."""
        await self._ready()
        rows = await self._fetch(f"SELECT id FROM {TABLE} ORDER BY id DESC LIMIT {self._mark}",
                                 [START_LOOKBACK])
        return FollowCursor.start([int(r[0]) for r in rows], now_ms).encode()

    async def follow(
        self,
        after: str,
        *,
        now_ms: int,
        job_name: str | None = None,
        status: str | Collection[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 1000,
    ) -> FollowPage:
        """Records that landed after the follow cursor ``after`` (``follow_start``'s or
        a page's), in id order, each once; ``after`` of the page continues from it."""
        _check_range("limit", limit, 1, MAX_PAGE_LIMIT)
        cursor = FollowCursor.decode(after)
        where, params = self._filters(job_name, status, since_ms, until_ms)
        m = self._mark
        holes = cursor.hole_ids
        landed = f"id > {m}" + (f" OR id IN ({', '.join([m] * len(holes))})" if holes else "")
        await self._ready()
        # Every id that landed, matched or not: the cursor must move past all of them.
        ids = [int(r[0]) for r in await self._fetch(
            f"SELECT id FROM {TABLE} WHERE {landed} ORDER BY id LIMIT {m}",
            [cursor.after, *holes, limit])]
        rows: list[Row] = []
        if ids:
            where.append(f"id IN ({', '.join([m] * len(ids))})")
            rows = await self._select(f"{_where(where)} ORDER BY id", [*params, *ids])
        return FollowPage([record_from_row(r) for r in rows], cursor.advance(ids, now_ms).encode(),
                          caught_up=len(ids) < limit)

    async def query_offset(self, job_name: str, offset: int, limit: int) -> list[RunRecord]:
        """The seed's ``/job/log`` paging: newest first, skip ``offset`` runs."""
        _check_range("offset", offset, 0, None)
        _check_range("limit", limit, 1, MAX_PAGE_LIMIT)
        await self._ready()
        m = self._mark
        rows = await self._select(f"WHERE job_name = {m} {ORDER_NEWEST_FIRST} LIMIT {m} OFFSET {m}",
                                  [job_name, limit, offset])
        return [record_from_row(r) for r in rows]

    async def latest_runs(self, names: Collection[str] | None = None) -> dict[str, LastRun]:
        """Each job's newest run, by job name, in one grouped query (``_latest``); of
        ``names`` only when given."""
        await self._ready()
        if names is None:
            return latest_by_job(await self._fetch(LATEST_RUNS))
        if not names:
            return {}
        named = list(names)
        return latest_by_job(await self._fetch(latest_runs_of(len(named), self._mark),
                                              [*named, *named]))

    async def recent_runs(self, job_name: str, limit: int) -> list[LastRun]:
        """A job's newest ``limit`` runs, newest first, without outputs (``_latest``)."""
        _check_range("limit", limit, 1, MAX_PAGE_LIMIT)
        await self._ready()
        return recent_of_job(await self._fetch(RECENT_RUNS.format(m=self._mark),
                                               [job_name, limit]))

    async def count(
        self,
        *,
        job_name: str | None = None,
        status: str | Collection[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> int:
        where, params = self._filters(job_name, status, since_ms, until_ms)
        await self._ready()
        rows = await self._fetch(f"SELECT COUNT(*) FROM {TABLE} {_where(where)}", params)
        return int(rows[0][0])

    async def prune(
        self, *, older_than_ms: int | None, max_per_job: int | None = None, batch_size: int = 1000
    ) -> int:
        """Delete runs older than ``older_than_ms`` and, per job, all but the newest
        ``max_per_job``; return how many went. Deletes ``batch_size`` rows per
        statement so no statement holds locks for long or bloats the undo log."""
        _check_range("batch_size", batch_size, 1, None)
        if max_per_job is not None:
            _check_range("max_per_job", max_per_job, 0, None)
        if older_than_ms is not None:
            _check_range("older_than_ms", older_than_ms, None, None)
        await self._ready()
        deleted = 0
        if older_than_ms is not None:
            deleted += await self._delete_batches(f"sort_time < {self._mark}", [older_than_ms],
                                                  batch_size)
        if max_per_job is not None:
            for (job_name,) in await self._fetch(f"SELECT DISTINCT job_name FROM {TABLE}"):
                deleted += await self._prune_job(job_name, max_per_job, batch_size)
        return deleted

    async def _prune_job(self, job_name: str, keep: int, batch_size: int) -> int:
        m = self._mark
        # The newest run that must go; it and everything older than it are deleted.
        first_gone = await self._fetch(
            f"SELECT sort_time, id FROM {TABLE} WHERE job_name = {m} "
            f"{ORDER_NEWEST_FIRST} LIMIT 1 OFFSET {m}", [job_name, keep])
        if not first_gone:
            return 0
        sort_time, row_id = first_gone[0]
        where = f"job_name = {m} AND (sort_time < {m} OR (sort_time = {m} AND id <= {m}))"
        return await self._delete_batches(where, [job_name, sort_time, sort_time, row_id],
                                          batch_size)

    async def _delete_batches(self, where: str, params: list[object], batch_size: int) -> int:
        statement = self._backend.dialect.delete_limited(where)
        deleted = 0
        while True:
            n = await self._execute(statement, [*params, batch_size])
            deleted += n
            if n < batch_size:
                return deleted

    async def _select(self, tail: str, params: Params) -> list[Row]:
        return await self._fetch(f"SELECT {SELECT_LIST} FROM {TABLE} {tail}", params)

    def _filters(
        self,
        job_name: str | None,
        status: str | Collection[str] | None,
        since_ms: int | None,
        until_ms: int | None,
    ) -> tuple[list[str], list[object]]:
        m = self._mark
        where: list[str] = []
        params: list[object] = []
        for name, value in (("since_ms", since_ms), ("until_ms", until_ms)):
            if value is not None:
                _check_range(name, value, None, None)
        if job_name is not None:
            where.append(f"job_name = {m}")
            params.append(job_name)
        if status is not None:
            statuses = _statuses(status)
            where.append(f"status IN ({', '.join([m] * len(statuses))})")
            params += statuses
        if since_ms is not None:
            where.append(f"sort_time >= {m}")
            params.append(since_ms)
        if until_ms is not None:
            where.append(f"sort_time < {m}")
            params.append(until_ms)
        return where, params

    async def _fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._unless_gone(self._backend.fetch(sql, params))

    async def _execute(self, sql: str, params: Params = ()) -> int:
        return await self._unless_gone(self._backend.execute(sql, params))

    async def _executemany(self, sql: str, rows: Sequence[Row]) -> None:
        await self._unless_gone(self._backend.executemany(sql, rows))

    async def _unless_gone(self, call: Awaitable[T]) -> T:
        """Await a statement; after an outage, check the table again on the next call:
        the server may have come back empty (a new instance, a dropped table)."""
        try:
            return await call
        except StoreUnavailable:
            self._schema_ready = self._audit_schema_ready = False
            self.alerts.forget_schema()
            self.output.forget_schema()
            self.stats.forget_schema()
            raise

    async def _audit_ready(self) -> None:
        """Create audit_log on the first audit call (only the master has any: workers
        never create it)."""
        await self._ready()
        if self._audit_schema_ready:
            return
        async with self._schema_lock:
            if self._audit_schema_ready:
                return
            try:
                for statement in audit_create_statements(self._backend.dialect.name):
                    await self._backend.execute(statement)
                await self._backend.fetch(AUDIT_PROBE)
            except StoreQueryError as exc:
                raise StoreSchemaError(self._backend.display, exc.reason, "audit_log") from exc
            self._audit_schema_ready = True

    async def _ready(self) -> None:
        """Create the table once per store, on the first call that reaches the server."""
        if self._schema_ready:
            return
        async with self._schema_lock:
            if self._schema_ready:
                return
            try:
                for statement in self._backend.dialect.create_statements:
                    await self._backend.execute(statement)
                await self._add_columns()
                await self._backend.fetch(SCHEMA_PROBE)
            except StoreQueryError as exc:
                raise StoreSchemaError(self._backend.display, exc.reason) from exc
            self._schema_ready = True

    async def _add_columns(self) -> None:
        """A job_log of an earlier release lacks the columns added since: add them.
        Two processes may do it at once: a column the other added is fine."""
        try:
            await self._backend.fetch(ADDED_PROBE)
            return
        except StoreQueryError:
            pass
        await self._backend.fetch(ORIGINAL_PROBE)  # a foreign job_log: not ours to alter
        for _, statement in ADDED_COLUMNS:
            try:
                await self._backend.execute(statement)
            except StoreQueryError:
                pass  # added meanwhile by another process; the probe after tells


def _where(conditions: list[str]) -> str:
    return "WHERE " + " AND ".join(conditions) if conditions else ""


def _statuses(status: str | Collection[str]) -> list[str]:
    wanted = [status] if isinstance(status, str) else list(status)
    try:
        statuses = [RunStatus(s).value for s in wanted]
    except ValueError:
        raise InvalidQuery("status", status, "run statuses") from None
    if not statuses:
        raise InvalidQuery("status", status, "at least one run status")
    return statuses


def _check_range(name: str, value: int, low: int | None, high: int | None) -> None:
    if (not isinstance(value, int) or isinstance(value, bool)
            or (low is not None and value < low) or (high is not None and value > high)):
        raise InvalidQuery(name, value, f"an int in [{low or '...'}, {high or '...'}]")
