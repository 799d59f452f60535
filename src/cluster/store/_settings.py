"""Tunables of the run-record store, with units in their names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreSettings:
    """Every store call is bounded by ``connect_timeout_s + query_timeout_s`` so a
    dead or frozen server never hangs a caller; the call then raises StoreUnavailable.

    ``pool_size`` caps MySQL connections per store (one writer, a few readers is the
    expected load). ``pool_recycle_s`` replaces idle MySQL connections before the
    server's ``wait_timeout`` silently drops them. SQLite uses one connection.
    """

    connect_timeout_s: float = 5.0
    query_timeout_s: float = 10.0
    pool_size: int = 4
    pool_recycle_s: int = 600

    def __post_init__(self) -> None:
        if not (self.connect_timeout_s > 0 and self.query_timeout_s > 0):
            raise ValueError("store timeouts must be positive")
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")

    @property
    def call_timeout_s(self) -> float:
        """The bound on one store call: may connect, then must answer."""
        return self.connect_timeout_s + self.query_timeout_s
