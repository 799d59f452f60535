"""The SQLite backend: stdlib sqlite3 in a worker thread, one connection, WAL mode.

sqlite3 blocks, so every call runs in ``trio.to_thread.run_sync`` under a
CapacityLimiter(1): at most one thread ever touches the connection. A thread cannot
be cancelled, so the bound on a call is enforced inside SQLite: a progress handler
aborts the statement once the call's deadline passes or its caller gave up, and the
busy timeout bounds waits for another process's lock. A cancelled caller abandons the
thread at once; the limiter stays held by that thread until it really ends, so the
next call never overlaps it. (An fsync stuck on a dead disk is not interruptible:
the next caller then waits for it.)
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import trio

from cluster.config import SqliteUrl
from cluster.private_files import create_private_file, make_private_dirs

from ._backend import Batch, Counters, Params, Row, Statement, StoreStatistics
from ._errors import (StoreClosedError, StoreError, StoreQueryError, StoreSchemaError,
                      StoreUnavailable)
from ._schema import SQLITE
from ._settings import StoreSettings

T = TypeVar("T")
_PROGRESS_EVERY_OPS = 1000  # SQLite VM instructions between deadline checks
_SQLITE_INTERRUPT = 9  # what a progress handler's abort raises

# Primary result codes (sqlite3.h) that say "not now" rather than "never".
_RETRYABLE = {
    5: "database is locked by another connection",  # SQLITE_BUSY
    6: "table is locked",  # SQLITE_LOCKED
    7: "out of memory",  # SQLITE_NOMEM
    8: "database is read-only",  # SQLITE_READONLY
    9: "call timed out or was cancelled",  # SQLITE_INTERRUPT
    10: "disk I/O error",  # SQLITE_IOERR
    13: "disk full",  # SQLITE_FULL
    14: "cannot open the database file",  # SQLITE_CANTOPEN
    15: "file locking protocol error",  # SQLITE_PROTOCOL
}
_NOT_A_DATABASE = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


@asynccontextmanager
async def open_sqlite(
    target: SqliteUrl, settings: StoreSettings
) -> AsyncIterator[SQLiteBackend]:
    backend = SQLiteBackend(target, settings)
    try:
        yield backend
    finally:
        await backend.aclose()


class SQLiteBackend:
    dialect = SQLITE

    def __init__(self, target: SqliteUrl, settings: StoreSettings) -> None:
        self.display = target.redacted()
        # Resolved now: a relative path means the working directory at open time.
        self._path = target.resolved_path()
        self._settings = settings
        self._limiter = trio.CapacityLimiter(1)
        self._conn: sqlite3.Connection | None = None  # only touched in the limited thread
        self._closed = False
        self._counters = Counters()

    def statistics(self) -> StoreStatistics:
        return self._counters.snapshot(self.display)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._call(lambda conn: conn.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Row]) -> None:
        # One transaction: SQLite has no network round trips to save, only fsyncs.
        await self._call(lambda conn: conn.executemany(sql, rows))

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._call(lambda conn: conn.execute(sql, params).fetchall())

    async def execute_guarded(self, guard: Statement, then: Sequence[Statement]) -> bool:
        return await self.transaction([guard], None, then)

    async def transaction(self, guards: Sequence[Statement], batch: Batch | None,
                          then: Sequence[Statement]) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            # sqlite3 opens the transaction before the first write; ``_in_thread``'s
            # ``with conn`` commits it, or rolls it back on any error.
            for guard in guards:
                if conn.execute(*guard).rowcount != 1:
                    conn.rollback()
                    return False
            if batch is not None:
                conn.executemany(*batch)
            for sql, params in then:
                conn.execute(sql, params)
            return True
        return await self._call(work)

    async def aclose(self) -> None:
        self._closed = True
        # Shielded but bounded: a thread still holding the limiter ends by its deadline.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._close_connection, limiter=self._limiter)

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreClosedError(self.display)
        self._counters.calls += 1
        timeout_s = self._settings.call_timeout_s
        abort = threading.Event()
        # The deadline is wall-clock time, enforced in the thread: a trio timeout would
        # follow a test's MockClock, which jumps ahead whenever we wait for a thread.
        try:
            return await trio.to_thread.run_sync(
                self._in_thread, work, abort, time.monotonic() + timeout_s,
                limiter=self._limiter, abandon_on_cancel=True)
        except trio.Cancelled:
            abort.set()  # the abandoned thread stops at its next progress check
            raise
        except sqlite3.Error as exc:
            self._counters.failures += 1
            if getattr(exc, "sqlite_errorcode", None) == _SQLITE_INTERRUPT:
                self._counters.timeouts += 1
                raise StoreUnavailable(self.display, f"no answer within {timeout_s:g} s") from exc
            raise self._translate(exc) from exc
        except OSError as exc:  # e.g. the database's directory cannot be created
            self._counters.failures += 1
            raise StoreUnavailable(self.display, str(exc)) from exc

    def _in_thread(self, work: Callable[[sqlite3.Connection], T], abort: threading.Event,
                   deadline: float) -> T:
        if abort.is_set():
            raise sqlite3.OperationalError("interrupted")
        try:
            conn = self._conn or self._connect()
            conn.set_progress_handler(lambda: abort.is_set() or time.monotonic() > deadline,
                                      _PROGRESS_EVERY_OPS)
            with conn:  # commit, or roll back on any error
                return work(conn)
        except BaseException:
            # Invariant: a connection that saw an error is never used again.
            self._discard()
            raise
        finally:
            if self._conn is not None:
                self._conn.set_progress_handler(None, 0)

    def _connect(self) -> sqlite3.Connection:
        if self._path != ":memory:":
            # Job output: 0600 from its creation (SQLite gives the -wal and -shm files
            # the database file's mode), in directories 0700 if we make them.
            make_private_dirs(Path(self._path).parent, "run store directory")
            create_private_file(Path(self._path))
        # check_same_thread=False: trio's thread cache may hand each call another
        # thread; the limiter guarantees they never overlap.
        conn = sqlite3.connect(self._path, timeout=self._settings.connect_timeout_s,
                               check_same_thread=False)
        try:
            _math_functions(conn)
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe across app crashes
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL once per database (the mode persists in the file).

        Switching fails at once with "database is locked", without waiting on the busy
        timeout, while another connection (the master beside a worker, two processes
        opening a new file) holds it; so it is skipped when the file is in WAL mode
        already, and retried briefly otherwise.
        """
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        deadline = time.monotonic() + self._settings.connect_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    def _discard(self) -> None:
        if self._conn is not None:
            self._counters.discarded_connections += 1
        self._close_connection()

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary in _RETRYABLE:
            return StoreUnavailable(self.display, f"{_RETRYABLE[primary]} ({exc})")
        if str(exc).startswith("no such table"):  # deleted under us: re-created next call
            return StoreUnavailable(self.display, str(exc))
        if primary in _NOT_A_DATABASE:
            return StoreSchemaError(self.display, f"not a usable database file ({exc})")
        return StoreQueryError(self.display, str(exc))


def _math_functions(conn: sqlite3.Connection) -> None:
    """``log2`` for the run statistics (``_stats``), where SQLite was built without
    its math functions (they are a compile-time option)."""
    try:
        conn.execute("SELECT log2(2)")
    except sqlite3.OperationalError:
        conn.create_function("log2", 1, math.log2, deterministic=True)
