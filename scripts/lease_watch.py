"""One worker's lease as etcd holds it, polled: for partition tests and benchmarks.

A worker cut off from etcd cannot say when its lease went; the server can. The test
or benchmark polls ``workers/<id>`` directly (not through the cut-off worker's proxy)
to learn when the key went (the lease expired or was revoked) and each lease it was
seen on (a new one: the worker is back). Beside ``etcd_proxy.py`` for the same reason:
the e2e tests and ``benchmarks.fault_partition`` share it (one copy); it needs trio, so
it is imported from the project's venv only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import trio

POLL_S = 0.02


@dataclass
class LeaseWatch:
    """The lease of ``workers/<id>`` (``ks.worker(worker_id)``) polled every POLL_S
    through ``etcd`` (``cluster.etcd.Etcd``); instants are read from ``clock`` (trio's
    by default; a benchmark passes wall-clock milliseconds)."""

    etcd: object
    ks: object
    worker_id: str
    clock: Callable[[], float] = trio.current_time
    leases: list[tuple[float, int]] = field(default_factory=list)  # (first seen, id)
    gone_at: list[float] = field(default_factory=list)

    async def run(self) -> None:
        present = True
        while True:
            kv = await self.etcd.get(self.ks.worker(self.worker_id))  # type: ignore[attr-defined]
            now = self.clock()
            if kv is None and present:
                self.gone_at.append(now)
            elif kv is not None and (not self.leases or self.leases[-1][1] != kv.lease_id):
                self.leases.append((now, kv.lease_id))
            present = kv is not None
            await trio.sleep(POLL_S)

    async def wait_gone(self, timeout_s: float) -> float:
        """Until the key went (once); when, by ``clock``."""
        with trio.fail_after(timeout_s):
            while not self.gone_at:
                await trio.sleep(POLL_S)
        return self.gone_at[0]

    async def wait_new_lease(self, after: int, timeout_s: float) -> float:
        """Until a lease beyond the first ``after`` seen; when it was first seen."""
        with trio.fail_after(timeout_s):
            while len(self.leases) <= after:
                await trio.sleep(POLL_S)
        return self.leases[-1][0]
