"""The MySQL/MariaDB backend: asyncmy's pool, driven from trio through trio-asyncio.

This is the only module of the project that touches asyncio. If the caller already
runs a trio-asyncio loop, the store uses it; otherwise it opens one with
``trio_asyncio.open_loop()`` for its own lifetime. Every call is one asyncio
coroutine (acquire a connection, run the statement, release) entered with
``aio_as_trio`` on that loop, so any trio task may call the store.

A call is bounded on the trio side by ``StoreSettings.call_timeout_s``; trio's
cancellation reaches the coroutine as ``asyncio.CancelledError``. A connection that
saw any error or cancellation may hold half a reply, so it is closed and the pool
forgets it; the pool dials fresh connections once the server is back.

These timeouts follow the trio clock (trio-asyncio's loop time is trio's): under an
autojump MockClock every wait on the server looks idle and times out at once, so use
a SQLite store (whose deadlines are wall-clock) in MockClock tests.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncmy
import asyncmy.errors
import trio
import trio_asyncio

from cluster.config import MysqlUrl

from ._backend import Batch, Counters, Params, Row, Statement, StoreStatistics
from ._errors import (StoreAccessDenied, StoreClosedError, StoreConfigError, StoreError,
                      StoreQueryError, StoreTlsError, StoreUnavailable)
from ._schema import MYSQL
from ._settings import StoreSettings
from ._tls import client_context, tls_failure

T = TypeVar("T")
Op = Callable[[Any], Awaitable[T]]  # an asyncio-flavoured step on one connection

# Server error codes that mean "this configuration can never work".
_CONFIG_CODES = {1044, 1049}  # access denied to the database, unknown database
_ACCESS_DENIED_CODES = {1045, 1698}  # wrong user or password (MariaDB: or TLS required)
_TLS_REQUIRED_CODE = 3159  # MySQL's require_secure_transport refusing plain TCP
_CONNECT_FAILED = 2003  # CR_CONN_HOST_ERROR: asyncmy's wrapper of a failed connect
# Server error codes that mean "not now": too many connections, shutting down, lock
# wait timeout, deadlock, read-only (failover), killed, statement timeout, idle kick.
# 1146, no such table: the server came back empty; RunStore re-creates it next call.
_TRANSIENT_CODES = {1040, 1053, 1146, 1205, 1213, 1290, 1836, 1927, 1969, 3024, 4031}
# Client-side codes (CR_*, 2000-2999) all mean the connection or server is gone;
# asyncmy also raises some client errors with code 0.
_CLIENT_CODES = range(2000, 3000)
# Client error codes of a connection the server dropped (restart, wait_timeout): the
# pool may hand out such a connection once, and a fresh one may well succeed.
_STALE_CODES = {2006, 2013, 2055}  # gone away, lost during query, lost at reading
_NETWORK_ERRORS = (OSError, EOFError, asyncio.TimeoutError)
MAX_COMMAND_BYTES = 4 * 1024 * 1024  # rows per command: well under max_allowed_packet
_STATEMENT_CACHE_SIZE = 16  # prepared statements kept per connection


@asynccontextmanager
async def open_mysql(target: MysqlUrl, settings: StoreSettings) -> AsyncIterator[MySQLBackend]:
    tls = client_context(target, target.redacted())  # before the loop: fails fast
    async with _asyncio_loop() as loop:
        pool = await trio_asyncio.aio_as_trio(_create_pool, loop=loop)(target, settings, tls)
        backend = MySQLBackend(target, settings, loop, pool)
        try:
            yield backend
        finally:
            await backend.aclose()


@asynccontextmanager
async def _asyncio_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    running = trio_asyncio.current_loop.get()
    if running is not None:
        yield running
        return
    async with trio_asyncio.open_loop() as loop:
        yield loop


async def _create_pool(target: MysqlUrl, settings: StoreSettings,
                       tls: ssl.SSLContext | None) -> asyncmy.Pool:
    # minsize=0: opening the store never dials, so it opens while the server is down.
    # The password goes to the driver as an argument, never through a URL string.
    return await asyncmy.create_pool(
        minsize=0, maxsize=settings.pool_size, pool_recycle=settings.pool_recycle_s,
        host=target.host, port=target.port, user=target.user, password=target.password or "",
        db=target.database, charset="utf8mb4", autocommit=True,
        connect_timeout=settings.connect_timeout_s, ssl=tls,
        # No notes ("table already exists"): asyncmy would fetch and log each one.
        # UTC: the rollup's TIMESTAMP comparisons (``_rollup``) never meet a DST fold.
        init_command="SET SESSION sql_notes = 0, time_zone = '+00:00'",
        # A statement cache turns on asyncmy's binary protocol: prepared statements
        # (no escaping) and MariaDB's bulk insert, about twice the text INSERT's rate.
        # Not over TLS: asyncmy 0.2.18 sends its TLS request without MariaDB's extended
        # capabilities, so MariaDB refuses the bulk command (error 1295) that asyncmy
        # still believes it may send; the text protocol's multi-row INSERT works.
        stmt_cache_size=0 if tls else _STATEMENT_CACHE_SIZE,
    )


class MySQLBackend:
    dialect = MYSQL

    def __init__(self, target: MysqlUrl, settings: StoreSettings,
                 loop: asyncio.AbstractEventLoop, pool: asyncmy.Pool) -> None:
        self.display = target.redacted()
        self._tls = target.tls
        self._settings = settings
        self._loop = loop
        self._pool = pool
        self._closed = False
        self._counters = Counters()

    def statistics(self) -> StoreStatistics:
        return self._counters.snapshot(self.display)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async def op(conn: Any) -> int:
            async with conn.cursor() as cur:
                return int(await cur.execute(sql, tuple(params)))
        return await self._call(op)

    async def executemany(self, sql: str, rows: Sequence[Row]) -> None:
        # One statement per chunk, and a whole batch is one chunk unless it holds
        # megabytes of output: asyncmy sends a chunk as one MariaDB bulk command
        # (binary rows, one round trip) or else as one multi-row INSERT. Chunks keep
        # each command under the server's max_allowed_packet (16 MiB by default);
        # every chunk is an idempotent upsert, so a retry after a partial write is safe.
        async def op(conn: Any) -> None:
            async with conn.cursor() as cur:
                for chunk in _chunks(rows, MAX_COMMAND_BYTES):
                    await cur.executemany(sql, chunk)
        await self._call(op)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async def op(conn: Any) -> list[Row]:
            async with conn.cursor() as cur:
                await cur.execute(sql, tuple(params))
                return list(await cur.fetchall())
        return await self._call(op)

    async def execute_guarded(self, guard: Statement, then: Sequence[Statement]) -> bool:
        return await self.transaction([guard], None, then)

    async def transaction(self, guards: Sequence[Statement], batch: Batch | None,
                          then: Sequence[Statement]) -> bool:
        # The connection is in autocommit mode: BEGIN makes the statements one
        # transaction; an error or a cancellation closes the connection, and the
        # server rolls back (as it does for a worker that dies mid-transaction).
        async def op(conn: Any) -> bool:
            await conn.begin()
            async with conn.cursor() as cur:
                for sql, params in guards:
                    if int(await cur.execute(sql, tuple(params))) != 1:
                        await conn.rollback()
                        return False
                if batch is not None:
                    for chunk in _chunks(batch[1], MAX_COMMAND_BYTES):
                        await cur.executemany(batch[0], chunk)
                for sql, params in then:
                    await cur.execute(sql, tuple(params))
            await conn.commit()
            return True
        return await self._call(op)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        with trio.move_on_after(self._settings.connect_timeout_s, shield=True) as scope:
            await trio_asyncio.aio_as_trio(self._pool.wait_closed, loop=self._loop)()
        if scope.cancelled_caught:
            self._pool.terminate()  # close the rest without saying goodbye

    async def _call(self, op: Op[T]) -> T:
        if self._closed:
            raise StoreClosedError(self.display)
        self._counters.calls += 1
        timeout_s = self._settings.call_timeout_s
        with trio.move_on_after(timeout_s):
            try:
                return await trio_asyncio.aio_as_trio(self._run, loop=self._loop)(op)
            except (asyncmy.errors.MySQLError, *_NETWORK_ERRORS) as exc:
                self._counters.failures += 1
                raise self._translate(exc) from exc
        self._counters.failures += 1
        self._counters.timeouts += 1
        raise StoreUnavailable(self.display, f"no answer within {timeout_s:g} s")

    async def _run(self, op: Op[T]) -> T:
        """asyncio side: one retry on a fresh connection if the pooled one was stale."""
        try:
            return await self._on_one_connection(op)
        except (asyncmy.errors.OperationalError, asyncmy.errors.InterfaceError) as exc:
            if not _is_stale(exc):
                raise
        return await self._on_one_connection(op)

    async def _on_one_connection(self, op: Op[T]) -> T:
        conn = await self._pool.acquire()
        try:
            return await op(conn)
        except BaseException:
            # Invariant: a connection that saw an error or a cancellation is closed;
            # release() below then drops it instead of pooling it.
            conn.close()
            self._counters.discarded_connections += 1
            raise
        finally:
            self._pool.release(conn)

    def _translate(self, exc: BaseException) -> StoreError:
        reason = f"{type(exc).__name__}: {exc}"
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        # A TLS failure shows when connecting: a refused certificate is no outage.
        connecting = code == _CONNECT_FAILED or isinstance(exc, ssl.SSLError)
        if connecting and (tls := tls_failure(exc, self.display)) is not None:
            return tls
        if isinstance(exc, _NETWORK_ERRORS):
            return StoreUnavailable(self.display, reason)
        if code in _ACCESS_DENIED_CODES:
            said = str(exc.args[1]) if len(exc.args) > 1 else reason
            # MariaDB refuses plain TCP under require_secure_transport with this code.
            hint = "" if self._tls else "; or the server requires TLS: give --db-ca"
            return StoreAccessDenied(self.display, said + hint)
        if code == _TLS_REQUIRED_CODE:
            return StoreTlsError(self.display, "the server requires TLS: give its CA with "
                                               "--db-ca or the URL's ssl-ca")
        if code in _CONFIG_CODES:
            return StoreConfigError(self.display, reason)
        if code == 0 or code in _CLIENT_CODES or code in _TRANSIENT_CODES:
            return StoreUnavailable(self.display, reason)
        # Any other server error (unknown column, bad value...) will recur unchanged.
        return StoreQueryError(self.display, reason)


def _chunks(rows: Sequence[Row], max_bytes: int) -> list[Sequence[Row]]:
    """Consecutive slices of ``rows``, each (unless a single row) at most about
    ``max_bytes`` once encoded (non-ASCII text is counted at 4 bytes a character)."""
    chunks: list[Sequence[Row]] = []
    start, size = 0, 0
    for i, row in enumerate(rows):
        row_bytes = 64 + sum(len(v) if v.isascii() else 4 * len(v)
                             for v in row if isinstance(v, str))
        if size + row_bytes > max_bytes and i > start:
            chunks.append(rows[start:i])
            start, size = i, 0
        size += row_bytes
    chunks.append(rows[start:])
    return chunks


def _is_stale(exc: BaseException) -> bool:
    if isinstance(exc, asyncmy.errors.InterfaceError):
        return True
    return bool(exc.args) and exc.args[0] in _STALE_CODES
