"""The single path: the claim of one fire alone, and what its answer means.

Every fire a batch cannot take (``claims.batchable``: guarded, manual, retry,
recovered, ``catchUp: last``) or left undecided (``claim_batch``) is claimed here,
one transaction of its own (``transport``). What it does with the answer is the
Locker's claim policy: a job still running (the guard held) means a skip counted into
that run's record (``forbid``, ``worker.skips``) or taking its place (``replace``); a
claim etcd did not answer is tried again within the fire's grace (``claim_grace``),
missed after it. One attempt per call (``try_once``): between attempts the fire waits
in the Locker's due fires, not in a task.

Apart from the actor because it is one idea with many branches; it shares the
Locker's counts (``LockerStatistics``) and tells the Scheduler through it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from cluster.etcd import EtcdOutcomeUnknown, EtcdUnavailable, LeaseExpired

from worker import claims
from worker.messages import Fire, Run, SkipTally
from worker.scheduler.messages import Denied
from .claim_batch import Outcome
from .claim_grace import ClaimAttempts, ClaimGrace
from .lock_leases import LockLeases
from .quorum import QuorumWatch
from .replace import NotReplaced, Replacer
from .transport import ClaimTransport

__all__ = ["SinglePath"]

log = logging.getLogger("worker.locker.actor")  # its lines read as the Locker's


class SinglePath:
    """One fire's claim alone. ``counts``: the Locker's, added to; ``session`` and
    ``stopping`` read the Locker's state; ``tell`` tells the Scheduler (a skip)."""

    def __init__(self, transport: ClaimTransport, replacer: Replacer, lock_leases: LockLeases,
                 quorum: QuorumWatch, counts: dict[str, int], *,
                 session: Callable[[], int | None], stopping: Callable[[], bool],
                 tell: Callable[[Denied], Awaitable[None]]) -> None:
        self._transport = transport
        self._replacer = replacer
        self._lock_leases = lock_leases
        self._quorum = quorum
        self._counts = counts
        self._session = session
        self._stopping = stopping
        self._tell = tell

    async def try_once(self, fire: Fire, tries: ClaimAttempts) -> Run | float | None:
        """One claim transaction: the run; None (not ours, or given up); or how long to
        wait before the next attempt, while etcd does not answer (a member down, an
        election) until the fire's misfire grace ends; then the fire is missed, never
        claimed late. A lost answer is read back first (``read_back``): a claim that went
        in is ours (even read back after the grace: it is run, not left claimed), one
        that did not is tried again, and none can win twice (a claim creates the fire's
        lock key only if it is absent). Nothing here runs again unless an attempt fails:
        a claim that etcd answers costs what it always did.
        """
        try:
            if tries.unknown:
                match await self._transport.read_back(fire, timeout_s=tries.grace.attempt_s()):
                    case Run() as run:
                        return run
                    case Outcome.TAKEN:
                        self._counts["taken"] += 1
                        return None
                tries.unknown = False  # it did not go in
            if tries.again:
                if self._over(tries.grace):
                    return await self._missed(fire, tries.why)
                self._counts["retries"] += 1
            return await self._claim_once(fire, tries.grace.attempt_s(), again=tries.again)
        except LeaseExpired:
            log.warning("claim of %s: session lease gone; waiting for a new one", fire.run_id)
            return None
        except EtcdUnavailable as exc:  # EtcdOutcomeUnknown too
            tries.why = str(exc)
            if self._quorum.lost:  # one state, said once: no error line per fire
                self._counts["no_quorum"] += 1
                return None
            if isinstance(exc, EtcdOutcomeUnknown):
                tries.unknown = True  # read back, even past the grace: it may be ours
            elif self._over(tries.grace):
                return await self._missed(fire, tries.why)
            tries.again = True
        if self._over(tries.grace):
            return 0.0  # at once: only a read back is left
        return min(tries.backoff.failed(), tries.grace.left_s())

    def _over(self, grace: ClaimGrace) -> bool:
        return self._stopping() or grace.passed()

    async def _missed(self, fire: Fire, why: str) -> None:
        """The grace ran out. If etcd answers without a leader, wait until the quorum
        watch judges it: a fire missed to a lost quorum is counted, not said (the
        state's one line says it), and caught up after."""
        if await self._quorum.judged_lost():
            self._counts["no_quorum"] += 1
            return None
        self._counts["failed"] += 1
        log.error("job %r fire at %d not claimed within its misfire grace: %s",
                  fire.spec.name, fire.planned_ms, why)
        return None

    async def _claim_once(self, fire: Fire, timeout_s: float | None, *,
                          again: bool = False) -> Run | None:
        session = self._session()
        if session is None:
            return None
        match await self._transport.claim_once(fire, session, timeout_s=timeout_s, again=again):
            case Run() as run:
                return run
            case Outcome.TAKEN:
                self._counts["taken"] += 1
                return None
        # GUARDED: a run of the job is still going somewhere. An old fire claimed again
        # never replaces a newer run: it is skipped, as for forbid.
        if fire.spec.concurrency == "replace" and not fire.recovers:
            return await self._replace(fire, session)
        await self._skip_busy(fire, f"still running (concurrency {fire.spec.concurrency})")
        return None

    async def _skip_busy(self, fire: Fire, reason: str) -> None:
        """Skip a fire while a run of its job goes on: counted into that run's one
        record (``worker.skips``); a manual run, or a skip that finds no run to count
        into any more, is recorded on its own."""
        if claims.by_trigger_key(fire):
            await self.record_skip(fire, reason, "skipped_running")
            return
        match await self._transport.claim_busy_skip(fire):
            case SkipTally() as tally:
                self._counts["skipped"] += 1
                self._counts["skipped_running"] += 1
                await self._tell(Denied(fire, reason, record_skip=True, tally=tally))
            case Outcome.TAKEN:
                self._counts["taken"] += 1
            case _:
                await self.record_skip(fire, reason, "skipped_running")

    async def _replace(self, fire: Fire, session: int) -> Run | None:
        """Concurrency ``replace`` (``replace``): take the fire, kill the running instance."""
        match await self._replacer.replace(fire, session, await self._lock_leases.current()):
            case Run() as run:
                return run
            case NotReplaced.TAKEN:
                self._counts["taken"] += 1
            case NotReplaced.WOULD_NOT_DIE as why:
                self._counts["skipped"] += 1
                self._counts["skipped_running"] += 1
                await self._tell(Denied(fire, why.value, record_skip=True))
        return None

    async def record_skip(self, fire: Fire, reason: str, why: str) -> None:
        """Skip the fire with a record of its own; ``why``: the count it goes into."""
        if await self._transport.claim_skip(fire):
            self._counts["skipped"] += 1
            self._counts[why] += 1
            await self._tell(Denied(fire, reason, record_skip=True))
        else:
            self._counts["taken"] += 1
