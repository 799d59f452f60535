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
sustained overload holds at most about grace × fire rate fires. Manual, retry and
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
from worker.locker.messages import Claim, ClaimLost, PersistRetry
from worker.messages import Fire

log = logging.getLogger(__name__)


class ClaimOutbox:
    def __init__(self, send: Callable[[Claim | ClaimLost | PersistRetry], Awaitable[bool]], clock: WallClock, *,
                 grace_ms: int, on_stale: Callable[[Fire, int], None]) -> None:
        self._send = send
        self._clock = clock
        self._grace_ms = grace_ms
        self._on_stale = on_stale
        self._queue: collections.deque[Claim | ClaimLost | PersistRetry] = collections.deque()
        self._ready = trio.Event()  # set whenever the queue is not empty

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, claim: Claim | ClaimLost | PersistRetry) -> None:
        self._queue.append(claim)
        self._ready.set()

    async def forward(self) -> None:
        """Forward claims in order until cancelled (or the Locker has stopped)."""
        while True:
            if not self._queue:
                self._ready = trio.Event()
                await self._ready.wait()
            claim = self._queue.popleft()
            if isinstance(claim, Claim) and (waited_ms := self._stale_ms(claim.fire)):
                self._on_stale(claim.fire, waited_ms)
                continue
            if not await self._send(claim):
                log.info("locker stopped: %d queued fires not claimed", len(self._queue) + 1)
                self._queue.clear()
                return

    def _stale_ms(self, fire: Fire) -> int:
        """How long a scheduled fire waited here beyond the grace; 0 if it may go."""
        waited_ms = self._clock.now_ms() - fire.fired_ms
        stale = (fire.trigger is RunTrigger.SCHEDULE and not fire.recovers
                 and waited_ms > self._grace_ms)
        return waited_ms if stale else 0
