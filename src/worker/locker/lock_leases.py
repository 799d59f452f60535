"""The one lease every lock key of this worker is put on, replaced every ``ttl_s / 3``.

Why not a lease per fire: a grant is an etcd round trip, and a burst of fires would pay
one each. Why not the session lease: a lock key must outlive a run (it fences the fire
against a second claim), and the session lease dies with the worker.
"""

from __future__ import annotations

import trio

from cluster.etcd import Etcd

# A grant whose answer is lost is sent again: the lost lease, if any, expires unused.
# Cut short like the claims it serves (``transport.CLAIM_ATTEMPT_S``): during an election
# a grant forwarded to the dead leader is never answered.
GRANT_TIMEOUT_S = 1.0


class LockLeases:
    """Lock keys share one lease, replaced every ``ttl_s / 3``: never a lease per fire.

    A lock key therefore lives between 2/3 and all of ``ttl_s`` (kept above the largest
    tolerated clock skew), long enough that no worker can claim the same fire again.
    """

    def __init__(self, etcd: Etcd, ttl_s: int) -> None:
        self._etcd = etcd
        self._ttl_s = ttl_s
        self._lease: int | None = None
        self._granted_at = 0.0
        self._lock = trio.Lock()

    async def current(self) -> int:
        if self._fresh():
            return self._lease  # type: ignore[return-value]  # _fresh() checked it
        async with self._lock:
            if not self._fresh():
                self._lease = (await self._etcd.grant_lease(
                    self._ttl_s, timeout_s=GRANT_TIMEOUT_S)).id
                self._granted_at = trio.current_time()
        return self._lease  # type: ignore[return-value]

    def _fresh(self) -> bool:
        return self._lease is not None and trio.current_time() - self._granted_at < self._ttl_s / 3
