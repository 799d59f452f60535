"""The etcd transactions that make each fire run exactly once (DESIGN §6).

A claim is one transaction: the fire's lock key must not exist (and, for concurrency
``forbid``/``replace``, neither may the job's ``active`` guard); then the lock, the
run's ``running`` key and the guard are written together. The lock key names the
fire time and is not deleted when the run ends: it expires with a shared, rotating
lease, so a slow or skewed worker can never run the same fire a second time.
The ``running`` key and the guard live on the worker's session lease: a worker that
dies takes them with it, and whoever sees them vanish records the run as lost, or, if
it was still ``claimed`` (its command not committed to start, ``start_marks``), claims
the fire again under its ``lost`` key and runs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from cluster.backoff import Backoff
from cluster.etcd import (
    Compare,
    Delete,
    Etcd,
    EtcdError,
    EtcdUnavailable,
    Get,
    GetResult,
    Op,
    Put,
)
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire
from cluster.retries import RETRY_KEY_SLACK_S, PendingRetry
from cluster.presence import CLAIMED, RunningInfo
from cluster.store import RunRecord, RunStatus, RunTrigger

from .messages import Fire, Run
from .outages import catch_up_key, has_outage, outage_claim, outage_taken, owns_each

log = logging.getLogger(__name__)

GUARDED = frozenset({"forbid", "replace"})
DELETE_CHUNK = 64  # keys per transaction (etcd allows 128 operations by default)
# Records this worker writes for runs whose keys are already gone with a lease.
NOT_OURS_TO_RELEASE = frozenset({RunStatus.SKIPPED, RunStatus.LOST})


def lock_key(ks: Keyspace, fire: Fire) -> str:
    """One key per (job, fire time, attempt); retries are fires of their own. A fire
    claimed again after its worker died unstarted is claimed by the run's lost key."""
    if fire.recovers:
        return _lost(ks, fire.spec.name, fire.run_id, fire.recovers)
    return ks.lock(fire.spec.name, fire.planned_ms, fire.attempt)


def lost_key(ks: Keyspace, info: RunningInfo) -> str:
    """Whoever creates this key records the run as lost or runs it again, exactly once."""
    return _lost(ks, info.job_name, info.run_id, info.worker_id)


def _lost(ks: Keyspace, name: str, run_id: str, holder: str) -> str:
    """One key per (run, worker it vanished with): a run recovered by a worker that dies
    too can be recovered again."""
    key_id = f"{run_id}@{holder}"
    if len(key_id) > 128:  # the id limit of our keys; worker and run ids may be long
        key_id = hashlib.blake2b(key_id.encode(), digest_size=16).hexdigest()
    return ks.lost(name, key_id)


def retry_key(ks: Keyspace, fire: Fire) -> str | None:
    """A retry is claimed by deleting its ``retry/`` key (``cluster.retries``) as well as
    by its attempt's lock: whichever worker planned it, one runs it. None otherwise (and
    for a retry claimed again after its worker died: that key went with its claim)."""
    if fire.trigger is not RunTrigger.RETRY or fire.recovers:
        return None
    return ks.retry(fire.spec.name, fire.run_id)


def by_trigger_key(fire: Fire) -> bool:
    """A manual or chained run is claimed by deleting its trigger key (exactly one
    worker can); once recovered, by its lost key like any other."""
    return fire.trigger in (RunTrigger.MANUAL, RunTrigger.CHAIN) and not fire.recovers


def is_guarded(fire: Fire) -> bool:
    return fire.spec.concurrency in GUARDED


def running_info(fire: Fire, worker_id: str, started_ms: int,
                 state: str = CLAIMED) -> RunningInfo:
    return RunningInfo(fire.run_id, fire.spec.name, worker_id, fire.planned_ms,
                       fire.attempt, str(fire.trigger), started_ms, state,
                       fire.missed_fires, fire.first_missed_ms)


def lock_value(fire: Fire, worker_id: str, *, skipped: bool = False) -> bytes:
    value = {"worker": worker_id, "runId": fire.run_id}
    if skipped:
        value["skipped"] = True
    return json.dumps(value, separators=(",", ":")).encode()


