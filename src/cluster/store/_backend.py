"""What ``RunStore`` needs from a database: five calls, each one bounded in time.

Each backend runs every call on a connection it trusts, and throws away (closes)
any connection that saw an error or a cancellation, so a half-read reply can never
be mistaken for the answer to the next query. Backends translate their driver's
exceptions into the store's error tree before they reach ``RunStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._schema import Dialect

Params = Sequence[Any]
Row = tuple[Any, ...]
Statement = tuple[str, Params]
Batch = tuple[str, Sequence[Row]]  # one statement, many rows (``executemany``)


@dataclass(frozen=True)
class StoreStatistics:
    """A snapshot of one store's health, for /metrics and tests."""

    backend: str  # the redacted URL
    calls: int  # calls started
    failures: int  # calls that raised a StoreError
    timeouts: int  # calls cut off by the call timeout
    discarded_connections: int  # connections closed after an error or cancellation


@dataclass
class Counters:
    """The mutable tally behind StoreStatistics; only the owning backend writes it."""

    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    discarded_connections: int = 0

    def snapshot(self, backend: str) -> StoreStatistics:
        return StoreStatistics(
            backend, self.calls, self.failures, self.timeouts, self.discarded_connections
        )


class Backend(Protocol):
    dialect: Dialect
    display: str  # the redacted URL, for messages

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the affected row count."""

    async def executemany(self, sql: str, rows: Sequence[Row]) -> None:
        """Run one INSERT for many rows, atomically where the backend can."""

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query; return all its rows."""

    async def execute_guarded(self, guard: Statement, then: Sequence[Statement]) -> bool:
        """In one transaction: run ``guard``; unless it changed exactly one row, roll
        back and answer False; else run ``then`` and commit (a compare-and-set)."""

    async def transaction(self, guards: Sequence[Statement], batch: Batch | None,
                          then: Sequence[Statement]) -> bool:
        """In one transaction: run each of ``guards``; unless each changed exactly one
        row, roll back and answer False; else run ``batch`` (many rows), then ``then``,
        and commit. A run store batch and its alert decisions are one such call: either
        both are durable or neither is (``AlertOutbox.write_deciding``)."""

    def statistics(self) -> StoreStatistics: ...
