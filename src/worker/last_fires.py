"""``state/<name>`` for the fires whose claim does not write it: manual runs, retries,
runs claimed again after their worker died, chains.

A scheduled or catch-up fire writes the job's last fire in its claim transaction
(``claims.state_put``: one write on the hot path). The other paths are rare, and their
planned time is no time of the schedule (a manual run) or an old one (a retry, a
recovered run): writing it blindly could move the catch-up cursor backwards, and a
whole-fleet restart would then run fires again that ran already. So they merge into
the value by compare-and-set, once their claim is won: the last fire becomes theirs,
the cursor stays (``cluster.last_fire``). A conflict (another fire wrote meanwhile) is
read again; etcd down is logged, and the run goes on: the value is for catch-up and
for operators, never for exactly-once (the claim's own keys are).
"""

from __future__ import annotations

import logging

from cluster.etcd import Compare, Etcd, EtcdError, Put
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire, LastFireDecodeError

from .messages import Fire

log = logging.getLogger(__name__)

TRIES = 5  # compare-and-set attempts; each loses only to another fire of the same job


async def note_fire(etcd: Etcd, ks: Keyspace, fire: Fire, worker_id: str, now_ms: int) -> bool:
    """Merge ``fire`` into its job's ``state/`` key; False if it could not (logged)."""
    key = ks.state(fire.spec.name)
    this = (fire.planned_ms, str(fire.trigger), fire.run_id, fire.attempt, worker_id, now_ms)
    try:
        for _ in range(TRIES):
            kv = await etcd.get(key)
            old = None
            if kv is not None:
                try:
                    old = LastFire.from_bytes(kv.value)
                except LastFireDecodeError as exc:
                    log.warning("%s: %s; writing it anew", key, exc)
            new = old.after(*this) if old is not None else LastFire.first(*this)
            put = Put(key, new.to_bytes())
            if (await etcd.txn([Compare.unchanged(key, kv)], [put])).succeeded:
                return True
        log.warning("%s: not updated for run %s, %d fires of the job wrote it meanwhile",
                    key, fire.run_id, TRIES)
    except EtcdError as exc:
        log.warning("%s: not updated for run %s: %s", key, fire.run_id, exc)
    return False
