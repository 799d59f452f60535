"""killer/, trigger/ and retry/ → requests to kill or run: kills to the Executor, run-nows
and pending retries to the Scheduler.

killer/: a put → ``KillRun`` (``replaced`` when the request names the run that
replaces the killed one, else ``killed``). Keys present at start-up are old news (they concern runs
that began before this worker). trigger/: a creation → ``TriggerRequested``, keys
present at start-up included (a run-now asked while no worker watched is not lost); a
chained run's key names its upstream run (``worker.chains``).
After a compaction, kill keys written and trigger keys created in the gap are still
delivered: their revisions tell. retry/: every key read and every creation →
``RetryRequested`` (the Scheduler keeps each once; its claim deletes the key).

Shards on (``worker.shards``): retries go to the Scheduler only for the jobs this
worker serves, run-nows also for a job of its own slots it has not seen yet (its put
may come after the request: the Scheduler keeps it a while for the job to come, and
drops it at once if the job turns out to be served elsewhere). Whether a job is served
elsewhere is known without asking etcd (``ShardState.elsewhere``), so a run-now costs
the workers that do not serve it nothing. Those of a job it gains are read again
(``replay``): they were created before it served it.
"""

from __future__ import annotations

import logging

from actors import Address
from cluster.etcd import EventType, KeyValue, PrefixSnapshot, WatchEvent
from cluster.keyspace import KillRequest, Keyspace, KillValueError, parse_kill_value
from cluster.retries import PendingRetry, PendingRetryDecodeError
from cluster.store import RunStatus

from worker.chains import parse_upstream
from worker.clock import WallClock
from worker.executor.messages import ExecutorMsg, KillRun
from worker.scheduler.messages import RetryRequested, SchedulerMsg, TriggerRequested
from worker.shards import ShardState

log = logging.getLogger(__name__)


def kill_message(name: str, request: KillRequest) -> KillRun:
    """The Executor's order for a kill request: a run killed so that a newer fire of its
    ``concurrency: replace`` job takes its place ends ``replaced``, not ``killed`` (it is
    no failure of the job); its record's note names the run that replaced it."""
    if request.replaced_by is None:
        return KillRun(name, request.run_id, RunStatus.KILLED, "kill requested")
    return KillRun(name, request.run_id, RunStatus.REPLACED,
                   f"replaced by run {request.replaced_by} (concurrency replace)")


class KillsListener:
    """The killer/ mirror's listener; ``executor`` receives the kills."""

    def __init__(self, keyspace: Keyspace, executor: Address[ExecutorMsg]) -> None:
        self._ks = keyspace
        self._executor = executor

    async def on_read(self, snapshot: PrefixSnapshot, resumed_after: int | None) -> None:
        if resumed_after is None:
            return  # start-up: these concern runs that began before this worker
        for kv in snapshot.kvs:
            if kv.mod_revision > resumed_after:  # written during the compaction gap
                await self._kill(kv)

    async def on_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT:
            await self._kill(event.kv)

    async def _kill(self, kv: KeyValue) -> None:
        name = self._ks.parse_killer(kv.key)
        if name is None:
            log.warning("ignoring %s: not a kill key", kv.key)
            return
        try:
            request = parse_kill_value(kv.value)
        except KillValueError as err:
            log.warning("job %r: ignoring kill request: %s", name, err)
            return
        msg = kill_message(name, request)
        await self._executor.tell_or_log(msg, log)


class TriggersListener:
    """The trigger/ mirror's listener; ``scheduler`` receives the run-now requests."""

    def __init__(self, keyspace: Keyspace, clock: WallClock,
                 scheduler: Address[SchedulerMsg], shards: ShardState | None = None) -> None:
        self._shards = shards
        self._ks = keyspace
        self._clock = clock
        self._scheduler = scheduler

    async def on_read(self, snapshot: PrefixSnapshot, resumed_after: int | None) -> None:
        for kv in snapshot.kvs:
            if resumed_after is None or kv.create_revision > resumed_after:
                await self._trigger(kv)

    async def on_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT and event.kv.version == 1:  # created, not rewritten
            await self._trigger(event.kv)

    async def replay(self, snapshot: PrefixSnapshot, names: frozenset[str]) -> None:
        """The pending run-nows of ``names`` (jobs this worker just gained)."""
        for kv in snapshot.kvs:
            parsed = self._ks.parse_trigger(kv.key)
            if parsed is not None and parsed[0] in names:
                await self._trigger(kv)

    async def _trigger(self, kv: KeyValue) -> None:
        parsed = self._ks.parse_trigger(kv.key)
        if parsed is None:
            log.warning("ignoring %s: not a trigger key", kv.key)
            return
        name, run_id = parsed
        if self._shards is not None and self._shards.elsewhere(name):
            return  # its servers claim it (module doc)
        msg = TriggerRequested(name, run_id, self._clock.now_ms(), parse_upstream(kv.value))
        await self._scheduler.tell_or_log(msg, log)


class RetriesListener:
    """The retry/ mirror's listener; ``scheduler`` receives the pending retries."""

    def __init__(self, keyspace: Keyspace, scheduler: Address[SchedulerMsg],
                 shards: ShardState | None = None) -> None:
        self._ks = keyspace
        self._scheduler = scheduler
        self._shards = shards

    async def on_read(self, snapshot: PrefixSnapshot, _resumed_after: int | None) -> None:
        for kv in snapshot.kvs:  # the Scheduler ignores those it has already
            await self._retry(kv)

    async def replay(self, snapshot: PrefixSnapshot, names: frozenset[str]) -> None:
        """The pending retries of ``names`` (jobs this worker just gained)."""
        for kv in snapshot.kvs:
            parsed = self._ks.parse_retry(kv.key)
            if parsed is not None and parsed[0] in names:
                await self._retry(kv)

    async def on_event(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT and event.kv.version == 1:
            await self._retry(event.kv)

    async def _retry(self, kv: KeyValue) -> None:
        parsed = self._ks.parse_retry(kv.key)
        if parsed is None:
            log.warning("ignoring %s: not a retry key", kv.key)
            return
        shards = self._shards
        if shards is not None and shards.on and parsed[0] not in shards.served:
            return  # its servers claim it
        try:
            retry = PendingRetry.from_bytes(*parsed, kv.value)
        except PendingRetryDecodeError as err:
            log.warning("ignoring %s: %s", kv.key, err)
            return
        await self._scheduler.tell_or_log(RetryRequested(retry), log)
