"""``RunOutput``: the live output of running runs, in chunks (DESIGN §8 "Live output").

A worker appends what its running commands print, a batch of chunks every
``FLUSH_S`` at most (never one write per line); the master reads a run's chunks
after a sequence number and streams them (``GET /api/v1/runs/<id>/output``). One row
per chunk: ``(run_id, seq)`` is the key, so a batch written again after a write whose
answer was lost stores each chunk once. ``stream`` is ``out`` or ``err`` (text the
command printed), ``trunc`` (the run printed more than the worker streams: nothing
follows but ``eof``), or ``eof`` (the run ended: no chunk of it comes after).

Why the run store and not etcd: etcd is the cluster's consensus store, every byte in
it is replicated through the raft log and kept until compaction; bulk output there
would slow claims. Why keep chunks at all once the record is durable: a reader that
comes a little late still gets the whole tail (the record keeps only the first
``output_cap_bytes``). Rows older than ``KEEP_MS`` are deleted by the workers
(``prune``), a bounded batch at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import trio

from ._backend import Backend
from ._errors import StoreQueryError, StoreSchemaError, StoreUnavailable

T = TypeVar("T")

__all__ = ["KEEP_MS", "OUTPUT_TABLE", "OutputChunk", "RunOutput"]

OUTPUT_TABLE: Final = "run_output"
KEEP_MS: Final = 3_600_000  # one hour after it was written
STREAMS: Final = frozenset({"out", "err", "trunc", "eof"})
_COLUMNS: Final = ("run_id", "seq", "stream", "data", "at_ms")

_MYSQL = (f"""
CREATE TABLE IF NOT EXISTS {OUTPUT_TABLE} (
    run_id VARCHAR(128) NOT NULL,
    seq INT NOT NULL,
    stream VARCHAR(8) NOT NULL,
    data MEDIUMTEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq),
    KEY ix_run_output_at (at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
""",)
_SQLITE = (f"""
CREATE TABLE IF NOT EXISTS {OUTPUT_TABLE} (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    data TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
)
""", f"CREATE INDEX IF NOT EXISTS ix_run_output_at ON {OUTPUT_TABLE} (at_ms)")
_IGNORE_DUPLICATE: Final = {
    "mysql": "ON DUPLICATE KEY UPDATE seq = seq",
    "sqlite": "ON CONFLICT(run_id, seq) DO NOTHING",
}


@dataclass(frozen=True, slots=True)
class OutputChunk:
    run_id: str
    seq: int  # from 1, per run, in the order the worker read it
    stream: str  # out | err | trunc | eof
    data: str
    at_ms: int  # when the worker read it

    def row(self) -> tuple[str, int, str, str, int]:
        return (self.run_id, self.seq, self.stream, self.data, self.at_ms)


class RunOutput:
    """The ``run_output`` table of one RunStore (``RunStore.output``); made on first use."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._m = backend.dialect.mark
        self._ready = False
        self._lock = trio.Lock()

    def forget_schema(self) -> None:
        self._ready = False

    async def append(self, chunks: Sequence[OutputChunk]) -> None:
        """Store ``chunks`` (any runs) in one statement; a chunk already stored stays."""
        if not chunks:
            return
        await self._ensure()
        name = self._backend.dialect.name
        marks = ", ".join([self._m] * len(_COLUMNS))
        await self._gone_aware(self._backend.executemany(
            f"INSERT INTO {OUTPUT_TABLE} ({', '.join(_COLUMNS)}) VALUES ({marks}) "
            f"{_IGNORE_DUPLICATE[name]}", [c.row() for c in chunks]))

    async def read(self, run_id: str, after_seq: int = 0, limit: int = 500) -> list[OutputChunk]:
        """The run's chunks with ``seq`` > ``after_seq``, in order, at most ``limit``."""
        await self._ensure()
        m = self._m
        rows = await self._gone_aware(self._backend.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM {OUTPUT_TABLE} WHERE run_id = {m} "
            f"AND seq > {m} ORDER BY seq LIMIT {m}", [run_id, after_seq, limit]))
        return [OutputChunk(r[0], int(r[1]), r[2], r[3], int(r[4])) for r in rows]

    async def prune(self, older_than_ms: int, batch_size: int = 500) -> int:
        """Delete up to ``batch_size`` chunks written before ``older_than_ms``."""
        await self._ensure()
        m = self._m
        if self._backend.dialect.name == "sqlite":  # no DELETE ... LIMIT in every build
            sql = (f"DELETE FROM {OUTPUT_TABLE} WHERE rowid IN (SELECT rowid FROM "
                   f"{OUTPUT_TABLE} WHERE at_ms < {m} LIMIT {m})")
        else:
            sql = f"DELETE FROM {OUTPUT_TABLE} WHERE at_ms < {m} LIMIT {m}"
        return await self._gone_aware(self._backend.execute(sql, [older_than_ms, batch_size]))

    async def _gone_aware(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except StoreUnavailable:
            self._ready = False  # the server may come back empty: check the table again
            raise

    async def _ensure(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            statements = _MYSQL if self._backend.dialect.name == "mysql" else _SQLITE
            try:
                for statement in statements:
                    await self._backend.execute(statement)
                await self._backend.fetch(f"SELECT {', '.join(_COLUMNS)} FROM "
                                          f"{OUTPUT_TABLE} WHERE 1 = 0")
            except StoreQueryError as exc:
                raise StoreSchemaError(self._backend.display, exc.reason, OUTPUT_TABLE) from exc
            self._ready = True