def claim_ops(
    ks: Keyspace, fire: Fire, worker_id: str, *, session: int, lock_lease: int, now_ms: int,
    outage_owned: bool = False,
) -> tuple[list[Compare], list[Op]]:
    """Compares and success ops of the claim transaction for one fire. ``outage_owned``:
    this worker holds the ``catchUp: all`` outage the fire is of (``worker.outages``)."""
    name = fire.spec.name
    guarded = is_guarded(fire)
    compares: list[Compare] = []
    ops: list[Op] = [
        Put(ks.running(name, fire.run_id), running_info(fire, worker_id, now_ms).to_bytes(), session)
    ]
    if by_trigger_key(fire):
        # The trigger key is the claim: exactly one worker deletes it.
        trigger = ks.trigger(name, fire.run_id)
        compares.append(Compare.version(trigger, ">", 0))
        ops.append(Delete(trigger))
    else:
        key = lock_key(ks, fire)
        compares.append(Compare.create_revision(key, "==", 0))
        ops.append(Put(key, lock_value(fire, worker_id), lock_lease))
    if (outage := catch_up_key(ks, fire)) is not None:
        c, o = outage_claim(outage, fire, worker_id, lock_lease, owned=outage_owned,
                            value=lock_value(fire, worker_id))
        compares += c
        ops += o
    if (pending := retry_key(ks, fire)) is not None:
        compares.append(Compare.version(pending, ">", 0))
        ops.append(Delete(pending))
    if (state := state_put(ks, fire, worker_id, now_ms)) is not None:
        ops.append(state)
    if guarded:
        compares.append(Compare.create_revision(ks.active(name), "==", 0))
        ops.append(Put(ks.active(name), fire.run_id, session))
    return compares, ops


def writes_state(fire: Fire) -> bool:
    """Does this fire's claim write its job's ``state/`` (its last fire)? Scheduled and
    catch-up fires do; the others merge into it once won (``worker.last_fires``)."""
    return fire.trigger in (RunTrigger.SCHEDULE, RunTrigger.CATCHUP) and not fire.recovers


def state_put(ks: Keyspace, fire: Fire, worker_id: str, now_ms: int) -> Put | None:
    """The ``state/`` write of a claim that writes it (``writes_state``), else None."""
    if not writes_state(fire):
        return None
    last = LastFire.first(fire.planned_ms, str(fire.trigger), fire.run_id, fire.attempt,
                          worker_id, now_ms, cursor_ms=fire.last_missed_ms)
    return Put(ks.state(fire.spec.name), last.to_bytes())


def skip_claim_ops(
    ks: Keyspace, fire: Fire, worker_id: str, *, lock_lease: int,
) -> tuple[list[Compare], list[Op]]:
    """Claim the right to record a fire as skipped: exactly one worker writes that record."""
    if by_trigger_key(fire):
        trigger = ks.trigger(fire.spec.name, fire.run_id)
        return [Compare.version(trigger, ">", 0)], [Delete(trigger)]
    keys = [lock_key(ks, fire)]
    if (outage := catch_up_key(ks, fire)) is not None and not owns_each(fire):
        keys.append(outage)  # ``all``: each fire's lock is its skip (``worker.outages``)
    compares = [Compare.create_revision(key, "==", 0) for key in keys]
    ops: list[Op] = [Put(key, lock_value(fire, worker_id, skipped=True), lock_lease)
                     for key in keys]
    if (pending := retry_key(ks, fire)) is not None:
        compares.append(Compare.version(pending, ">", 0))
        ops.append(Delete(pending))
    return compares, ops


def claim_probe(ks: Keyspace, fire: Fire) -> list[Op]:
    """Failure-branch reads: was the fire taken, or only the job busy? The first is the
    fire's own key; a catch-up fire's outage key or a retry's key follows (``taken``
    reads them)."""
    if by_trigger_key(fire):
        return [Get(ks.trigger(fire.spec.name, fire.run_id))]
    extra = [key for key in (catch_up_key(ks, fire), retry_key(ks, fire)) if key is not None]
    return [Get(lock_key(ks, fire)), *(Get(key) for key in extra)]


def taken(fire: Fire, responses: Sequence[object], worker_id: str) -> bool:
    """From ``claim_probe``'s reads: did another worker claim the fire? (Else only the
    job's guard stopped us.) A lock exists, or an outage key another worker holds, or a
    trigger or retry key is gone."""
    def present(probe: object) -> bool | None:
        return bool(probe.kvs) if isinstance(probe, GetResult) else None

    found = [present(p) for p in responses]
    if None in found or not found:
        return True
    if by_trigger_key(fire):
        return not found[0]
    rest = iter(responses[1:])
    outage = (outage_taken(fire, next(rest), worker_id) if has_outage(fire) else False)
    pending = present(next(rest)) if fire.trigger is RunTrigger.RETRY and not fire.recovers else True
    return bool(found[0] or outage or not pending)


def outage_is_ours(fire: Fire, responses: Sequence[object], worker_id: str) -> bool:
    """A ``catchUp: all`` claim that tried to create its outage key failed only because
    this worker created it already: the fire's lock is free and the key names us."""
    if not has_outage(fire) or not owns_each(fire) or len(responses) < 2:
        return False
    lock = responses[0]
    return (isinstance(lock, GetResult) and not lock.kvs
            and outage_taken(fire, responses[1], worker_id) is False
            and bool(responses[1].kvs))


