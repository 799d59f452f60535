"""jobs/ → the Scheduler's plan table: a full snapshot per read, one message per change.

A read (start-up, or after the watch's history was compacted away) becomes a
``JobsSnapshot``, with the last fired times read from state/ beside it (and the jobs
whose outage a worker back before this one catches up, ``returns``), so the table
converges on etcd instead of drifting. A put becomes ``JobSaved``, or ``JobDeleted`` when
the spec is invalid (an invalid spec must not keep running its older version); a
deletion becomes ``JobDeleted``. Invalid specs are logged (operators must see them) and
counted.
"""

from __future__ import annotations

import logging

from actors import Address
from cluster.etcd import Etcd, EventType, KeyValue, PrefixSnapshot, WatchEvent
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire, LastFireDecodeError
from cluster.mirror import read_prefix
from cluster.spec import JobSpec, SpecError

from worker.scheduler.messages import JobDeleted, JobSaved, JobsSnapshot, SchedulerMsg
from .returns import caught_up_elsewhere

log = logging.getLogger(__name__)


class JobsListener:
    """The jobs/ mirror's listener; ``scheduler`` receives what it makes of it."""

    def __init__(self, etcd: Etcd, keyspace: Keyspace, scheduler: Address[SchedulerMsg],
                 worker_id: str = "") -> None:
        self._etcd = etcd
        self._ks = keyspace
        self._scheduler = scheduler
        self._worker_id = worker_id  # "": catches up every job itself (``returns``)
        self.snapshots = 0  # JobsSnapshot sent: one at start-up, one per re-read
        self.invalid_specs = 0  # job values rejected (logged)

    async def on_read(self, snapshot: PrefixSnapshot, _resumed_after: int | None) -> None:
        state = await read_prefix(self._etcd, self._ks.state_prefix)
        workers = await read_prefix(self._etcd, self._ks.workers_prefix)
        specs = tuple(spec for kv in snapshot.kvs if (spec := self._spec(kv)) is not None)
        self.snapshots += 1
        revisions = {name: kv.mod_revision for kv in state.kvs
                     if (name := self._ks.parse_state(kv.key)) is not None}
        elsewhere = (caught_up_elsewhere(self._ks, self._worker_id, workers.kvs, revisions, specs)
                     if self._worker_id else frozenset())
        msg = JobsSnapshot(specs, snapshot.revision, self._last_fired(state), elsewhere)
        await self._scheduler.tell_or_log(msg, log)

    async def on_event(self, event: WatchEvent) -> None:
        name = self._ks.name_from_job_key(event.key)
        if name is None:
            log.warning("ignoring %s: not a job key", event.key)
            return
        spec = self._spec(event.kv) if event.type is EventType.PUT else None
        msg = JobDeleted(name) if spec is None else JobSaved(spec)
        await self._scheduler.tell_or_log(msg, log)

    def _spec(self, kv: KeyValue) -> JobSpec | None:
        """The valid spec under a job key, else None (logged: operators must see it)."""
        name = self._ks.name_from_job_key(kv.key)
        if name is None:
            log.warning("ignoring %s: not a job key", kv.key)
            return None
        try:
            spec = JobSpec.from_json(kv.value)
        except SpecError as err:
            return self._reject(name, str(err))
        except Exception as exc:  # one poisoned value must not take every worker down
            log.exception("job %r: validating its spec crashed", name)
            return self._reject(name, f"validation crashed: {exc!r}")
        if spec.name != name:
            return self._reject(name, f"name: {spec.name!r} differs from its key")
        return spec

    def _reject(self, name: str, reason: str) -> None:
        self.invalid_specs += 1
        log.warning("job %r has an invalid spec, not scheduled: %s", name, reason)

    def _last_fired(self, state: PrefixSnapshot) -> dict[str, int]:
        """Each job's catch-up cursor: its latest scheduled time claimed."""
        last: dict[str, int] = {}
        for kv in state.kvs:
            name = self._ks.parse_state(kv.key)
            cursor = last_fired_of(kv.value) if name is not None else None
            if name is None or cursor is None:
                log.warning("ignoring %s = %r: no last scheduled fire", kv.key, kv.value[:40])
                continue
            last[name] = cursor
        return last


def last_fired_of(value: bytes) -> int | None:
    """The catch-up cursor of a ``state/`` value (``cluster.last_fire``), or None."""
    try:
        return LastFire.from_bytes(value).cursor_ms
    except LastFireDecodeError:
        return None
