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

A busy worker's own calls prove the quorum: a read, a write or a lease grant is answered
only by a leader with its quorum (``Etcd.leader_answered_at``). While one was sent
within the last QUORUM_POLL_S the watch asks no Status (one per member each poll: with
3 members, 6 requests a second a worker, 600 at 100 workers, for nothing while claims
and marks flow). Once they stop it polls as before, and a loss it sees counts from one
poll after the last sign of a leader at the latest, as when it polled every time: the
catch-up then covers the fires since then (a fire that did run keeps its lock).
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
# How old the last sign of a leader may be, before the first poll without one, to date
# the loss by: a skipped poll's call (up to a poll old) one poll earlier, and slack.
SIGN_FRESH_S = 3 * QUORUM_POLL_S


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
        self._leader_seen_ms: int | None = None  # the last sign of a leader (wall ms)

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
            if not self._answered_lately():
                await self._poll()
            await trio.sleep(QUORUM_POLL_S)

    def _answered_lately(self) -> bool:
        """A call only a leader with its quorum answers went out within the last poll
        (then it is the last sign of a leader); never while a loss is being judged."""
        sent = self._etcd.leader_answered_at
        if sent is None or self._leaderless_since_ms is not None or self.lost:
            return False
        ago_s = trio.current_time() - sent
        if ago_s >= QUORUM_POLL_S:
            return False
        self._leader_seen_ms = self._clock.now_ms() - round(ago_s * 1000)
        return True

    async def _poll(self) -> None:
        asked_ms = self._clock.now_ms()
        try:
            has_quorum = await self._etcd.has_quorum()
        except EtcdUnavailable:
            has_quorum = None  # nobody answers: another fault, judged elsewhere
        now_ms = self._clock.now_ms()
        if has_quorum:
            self._leader_seen_ms = asked_ms
        elif has_quorum is None:  # nobody answered: no sign of a leader to date a loss by
            self._leader_seen_ms = None
        # Judged from the first poll that saw no leader: an election is not a loss.
        leaderless_ms = None if has_quorum is not False else \
            self._leaderless_since_ms if self._leaderless_since_ms is not None else now_ms
        self._leaderless_since_ms = leaderless_ms
        if leaderless_ms is not None and self.lost_since_ms is None \
                and now_ms - leaderless_ms >= LOST_AFTER_S * 1000:
            self.lost_since_ms = self._loss_began_ms(leaderless_ms)
            log.error("etcd: no quorum (members answer, none has a leader): this "
                      "worker stops claiming fires until a leader is back")
        elif has_quorum and self.lost_since_ms is not None:
            since_ms, self.lost_since_ms = self.lost_since_ms, None
            log.warning("etcd: quorum is back after %.1f s: claiming again; fires "
                        "missed meanwhile are caught up within their startingDeadline",
                        (self._clock.now_ms() - since_ms) / 1000)
            await self._on_back(since_ms)

    def _loss_began_ms(self, first_seen_ms: int) -> int:
        """The loss's time as polling every QUORUM_POLL_S would have seen it at the
        latest: one poll after the last sign of a leader (an answered call may be up to
        a poll older than the first poll without one). A sign older than SIGN_FRESH_S
        before that poll (unanswered polls between, a stalled process) dates nothing:
        then the poll's own time, as before. Never much earlier: a catch-up from long
        before the loss would find the locks of fires that ran then expired."""
        seen = self._leader_seen_ms
        if seen is None or first_seen_ms - seen > SIGN_FRESH_S * 1000:
            return first_seen_ms
        return min(first_seen_ms, seen + round(QUORUM_POLL_S * 1000))
