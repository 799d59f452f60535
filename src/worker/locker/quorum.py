"""Whether the etcd cluster has a quorum, as this worker sees it: one state, not one
error per fire.

When a majority of the members is down, the one left answers Status but knows no
leader, and every claim would wait for one until its deadline: a storm of attempts
and of error lines, one per fire. Instead the Locker asks this watch before each claim;
while quorum is lost it claims nothing (the fires are counted, ``no_quorum``) and the
state change is logged once, each way. When a leader is back the Locker tells the
Scheduler, which catches up the fires of the outage within each job's
``startingDeadline`` (a fire's lock names its time: a fire that did run is not run
again).

A leader election (the leader died, 1-2 s with etcd's default timings) also leaves
the members without a leader for a moment: the claims' retries cover that, so quorum
counts as lost only once no leader was seen for LOST_AFTER_S.

An etcd that does not answer at all is not this state (the claims' own retries and
the Registrar's lease handle it): only "members answer, no leader" is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from cluster.etcd import Etcd, EtcdUnavailable

from worker.clock import WallClock

log = logging.getLogger(__name__)

QUORUM_POLL_S = 0.5  # a leader's return is seen within this (plus one Status call)
LOST_AFTER_S = 2.0  # no leader for this long: no election, quorum is lost


class QuorumWatch:
    """``lost_since_ms``: when this worker saw the cluster without a leader (None: it
    has one, or etcd is unreachable altogether). ``on_back(lost_since_ms)`` is awaited
    when a leader is seen again."""

    def __init__(self, etcd: Etcd, clock: WallClock,
                 on_back: Callable[[int], Awaitable[None]]) -> None:
        self._etcd = etcd
        self._clock = clock
        self._on_back = on_back
        self.lost_since_ms: int | None = None
        self._leaderless_since_ms: int | None = None

    @property
    def lost(self) -> bool:
        return self.lost_since_ms is not None

    async def judged_lost(self) -> bool:
        """Whether quorum is lost, once this watch knows: while members answer without
        a leader for less than LOST_AFTER_S yet, wait until it is judged (lost, or a
        leader or silence seen). A claim whose grace ends then is part of the outage
        (said once, by its state line) or it is not (its own error line)."""
        while self._leaderless_since_ms is not None and not self.lost:
            await trio.sleep(QUORUM_POLL_S / 5)
        return self.lost

    async def run(self) -> None:
        while True:
            try:
                has_quorum = await self._etcd.has_quorum()
            except EtcdUnavailable:
                has_quorum = None  # nobody answers: another fault, judged elsewhere
            now_ms = self._clock.now_ms()
            leaderless_ms = None if has_quorum is not False else \
                self._leaderless_since_ms if self._leaderless_since_ms is not None else now_ms
            self._leaderless_since_ms = leaderless_ms
            if leaderless_ms is not None and self.lost_since_ms is None \
                    and now_ms - leaderless_ms >= LOST_AFTER_S * 1000:
                self.lost_since_ms = leaderless_ms
                log.error("etcd: no quorum (members answer, none has a leader): this "
                          "worker stops claiming fires until a leader is back")
            elif has_quorum and self.lost_since_ms is not None:
                since_ms, self.lost_since_ms = self.lost_since_ms, None
                log.warning("etcd: quorum is back after %.1f s: claiming again; fires "
                            "missed meanwhile are caught up within their startingDeadline",
                            (self._clock.now_ms() - since_ms) / 1000)
                await self._on_back(since_ms)
            await trio.sleep(QUORUM_POLL_S)
