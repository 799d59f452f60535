"""The claim transport: the etcd transactions that claim a fire, alone or in a batch.

A claim is one transaction (``claims``): it wins the fire, or its failure branch tells
whether another worker holds it (``Outcome.TAKEN``) or only the job's guard stopped it
(``Outcome.GUARDED``: a run of the job goes on; what then is the Locker's policy). First
choices claim together and backups check together (``claim_batch``); whatever a batch
leaves undecided takes the single path. When an answer is lost the running key is read
back: it tells whether the claim went in. Retries, backoff and counting are the Locker's.

Deadlines: a claim's transactions and reads take ``CLAIM_ATTEMPT_S`` at most (less when
the fire's grace ends sooner: ``timeout_s``), not the adapter's default. A request that
a follower forwarded to a leader which then died is never answered: etcd waits for the
request's deadline. Cut short, it is a lost answer, read back and tried again while an
election ends (about 1-2 s with etcd's defaults), not one stall of the whole default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cluster.etcd import (
    Compare,
    Etcd,
    EtcdError,
    EtcdOutcomeUnknown,
    GetResult,
    KeyValue,
    LeaseExpired,
    Put,
    TxnResult,
)
from cluster.keyspace import Keyspace
from cluster.presence import RunningInfo

from worker import claims, outages, skips
from worker.chains import lost_chain_ops
from worker.clock import WallClock
from worker.messages import Fire, Run, SkipTally
from .claim_batch import Outcome, PendingClaim, Result, distinct_jobs
from .lock_leases import LockLeases

log = logging.getLogger(__name__)

CLAIM_ATTEMPT_S = 1.0  # a healthy claim takes milliseconds; a burst of 100 about 0.1 s
BUSY_SKIP_ATTEMPTS = 5  # tally updates lost to other workers' skips before giving up


class ClaimTransport:
    """The transactions of this worker's claims.

    ``session`` reads the Locker's current session lease (None: unsettled): a batch takes
    the one current when it goes, not when its fires were submitted.
    """

    def __init__(self, etcd: Etcd, keyspace: Keyspace, worker_id: str, clock: WallClock,
                 lock_leases: LockLeases, *, session: Callable[[], int | None]) -> None:
        self._session = session
        self._etcd = etcd
        self._ks = keyspace
        self._worker_id = worker_id
        self._clock = clock
        self._lock_leases = lock_leases
        self._owned = outages.OwnedOutages()

    async def claim_batch(self, batch: list[PendingClaim]) -> None:
        """Claim several first-choice fires in one transaction (all or none)."""
        batch = distinct_jobs(batch)
        session = self._session()
        if session is None:
            return  # unsettled: the single path decides
        fires = [p.item for p in batch]
        try:
            lock_lease = await self._lock_leases.current()
            compares, success, failure = claims.batch_claim_ops(
                self._ks, fires, self._worker_id, session=session, lock_lease=lock_lease,
                now_ms=self._clock.now_ms())
            result = await self._etcd.txn(compares, success, failure, timeout_s=CLAIM_ATTEMPT_S)
        except EtcdOutcomeUnknown:
            return _settle_all(batch, Outcome.UNKNOWN)
        except LeaseExpired:
            log.warning("batch claim of %d fires: session lease gone", len(batch))
            return _settle_all(batch, Outcome.NO_SESSION)
        except EtcdError as exc:  # unavailable, or refused: each fire retries alone
            log.warning("batch claim of %d fires failed (%s); claiming them one by one",
                        len(batch), exc)
            return
        if result.succeeded:
            for pending in batch:
                pending.settle(Run(pending.item, session, False))
            return
        for pending, probe in zip(batch, result.responses):
            if _taken(pending.item, probe):
                pending.settle(Outcome.TAKEN)

    async def check_batch(self, batch: list[PendingClaim]) -> None:
        """Backups: one read tells which fires their owner took; only the rest claim."""
        try:
            result = await self._etcd.txn([], claims.lock_reads(self._ks, [p.item for p in batch]),
                                          timeout_s=CLAIM_ATTEMPT_S)
        except EtcdError:
            return  # unsettled: the single path decides
        for pending, probe in zip(batch, result.responses):
            if _taken(pending.item, probe):
                pending.settle(Outcome.TAKEN)

    async def claim_once(self, fire: Fire, session: int, *,
                         timeout_s: float | None = CLAIM_ATTEMPT_S,
                         again: bool = False) -> Run | Outcome:
        """One claim transaction under ``session``: the run, or TAKEN, or GUARDED (raises
        EtcdError). ``again``: an earlier attempt failed, and may have gone in after all
        (a request etcd applied after its read-back was answered): a lock that names
        this run is ours."""
        outage = outages.catch_up_key(self._ks, fire)
        result = await self._claim_txn(fire, session, timeout_s, owned=outage in self._owned)
        if not result.succeeded and claims.outage_is_ours(fire, result.responses, self._worker_id):
            result = await self._claim_txn(fire, session, timeout_s, owned=True)
        if result.succeeded:
            if outage is not None and outages.owns_each(fire):
                self._owned.add(outage)
            return Run(fire, session, claims.is_guarded(fire))
        probe = result.responses[0]
        if again and self._names_this_run(fire, probe):
            return Run(fire, session, claims.is_guarded(fire))
        taken = claims.taken(fire, result.responses, self._worker_id)
        return Outcome.TAKEN if taken else Outcome.GUARDED

    async def _claim_txn(self, fire: Fire, session: int, timeout_s: float | None, *,
                         owned: bool) -> TxnResult:
        lock_lease = await self._lock_leases.current()
        compares, ops = claims.claim_ops(self._ks, fire, self._worker_id, session=session,
                                         lock_lease=lock_lease, now_ms=self._clock.now_ms(),
                                         outage_owned=owned)
        return await self._etcd.txn(compares, ops, claims.claim_probe(self._ks, fire),
                                    timeout_s=timeout_s)

    def _names_this_run(self, fire: Fire, probe: object) -> bool:
        if claims.by_trigger_key(fire) or not isinstance(probe, GetResult) or not probe.kvs:
            return False
        return probe.kvs[0].value == claims.lock_value(fire, self._worker_id)

    async def read_back(self, fire: Fire, *,
                        timeout_s: float | None = CLAIM_ATTEMPT_S) -> Run | Outcome:
        """The answer was lost: read our running key back to learn if the claim went in.

        The run if it did; TAKEN if the key is another worker's (a run id claimed again
        lives on its lease); SINGLE if it did not go in: trying again is safe, since a
        claim only creates the fire's lock key, so no two claims of a fire can both win.
        Raises EtcdUnavailable when the read gets no answer either.
        """
        session = self._session()
        kv = await self._etcd.get(self._ks.running(fire.spec.name, fire.run_id),
                                  timeout_s=timeout_s)
        if kv is None:
            return Outcome.SINGLE
        if session is None or kv.lease_id != session:
            return Outcome.TAKEN
        return Run(fire, session, claims.is_guarded(fire))

    async def claim_skip(self, fire: Fire) -> bool:
        """Claim the fire to record it skipped (nobody runs it); False: another worker has it."""
        lock_lease = await self._lock_leases.current()
        compares, ops = claims.skip_claim_ops(self._ks, fire, self._worker_id, lock_lease=lock_lease)
        return (await self._etcd.txn(compares, ops)).succeeded

    async def claim_busy_skip(self, fire: Fire) -> SkipTally | Outcome:
        """Skip a fire of a job whose run goes on, counted into that run's tally
        (``worker.skips``): the tally, or TAKEN (another worker has the fire), or SINGLE
        (no tally: the guard is gone, or the tally kept changing; record it alone)."""
        ks = self._ks
        result = await self._etcd.txn([], skips.reads(ks, fire))
        for _ in range(BUSY_SKIP_ATTEMPTS):
            lock, guard, current = (_kv(r) for r in result.responses)
            if lock is not None:
                return Outcome.TAKEN
            if guard is None:
                return Outcome.SINGLE
            tally = skips.next_tally(guard, current, fire)
            compares, ops = skips.skip_ops(ks, fire, self._worker_id,
                                           lock_lease=await self._lock_leases.current(),
                                           guard=guard, current=current, tally=tally)
            try:
                result = await self._etcd.txn(compares, ops, skips.reads(ks, fire))
            except LeaseExpired:  # the guard's lease, ending as we count: no run to count into
                return Outcome.SINGLE
            if result.succeeded:
                return tally
        return Outcome.SINGLE

    async def claim_lost(self, info: RunningInfo,
                         chains: tuple[tuple[str, str], ...] = ()) -> bool:
        """Claim the recording of a vanished run as lost; False: another worker has it.
        The triggers of the jobs chained after it go in the same transaction."""
        lock_lease = await self._lock_leases.current()
        key = claims.lost_key(self._ks, info)
        triggers = lost_chain_ops(self._ks, chains, info.job_name, info.run_id,
                                  self._clock.now_ms())
        result = await self._etcd.txn(
            [Compare.create_revision(key, "==", 0)],
            [Put(key, self._worker_id, lock_lease), *triggers],
        )
        return result.succeeded


def _kv(response: object) -> KeyValue | None:
    return response.kvs[0] if isinstance(response, GetResult) and response.kvs else None


def _taken(fire: Fire, probe: object) -> bool:
    """Did another worker claim it? (Else only the job's guard stopped us.)"""
    if not isinstance(probe, GetResult):
        return True
    if claims.by_trigger_key(fire):
        return not probe.kvs  # somebody deleted the trigger key: theirs
    return bool(probe.kvs)  # the lock key exists: theirs


def _settle_all(batch: list[PendingClaim], result: Result) -> None:
    for pending in batch:
        pending.settle(result)