async def release_guard(etcd: Etcd, ks: Keyspace, run: Run, *, retry_max_s: float = 5.0) -> None:
    """At a run's end, give back the job's ``active`` guard if this run still holds it.

    Retries until etcd answers: a guard left behind would block a ``forbid`` job for
    as long as this worker lives. Gives up only when cancelled (shutdown), in which
    case the guard goes with the session lease. The ``running`` key stays until the
    run's record is durable (``release_running``). The tally of the fires skipped
    while it ran (``worker.skips``) goes with the guard: it names this run.
    """
    if not run.guarded:
        return
    name, run_id = run.fire.spec.name, run.fire.run_id
    active = ks.active(name)
    await _until_done(
        lambda: etcd.txn([Compare.value(active, "==", run_id)],
                         [Delete(active), Delete(ks.skipped(name))]),
        f"releasing the guard of run {run_id} of {name!r}", retry_max_s=retry_max_s,
    )


async def release_running(
    etcd: Etcd, ks: Keyspace, worker_id: str, records: Sequence[RunRecord],
    *, give_up_after_s: float = 5.0,
) -> None:
    """Delete the ``running`` keys of runs whose records are now durable.

    Why only then: a worker that dies between a run's end and its record reaching the
    store (or the spill file) would otherwise take the record with it, unseen. While
    the key lives, its vanishing with the lease makes a survivor record the run as
    ``lost``; a ``lost`` record never replaces a real one in the store. One
    transaction per ``DELETE_CHUNK`` keys: cheaper than a delete per run. If etcd stays
    down, the keys go with the session lease when this worker stops.
    """
    keys = [ks.running(r.job_name, r.run_id) for r in records
            if r.worker == worker_id and r.status not in NOT_OURS_TO_RELEASE]
    for start in range(0, len(keys), DELETE_CHUNK):
        chunk = keys[start:start + DELETE_CHUNK]
        with trio.move_on_after(give_up_after_s) as scope:
            await _until_done(lambda chunk=chunk: etcd.txn([], [Delete(k) for k in chunk]),
                              f"deleting {len(chunk)} running keys")
        if scope.cancelled_caught:
            log.warning("etcd did not answer: %d running keys kept until the lease ends",
                        len(chunk))


async def _until_done(call: Callable[[], Awaitable[object]], what: str,
                      *, retry_max_s: float = 5.0) -> None:
    backoff = Backoff(0.05, retry_max_s)
    while True:
        try:
            await call()
            return
        except EtcdUnavailable as exc:
            delay_s = backoff.failed()
            log.warning("%s: %s; retrying in %.1f s", what, exc, delay_s)
        except EtcdError as exc:
            log.error("%s failed: %s", what, exc)
            return
        await trio.sleep(delay_s)


def batchable(fire: Fire) -> bool:
    """May this fire's claim share a transaction with others (``claim_batch``)?

    Only unguarded fires claimed by their lock key: a manual run is claimed by its
    trigger key, a guarded one may need the forbid/replace handling of the single
    path, and a recovered one, a retry or a ``catchUp: last`` one (two keys) is rare;
    they keep it.
    """
    return (not by_trigger_key(fire) and not is_guarded(fire) and not fire.recovers
            and fire.catch_up_after_ms is None and fire.trigger is not RunTrigger.RETRY)


def batch_claim_ops(
    ks: Keyspace, fires: list[Fire], worker_id: str, *, session: int, lock_lease: int,
    now_ms: int,
) -> tuple[list[Compare], list[Op], list[Op]]:
    """One transaction claiming every fire (all or none); its failure branch reads each
    fire's lock key, in order, to tell which fires another worker holds."""
    compares: list[Compare] = []
    success: list[Op] = []
    failure: list[Op] = []
    for fire in fires:
        c, ops = claim_ops(ks, fire, worker_id, session=session, lock_lease=lock_lease,
                           now_ms=now_ms)
        compares += c
        success += ops
        failure += claim_probe(ks, fire)
    return compares, success, failure


def lock_reads(ks: Keyspace, fires: list[Fire]) -> list[Op]:
    """Read-only: each fire's lock key, in order (is it taken already?)."""
    return [Get(lock_key(ks, fire)) for fire in fires]


async def persist_retry(etcd: Etcd, ks: Keyspace, retry: PendingRetry, now_ms: int,
                        *, give_up_after_s: float = 30.0) -> bool:
    """Write a pending retry (``cluster.retries``) on a lease of its own that outlives its
    due time by ``RETRY_KEY_SLACK_S``; tried again while etcd does not answer. Writing
    it twice is harmless (create only). False if it could not be written (logged)."""
    key = ks.retry(retry.job_name, retry.run_id)
    ttl_s = max(0, (retry.due_ms - now_ms) // 1000) + RETRY_KEY_SLACK_S

    async def write() -> None:
        lease = await etcd.grant_lease(ttl_s)
        await etcd.txn([Compare.create_revision(key, "==", 0)],
                       [Put(key, retry.to_bytes(), lease.id)])

    with trio.move_on_after(give_up_after_s):
        await _until_done(write, f"writing retry {retry.attempt} of {retry.job_name!r}")
        return True
    log.error("job %r: retry %d of the fire at %d not kept: etcd did not answer for %.0f s",
              retry.job_name, retry.attempt, retry.planned_ms, give_up_after_s)
    return False
