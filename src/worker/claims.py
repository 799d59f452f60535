"""The etcd transactions that make each fire run exactly once (DESIGN §6).

A claim is one transaction: the fire's lock key must not exist (and, for concurrency
``forbid``/``replace``, neither may the job's ``active`` guard); then the lock, the
run's ``running`` key and the guard are written together. The lock key names the
fire time and is not deleted when the run ends: it expires with a shared, rotating
lease, so a slow or skewed worker can never run the same fire a second time.
The ``running`` key and the guard live on the worker's session lease: a worker that
dies takes them with it, and whoever sees them vanish records the run as lost.
"""

from __future__ import annotations

import json
import logging

import trio

from cluster.etcd import (
    Compare,
    Delete,
    Etcd,
    EtcdError,
    EtcdUnavailable,
    Get,
    Op,
    Put,
)
from cluster.keyspace import Keyspace
from cluster.presence import RunningInfo
from cluster.store import RunTrigger

from .messages import Fire, Run

log = logging.getLogger(__name__)

GUARDED = frozenset({"forbid", "replace"})


def lock_key(ks: Keyspace, fire: Fire) -> str:
    """One key per (job, fire time, attempt); retries are fires of their own."""
    return ks.lock(fire.spec.name, fire.planned_ms, fire.attempt)


def lost_key(ks: Keyspace, info: RunningInfo) -> str:
    """Whoever creates this key records the run as lost (and applies the retry policy)."""
    return ks.lost(info.job_name, info.run_id)


def is_guarded(fire: Fire) -> bool:
    return fire.spec.concurrency in GUARDED


def running_info(fire: Fire, worker_id: str, started_ms: int) -> RunningInfo:
    return RunningInfo(fire.run_id, fire.spec.name, worker_id, fire.planned_ms,
                       fire.attempt, str(fire.trigger), started_ms)


def lock_value(fire: Fire, worker_id: str, *, skipped: bool = False) -> bytes:
    value = {"worker": worker_id, "runId": fire.run_id}
    if skipped:
        value["skipped"] = True
    return json.dumps(value, separators=(",", ":")).encode()


def claim_ops(
    ks: Keyspace, fire: Fire, worker_id: str, *, session: int, lock_lease: int, now_ms: int,
) -> tuple[list[Compare], list[Op]]:
    """Compares and success ops of the claim transaction for one fire."""
    name = fire.spec.name
    guarded = is_guarded(fire)
    compares: list[Compare] = []
    ops: list[Op] = [
        Put(ks.running(name, fire.run_id), running_info(fire, worker_id, now_ms).to_bytes(), session)
    ]
    if fire.trigger is RunTrigger.MANUAL:
        # The trigger key is the claim: exactly one worker deletes it.
        trigger = ks.trigger(name, fire.run_id)
        compares.append(Compare.version(trigger, ">", 0))
        ops.append(Delete(trigger))
    else:
        key = lock_key(ks, fire)
        compares.append(Compare.create_revision(key, "==", 0))
        ops.append(Put(key, lock_value(fire, worker_id), lock_lease))
    if fire.trigger in (RunTrigger.SCHEDULE, RunTrigger.CATCHUP):
        ops.append(Put(ks.state(name), str(fire.planned_ms)))
    if guarded:
        compares.append(Compare.create_revision(ks.active(name), "==", 0))
        ops.append(Put(ks.active(name), fire.run_id, session))
    return compares, ops


def skip_claim_ops(
    ks: Keyspace, fire: Fire, worker_id: str, *, lock_lease: int,
) -> tuple[list[Compare], list[Op]]:
    """Claim the right to record a fire as skipped: exactly one worker writes that record."""
    if fire.trigger is RunTrigger.MANUAL:
        trigger = ks.trigger(fire.spec.name, fire.run_id)
        return [Compare.version(trigger, ">", 0)], [Delete(trigger)]
    key = lock_key(ks, fire)
    return (
        [Compare.create_revision(key, "==", 0)],
        [Put(key, lock_value(fire, worker_id, skipped=True), lock_lease)],
    )


def claim_probe(ks: Keyspace, fire: Fire) -> list[Op]:
    """Failure-branch reads: was the fire taken, or only the job busy?"""
    if fire.trigger is RunTrigger.MANUAL:
        return [Get(ks.trigger(fire.spec.name, fire.run_id))]
    return [Get(lock_key(ks, fire))]


async def release(etcd: Etcd, ks: Keyspace, run: Run, *, retry_max_s: float = 5.0) -> None:
    """Delete a finished run's ``running`` key and, if it is still ours, the guard.

    Retries until etcd answers: a guard left behind would block a ``forbid`` job for
    as long as this worker lives. Gives up only when cancelled (shutdown), in which
    case the keys go with the session lease.
    """
    name, run_id = run.fire.spec.name, run.fire.run_id
    running, active = ks.running(name, run_id), ks.active(name)
    delay_s = 0.05
    while True:
        try:
            if run.guarded:
                await etcd.txn(
                    [Compare.value(active, "==", run_id)],
                    [Delete(running), Delete(active)],
                    [Delete(running)],
                )
            else:
                await etcd.delete(running)
            return
        except EtcdUnavailable as exc:
            log.warning("releasing run %s of %r: %s; retrying in %.1f s", run_id, name, exc, delay_s)
        except EtcdError as exc:
            log.error("releasing run %s of %r failed: %s", run_id, name, exc)
            return
        await trio.sleep(delay_s)
        delay_s = min(delay_s * 2, retry_max_s)
