"""The commit point of a run: its ``running`` key says ``started`` before its command may.

Why: a claim is won in etcd, and the run's process is spawned afterwards, by the worker.
A worker that died in between (SIGKILL, OOM, a crash) left a fire claimed by nobody
alive: it never ran, and survivors could only record it ``lost``. Survivors must be
able to tell "never started" (run it again) from "may have started" (record it lost,
never run twice). So every run passes through two states in etcd: ``claimed`` (the
claim) and ``started``, written here after its process is up and before the process
is told to start the command (``start_at``); with a shell other than bash, before the
process is spawned (no process can settle it then). When a worker's lease expires,
survivors read the last state of each of its runs: ``claimed`` is claimed again and
run (``Fire.recovers``); ``started`` (or ``orphaned``) is recorded ``lost``.

A process whose worker dies before telling it to start settles the run with etcd
itself (``orphan``); both it and this module write ``started`` by compare-and-set, so
etcd orders them, and a key that is gone (its lease expired) is never marked.

Marks are group-committed (``group_commit``; a run spawned ahead of its time lets its
mark wait a little for company): each is two compares (``version == 1``:
only the claim wrote the key; its lease is the run's session, so not a key claimed
again by another worker under the same run id), one put and one failure-branch read;
a batch that fails tells from its reads which runs are marked already, gone, or only
waiting for a retry.

Two ways to ask: ``mark`` waits for the answer; ``mark_soon`` only queues the mark,
and its answer is a callback in the serving task (a held run is committed there, with
no task of its own, ``executor.actor``). An undecided answer to it (RETRY, AGAIN: rare)
is the caller's to go on with, through ``mark(run, after=answer)``.

Mailbox policy: the queue is bounded (``mailbox_size``); a full one makes the marking
run wait (``mark_soon`` refuses: then ``mark``). A mark is retried while etcd is
unreachable, until it lands, its key is found gone, or its run is cancelled (killed):
the run never starts on a guess.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Protocol

import trio

from cluster.backoff import Backoff
from cluster.etcd import Compare, Etcd, EtcdError, Get, GetResult, Put
from cluster.keyspace import Keyspace
from cluster.presence import STARTED, PresenceDecodeError, RunningInfo

from worker import claims
from worker.clock import WallClock
from worker.group_commit import GroupQueue, Pending
from worker.messages import Run

log = logging.getLogger(__name__)

MAX_BATCH_MARKS = 60  # 2 compares, 1 put, 1 read each: within etcd's 128 ops per list
# A run spawned ahead of its time (``claim_lead_s``) lets its mark wait for company up
# to GATHER_MAX_S, as long as that leaves MARK_MARGIN_S for the mark and the word before
# its planned instant (a loaded loop on 2 cores may need tens of ms for them): a
# burst's marks then share one or two transactions, not dozens.
GATHER_MAX_S = 0.05
MARK_MARGIN_S = 0.1
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0
# One mark's deadline, not the adapter's (5 s): a mark forwarded to a leader that dies
# is never answered, and its run waits. Sent again, a mark that went in reads back
# ``started`` (its compare fails on version 2), so cutting it short is safe.
MARK_ATTEMPT_S = 1.0


class Mark(enum.Enum):
    STARTED = "started"  # the key says started: the command may start
    GONE = "gone"  # the key is gone (the lease expired) or not ours: never start
    RETRY = "retry"  # undecided: etcd unreachable, or its answer lost: ask again later
    AGAIN = "again"  # undecided: another mark failed the batch: ask again at once


class Marks(Protocol):
    """What the Executor needs (tests give it a fake)."""

    async def serve(self) -> None: ...

    async def mark(self, run: Run, after: Mark | None = None) -> bool: ...

    def mark_soon(self, run: Run, on_marked: Callable[[Mark], None]) -> Pending[Run, Mark]: ...


class StartMarks:
    def __init__(self, etcd: Etcd, ks: Keyspace, worker_id: str, clock: WallClock, *,
                 size: int) -> None:
        self._etcd = etcd
        self._ks = ks
        self._worker_id = worker_id
        self._clock = clock
        self._queue = GroupQueue[Run, Mark](size, unsettled=Mark.RETRY,
                                            max_batch=MAX_BATCH_MARKS, patience=self._patience)

    def _patience(self, run: Run) -> float:
        ahead_s = (run.fire.planned_ms - self._clock.now_ms()) / 1000
        return min(ahead_s - MARK_MARGIN_S, GATHER_MAX_S)

    async def serve(self) -> None:
        """Send the marks in batches until cancelled."""
        await self._queue.serve(self._send)

    async def mark(self, run: Run, after: Mark | None = None) -> bool:
        """Mark ``run`` started; False if its key is gone. Retries until it knows.

        ``after``: the undecided answer (RETRY or AGAIN) of the attempt ``mark_soon``
        made: the retries go on from it as if this loop had made that attempt.
        """
        backoff = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
        answer = after
        while True:
            if answer is Mark.RETRY:
                await trio.sleep(backoff.failed())
            match answer := await self._queue.submit(run):
                case Mark.STARTED:
                    return True
                case Mark.GONE:
                    return False

    def mark_soon(self, run: Run, on_marked: Callable[[Mark], None]) -> Pending[Run, Mark]:
        """One attempt at marking ``run``, queued without waiting: ``on_marked`` gets its
        answer in the serving task, and must neither block nor raise. ``cancel()`` the
        result when the run will never start (killed, ended): ``on_marked`` is then never
        called. Raises ``trio.WouldBlock`` if the queue is full."""
        return self._queue.submit_nowait(run, on_marked)

    async def _send(self, batch: list[Pending[Run, Mark]]) -> None:
        now_ms = self._clock.now_ms()
        compares: list[Compare] = []
        success: list[Put] = []
        failure: list[Get] = []
        for pending in batch:
            run = pending.item
            key = self._ks.running(run.fire.spec.name, run.fire.run_id)
            info = claims.running_info(run.fire, self._worker_id, now_ms, STARTED)
            # Only the claim wrote it, on our session: not a key claimed again elsewhere.
            compares += [Compare.version(key, "==", 1), Compare.lease(key, "==", run.session_lease)]
            success.append(Put(key, info.to_bytes(), run.session_lease))
            failure.append(Get(key))
        try:
            result = await self._etcd.txn(compares, success, failure, timeout_s=MARK_ATTEMPT_S)
        except EtcdError as exc:  # unreachable, answer lost, lease gone: ask again
            log.warning("marking %d runs started: %s; retrying", len(batch), exc)
            return
        if result.succeeded:
            for pending in batch:
                pending.settle(Mark.STARTED)
            return
        for pending, probe in zip(batch, result.responses):
            pending.settle(self._state(pending.item, probe))

    def _state(self, run: Run, probe: object) -> Mark:
        if not isinstance(probe, GetResult) or not probe.kvs:
            return Mark.GONE
        kv = probe.kvs[0]
        try:
            info = RunningInfo.from_bytes(kv.value)
        except PresenceDecodeError:
            return Mark.GONE
        if info.worker_id != self._worker_id or kv.lease_id != run.session_lease:
            return Mark.GONE  # vanished and claimed again (elsewhere, or by a new session)
        if kv.version > 1:  # marked by an earlier try, or by its process (``orphan``)
            return Mark.STARTED if info.started else Mark.GONE
        return Mark.AGAIN  # still claimed: another mark failed the batch
