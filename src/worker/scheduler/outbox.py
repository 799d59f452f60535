"""The Scheduler's outbox: fires (and lost runs) on their way to the Locker, forwarded by a task.

Why not send from the Scheduler's loop: the Locker answers (``Granted``, ``Denied``)
from its claim tasks, and stops reading its mailbox while ``mailbox_size`` claims are
in flight. A Scheduler that waited on a full Locker mailbox inside its loop would stop
reading the very replies those claims wait to deliver; with more than about two
mailboxes' worth of fires due at once (1000 jobs at ``0 * * * *`` on the default
sizes) the two would wait on each other for ever. So the loop only appends here, and
a task of the Scheduler's own forwards in order, waiting on the Locker as long as it
must: backpressure still delays fires, it just no longer blocks the replies.

Bound: a scheduled fire that waited here longer than the misfire grace is passed over
(``on_stale``: counted and logged as a misfire) instead of being claimed late, so a
sustained overload holds at most about grace × fire rate fires; a window
(``ClaimWindow``) goes on with its other fires. Manual, retry and
catch-up fires, fires claimed again after their worker died, lost runs and pending
retries to keep are always forwarded.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable

import trio

from cluster.store import RunTrigger

from worker.clock import WallClock
from worker.locker.messages import Claim, ClaimLost, ClaimWindow, PersistRetry
from worker.messages import Fire

log = logging.getLogger(__name__)


ToLocker = Claim | ClaimWindow | ClaimLost | PersistRetry


class ClaimOutbox:
    def __init__(self, send: Callable[[ToLocker], Awaitable[bool]], clock: WallClock, *,
                 grace_ms: int, on_stale: Callable[[Fire, int], None]) -> None:
        self._send = send
        self._clock = clock
        self._grace_ms = grace_ms
        self._on_stale = on_stale
        self._queue: collections.deque[ToLocker] = collections.deque()
        self._ready = trio.Event()  # set whenever the queue is not empty

    def __len__(self) -> int:
        """Fires (and lost runs, retries to keep) waiting: a window counts its fires."""
        return sum(len(m.fires) if isinstance(m, ClaimWindow) else 1 for m in self._queue)

    def put(self, claim: ToLocker) -> None:
        self._queue.append(claim)
        self._ready.set()

    async def forward(self) -> None:
        """Forward claims in order until cancelled (or the Locker has stopped)."""
        while True:
            if not self._queue:
                self._ready = trio.Event()
                await self._ready.wait()
            claim = self._fresh(self._queue.popleft())
            if claim is None:
                continue
            if not await self._send(claim):
                log.info("locker stopped: %d queued fires not claimed", len(self._queue) + 1)
                self._queue.clear()
                return

    def _fresh(self, claim: ToLocker) -> ToLocker | None:
        """``claim`` without its stale fires (each passed over); None if none is left."""
        if isinstance(claim, Claim):
            return None if self._passed_over(claim.fire) else claim
        if isinstance(claim, ClaimWindow):
            fires = tuple(f for f in claim.fires if not self._passed_over(f))
            if len(fires) == len(claim.fires):
                return claim
            return ClaimWindow(fires) if fires else None
        return claim

    def _passed_over(self, fire: Fire) -> bool:
        if waited_ms := self._stale_ms(fire):
            self._on_stale(fire, waited_ms)
        return waited_ms > 0

    def _stale_ms(self, fire: Fire) -> int:
        """How long a scheduled fire waited here beyond the grace; 0 if it may go."""
        waited_ms = self._clock.now_ms() - fire.fired_ms
        stale = (fire.trigger is RunTrigger.SCHEDULE and not fire.recovers
                 and waited_ms > self._grace_ms)
        return waited_ms if stale else 0
