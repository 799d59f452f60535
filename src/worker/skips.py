"""Skipped fires of a busy job, coalesced: one tally, and one record, per overlapping run.

Why: a ``forbid`` job whose run lasts an hour, on a seconds schedule, would otherwise
write 3,600 ``skipped`` records. Every fire is still skipped exactly once in the
cluster (the skip is a claim of the fire's lock key, ``claims.skip_claim_ops``), but
the same transaction also counts it into ``skipped/<name>``, a tally that names the
run holding the job's guard (``active/<name>``) and lives on that guard's lease. Any
worker may skip any fire: the tally is updated by compare-and-set on its revision, so
the count is exact whoever skips which fire. The worker that skipped a fire writes the
run's one ``skipped`` record (run id ``<run id>.skipped``) with the tally as it left
it; the store keeps the record with the highest count (``cluster.store``), so records
that reach it out of order never lower the count. The guard's release deletes the
tally with it (``claims.release_guard``).

When the guard is gone by the time of the skip (the run just ended) or the tally keeps
changing under us, the fire is recorded on its own, as before: never lost, never
counted twice.
"""

from __future__ import annotations

import hashlib

from cluster.etcd import Compare, Get, KeyValue, Op, Put
from cluster.keyspace import Keyspace
from cluster.store import RUN_ID_MAX_CHARS, RunRecord, RunStatus

from .claims import lock_key, lock_value
from .messages import Fire, SkipTally

SUFFIX = ".skipped"


def reads(ks: Keyspace, fire: Fire) -> list[Op]:
    """What a coalesced skip decides on: the fire's lock, the guard, the tally."""
    name = fire.spec.name
    return [Get(lock_key(ks, fire)), Get(ks.active(name)), Get(ks.skipped(name))]


def next_tally(guard: KeyValue, current: KeyValue | None, fire: Fire) -> SkipTally:
    """The tally after this fire: counted on, or a new one if it named another run."""
    run_id = guard.value.decode("utf-8", "replace")
    old = None if current is None else SkipTally.from_bytes(current.value)
    if old is None or old.run_id != run_id:
        return SkipTally.first(run_id, fire)
    return old.plus(fire)


def skip_ops(ks: Keyspace, fire: Fire, worker_id: str, *, lock_lease: int, guard: KeyValue,
             current: KeyValue | None, tally: SkipTally) -> tuple[list[Compare], list[Op]]:
    """Skip the fire (its lock key, as ``claims.skip_claim_ops``) and count it, if the
    same run still holds the guard and nobody counted since we read the tally."""
    name = fire.spec.name
    key = lock_key(ks, fire)
    compares = [
        Compare.create_revision(key, "==", 0),
        Compare.mod_revision(ks.active(name), "==", guard.mod_revision),
        Compare.mod_revision(ks.skipped(name), "==", 0 if current is None else current.mod_revision),
    ]
    ops: list[Op] = [
        Put(key, lock_value(fire, worker_id, skipped=True), lock_lease),
        Put(ks.skipped(name), tally.to_bytes(), guard.lease_id),
    ]
    return compares, ops


def record_run_id(run_id: str) -> str:
    """The coalesced record's run id: one per overlapping run."""
    if len(run_id) + len(SUFFIX) > RUN_ID_MAX_CHARS:
        run_id = hashlib.blake2b(run_id.encode(), digest_size=16).hexdigest()
    return run_id + SUFFIX


def tally_record(fire: Fire, worker_id: str, reason: str, tally: SkipTally) -> RunRecord:
    """The one ``skipped`` record of the fires skipped while ``tally.run_id`` ran."""
    times = "once" if tally.count == 1 else f"{tally.count} times"
    return RunRecord(
        run_id=record_run_id(tally.run_id), job_name=fire.spec.name, worker=worker_id,
        command=fire.spec.command, output="",
        err=f"skipped: {reason}: {times} while run {tally.run_id} ran",
        exit_code=None, status=RunStatus.SKIPPED, trigger=fire.trigger, attempt=fire.attempt,
        plan_time=tally.first_planned_ms, schedule_time=tally.first_fired_ms,
        start_time=None, end_time=None, skip_count=tally.count,
        first_skip_time=tally.first_planned_ms, last_skip_time=tally.last_planned_ms,
    )
