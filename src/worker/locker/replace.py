"""Concurrency ``replace``: a fire whose job is still running takes the job's place.

The Locker's claim found the job's guard held (a run of it goes on somewhere). With
``replace`` the fire is claimed anyway, the running instance is asked to die (a
``killer`` key its Executor watches, naming the run that replaces it: it is recorded
``replaced`` with that name), and once its ``active`` key is gone, which happens only
after its whole process group is dead, this fire takes it. Each step is a compare in
etcd, so of two workers replacing at once only one goes on, and a run that will not die
keeps its place (the fire is recorded skipped).
"""

from __future__ import annotations

import enum

import trio

from cluster.etcd import Compare, Etcd, Put
from cluster.keyspace import Keyspace, encode_kill_value

from worker import claims
from worker.clock import WallClock
from worker.messages import Fire, Run


class NotReplaced(enum.Enum):
    TAKEN = "taken"  # another worker claimed the fire first
    WOULD_NOT_DIE = "previous run would not die"  # the running instance kept its place


class Replacer:
    """Takes a job's place for a fire: claim, kill the running instance, start."""

    def __init__(self, etcd: Etcd, keyspace: Keyspace, worker_id: str, clock: WallClock, *,
                 kill_grace_s: float) -> None:
        self._etcd = etcd
        self._ks = keyspace
        self._worker_id = worker_id
        self._clock = clock
        self._kill_grace_s = kill_grace_s

    async def replace(self, fire: Fire, session: int, lock_lease: int) -> Run | NotReplaced:
        compares, ops = claims.skip_claim_ops(self._ks, fire, self._worker_id, lock_lease=lock_lease)
        if not (await self._etcd.txn(compares, ops)).succeeded:
            return NotReplaced.TAKEN
        name = fire.spec.name
        active = await self._etcd.get(self._ks.active(name))
        if active is not None:
            kill = encode_kill_value(active.value.decode(), replaced_by=fire.run_id)
            await self._etcd.put(self._ks.killer(name), kill, lease_id=lock_lease)
            await self._wait_gone(self._ks.active(name))
        now_ms = self._clock.now_ms()
        running = claims.running_info(fire, self._worker_id, now_ms)
        state = claims.state_put(self._ks, fire, self._worker_id, now_ms)
        result = await self._etcd.txn(
            [Compare.create_revision(self._ks.active(name), "==", 0)],
            [Put(self._ks.running(name, fire.run_id), running.to_bytes(), session),
             Put(self._ks.active(name), fire.run_id, session),
             *([] if state is None else [state])],
        )
        if not result.succeeded:
            return NotReplaced.WOULD_NOT_DIE
        return Run(fire, session, guarded=True)

    async def _wait_gone(self, key: str) -> None:
        with trio.move_on_after(self._kill_grace_s + 2.0):
            while await self._etcd.get(key) is not None:
                await trio.sleep(0.05)
