"""The JobManager: every write the master makes to etcd, and the job reads it serves.

Keys (DESIGN §4, docs/api.md "etcd writes"):

    save, pause, resume  jobs/<name>            a transaction on the previous mod_revision
                                                (or create_revision == 0 for a new job)
    delete               jobs/<name>            deleted the same way; workers kill its runs
    kill                 killer/<name>          {"runId": id} or {} on a 30 s lease
    run now              trigger/<name>/<id>    {"requestedAt": ms} on a 60 s lease
    every one of these   audit/<entry_id>       its audit entry (who, when, what), put in
                                                the SAME transaction: no change without
                                                its entry, even with the run store down

Saving never resets a schedule: an existing job keeps its ``createdAt`` (the ``@every``
anchor), whatever the client sent; a new job gets the client's ``createdAt`` or now.
A transaction that loses a race re-reads and tries again; after SAVE_ATTEMPTS losses
in a row the client gets 409. A write whose answer was lost (EtcdOutcomeUnknown) is
read back: if its audit entry is there, the change landed with it.

Kill and run-now are guarded by ``create_revision(jobs/<name>) > 0`` in the same
transaction, so they are never written for a job that does not exist.

Lists (the list, a page, the dashboard's counts, a job's ``downstream``) take the jobs
from the ``JobCache`` (``job_cache``: never older than the request), or read the range
while it cannot say it is current.

A plain service object, not an actor: it holds no state a request could change (only
the ``JobCache``, which its watch changes, and the ``stored_jobs.JobDecoder``: the
decoded specs of the last full read, and the log-once set of invalid jobs), so each
request runs in its caller's task, under its caller's deadline. At most CONCURRENCY
requests talk to etcd at once (a capacity limiter); beyond that callers wait for a
slot within their own deadlines (backpressure, never a drop). An etcd error of any
request counts in ``etcd_errors_total``. Graceful stop needs nothing of its own:
requests live in the HTTP server's tasks, which get their grace before anything else
stops.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar, TypeVarTuple

import trio

from cluster.etcd import (
    Compare,
    Delete,
    Etcd,
    EtcdError,
    EtcdNoQuorum,
    EtcdOutcomeUnknown,
    EtcdUnavailable,
    Put,
)
from cluster.keyspace import encode_kill_value
from cluster.presence import PresenceDecodeError, RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import AuditAction, AuditEntry, InvalidAuditEntry

from .audit import Author, new_entry
from .chains import downstream_map, upstream_guards
from .context import MasterContext
from .job_cache import CachedJobs, JobCache
from .job_counts import JobCounts
from .stored_jobs import JobDecoder, StoredJob
from .errors import EditConflict, JobNotFound
from .views import JobView, SaveOutcome

__all__ = ["JobManager", "JobSnapshot", "StoredJob"]

log = logging.getLogger(__name__)

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

CONCURRENCY = 32  # requests in flight; the etcd adapter bounds its threads on its own
SAVE_ATTEMPTS = 3
KILL_TTL_S = 30
TRIGGER_TTL_S = 60
REVOKE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class JobSnapshot:
    """One read of every job (sorted by name), the runs going and the live workers:
    ``view`` makes a job's JobView from it, as the list shows it."""

    specs: list[JobSpec]
    running: dict[str, tuple[RunningInfo, ...]]
    fleet: list[Mapping[str, str]]
    downstream: dict[str, tuple[JobSpec, ...]]
    now_ms: int

    def view(self, spec: JobSpec) -> JobView:
        return JobView.of(spec, self.now_ms, self.running.get(spec.name, ()),
                          self.downstream.get(spec.name, ()), self.fleet)


class JobManager:
    """Every etcd request of the master; the public methods are its requests."""

    def __init__(self, ctx: MasterContext, etcd: Etcd) -> None:
        self._ctx = ctx
        self._ks = ctx.keyspace
        self._etcd = etcd
        self._slots = trio.CapacityLimiter(CONCURRENCY)
        self._decoder = JobDecoder(ctx.keyspace)
        self.cache = JobCache(ctx.keyspace, report=self._decoder.report_invalid)

    @property
    def in_flight(self) -> int:
        return self._slots.borrowed_tokens

    async def list_jobs(self) -> list[JobView]:
        return await self._request(self._list)

    async def snapshot(self) -> JobSnapshot:
        """Every valid job, with what its views need, for a list that views only the
        jobs it shows (``job_page``: 10,000 jobs, a page of 100)."""
        return await self._request(self._snapshot)

    async def get(self, name: str) -> JobView:
        return await self._request(self._view, name)

    async def save(self, spec: JobSpec, by: Author) -> SaveOutcome:
        """``spec`` validated; its created_at_ms as the client sent it (kept only for a
        new job). Every change is written with its audit entry naming ``by``."""
        return await self._request(self._save, spec, by)

    async def delete(self, name: str, by: Author) -> dict[str, Any]:
        """Returns the deleted document."""
        return await self._request(self._delete, name, by)

    async def kill(self, name: str, run_id: str | None, by: Author) -> None:
        """``run_id`` None: every run of the job."""
        await self._request(self._kill, name, run_id, by)

    async def run_now(self, name: str, by: Author) -> str:
        """Returns the new run's id."""
        return await self._request(self._run_now, name, by)

    async def set_paused(self, name: str, paused: bool, by: Author) -> JobView:
        return await self._request(self._set_paused, name, paused, by)

    async def counts(self) -> JobCounts:
        """Jobs, paused jobs and runs going now, for the dashboard (``job_counts``)."""
        return await self._request(self._counts)

    async def check_etcd(self) -> None:
        """For /healthz: a cluster without quorum is named as such (EtcdNoQuorum),
        before a read that would only time out. Status unanswered proves nothing (a
        member may refuse it): the read decides then."""
        try:
            await self._request(self._etcd.check_quorum)
        except EtcdNoQuorum:
            raise
        except EtcdUnavailable:
            pass
        await self._request(self._etcd.get, self._ks.jobs_prefix)

    async def pending_audit(self) -> list[AuditEntry]:
        """The audit entries still in etcd (not yet moved to the run store), oldest first."""
        return await self._request(self._pending_audit)

    async def _request(self, fn: Callable[[*Ts], Awaitable[R]], *args: *Ts) -> R:
        """Run one request in a free slot (wait for one), counting etcd errors."""
        async with self._slots:
            try:
                return await fn(*args)
            except EtcdError:
                self._ctx.metrics.etcd_errors.inc()
                raise

    async def is_running(self, run_id: str) -> bool:
        """Whether a ``running/`` key (of any job) names the run: claimed or going on."""
        running = await self._request(self._running)
        return any(info.run_id == run_id for infos in running.values() for info in infos)

    # -- reads --------------------------------------------------------------------------

    async def _read(self, name: str) -> StoredJob | None:
        kv = await self._etcd.get(self._ks.job(name))
        return None if kv is None else StoredJob.decode(name, kv)

    async def _running(self, name: str | None = None) -> dict[str, tuple[RunningInfo, ...]]:
        """Runs in progress (running/ keys), by job name."""
        snapshot = await self._etcd.get_prefix(self._ks.running_prefix(name))
        runs: dict[str, list[RunningInfo]] = {}
        for kv in snapshot.kvs:
            parsed = self._ks.parse_running(kv.key)
            if parsed is None:
                continue
            try:
                info = RunningInfo.from_bytes(kv.value)
            except PresenceDecodeError as exc:
                log.debug("ignoring %s: %s", kv.key, exc)
                continue
            runs.setdefault(parsed[0], []).append(info)
        return {job: tuple(infos) for job, infos in runs.items()}

    async def _fleet(self) -> list[Mapping[str, str]]:
        """The live workers' labels (workers/ keys): who could run a job now."""
        fleet = []
        for kv in (await self._etcd.get_prefix(self._ks.workers_prefix)).kvs:
            try:
                fleet.append(WorkerInfo.from_bytes(kv.value).labels)
            except PresenceDecodeError as exc:
                log.debug("ignoring %s: %s", kv.key, exc)
        return fleet

    async def _list(self) -> list[JobView]:
        snapshot = await self._snapshot()
        return [snapshot.view(spec) for spec in snapshot.specs]

    async def _snapshot(self) -> JobSnapshot:
        jobs = await self._jobs()
        running = await self._running()
        fleet = await self._fleet()
        return JobSnapshot(jobs.specs, running, fleet, jobs.downstream, self._ctx.clock())

    async def _jobs(self) -> CachedJobs:
        """Every valid job, sorted by name: from the cache once it is as current as
        etcd is now (``JobCache.current``), else read from etcd."""
        if self.cache.synced:
            stamp = await self._etcd.stamp_prefix(self._ks.jobs_prefix)
            cached = await self.cache.current(stamp)
            if cached is not None:
                self._ctx.metrics.job_list_reads.labels("cache").inc()
                return cached
        self._ctx.metrics.job_list_reads.labels("etcd").inc()
        read = await self._etcd.get_prefix(self._ks.jobs_prefix)
        specs = []
        for stored in self._decoder.decode_all(read.kvs):
            if stored.spec is None:
                self._decoder.report_invalid(stored)
                continue
            specs.append(stored.spec)
        # sorted by name: etcd returns a prefix sorted by key
        return CachedJobs(specs, downstream_map(specs))

    async def _counts(self) -> JobCounts:
        jobs = await self._jobs()
        running = await self._etcd.get_prefix(self._ks.running_prefix())
        return JobCounts.of(jobs.specs, sum(1 for kv in running.kvs
                                            if self._ks.parse_running(kv.key) is not None))

    async def _view(self, name: str, spec: JobSpec | None = None) -> JobView:
        if spec is None:
            stored = await self._read(name)
            if stored is None:
                raise JobNotFound(name)
            spec = stored.valid()
        running = await self._running(name)
        downstream = (await self._jobs()).downstream
        fleet = await self._fleet()
        return JobView.of(spec, self._ctx.clock(), running.get(name, ()),
                          downstream.get(name, ()), fleet)

    async def _pending_audit(self) -> list[AuditEntry]:
        entries = []
        for kv in (await self._etcd.get_prefix(self._ks.audit_prefix)).kvs:
            try:
                entries.append(AuditEntry.from_bytes(kv.value))
            except InvalidAuditEntry as exc:
                log.debug("ignoring %s: %s", kv.key, exc)
        return entries

    # -- writes -------------------------------------------------------------------------

    def _audit(self, by: Author, action: AuditAction, name: str,
               change: dict[str, Any]) -> tuple[Put, str]:
        """The audit entry's put, to go into the change's own transaction, and its key."""
        entry = new_entry(by, action, name, change, self._ctx.clock())
        key = self._ks.audit(entry.entry_id)
        return Put(key, entry.to_bytes()), key

    async def _commit(self, guards: list[Compare], ops: list[Put | Delete],
                      audit: tuple[Put, str]) -> bool:
        """Run the change and its audit entry in one transaction; True if it landed.

        An answer lost on the way back (EtcdOutcomeUnknown) is settled by reading the
        entry's key: it exists if and only if the transaction ran. If it did not, the
        EtcdOutcomeUnknown is raised again (the guard may have held: try again).
        """
        put, key = audit
        try:
            result = await self._etcd.txn(guards, [*ops, put])
        except EtcdOutcomeUnknown:
            if await self._etcd.get(key) is None:
                raise
            landed = True
        else:
            landed = result.succeeded
        if landed:
            self._ctx.metrics.audit_written.inc()
        return landed

    async def _write(self, stored: StoredJob | None, new: JobSpec,
                     audit: tuple[Put, str]) -> bool:
        """Put ``new`` if jobs/<name> is still what we read (and the jobs upstream of
        it too); False if one changed."""
        key = self._ks.job(new.name)
        if stored is None:
            guard = Compare.create_revision(key, "==", 0)
        else:
            guard = Compare.mod_revision(key, "==", stored.kv.mod_revision)
        guards = [guard, *await upstream_guards(new, self._read, self._ks.job)]
        try:
            return await self._commit(guards, [Put(key, new.to_bytes())], audit)
        except EtcdOutcomeUnknown:
            return False  # not landed: read again and retry

    async def _save(self, spec: JobSpec, by: Author) -> SaveOutcome:
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._read(spec.name)
            previous = None if stored is None else stored.spec
            if previous is not None:
                created_at = previous.created_at_ms  # the @every anchor never moves
            elif spec.created_at_ms is not None:
                created_at = spec.created_at_ms  # a new job may bring its anchor (a restore)
            else:
                created_at = self._ctx.clock()
            new = spec.with_created_at(created_at)
            audit = self._audit(by, AuditAction.PUT, new.name,
                                {"created": stored is None, "spec": new.to_json()})
            if await self._write(stored, new, audit):
                self._ctx.metrics.job_saves.labels("created" if stored is None else "updated").inc()
                return SaveOutcome(await self._view(new.name, new), previous, stored is None)
        raise EditConflict(spec.name, SAVE_ATTEMPTS)

    async def _set_paused(self, name: str, paused: bool, by: Author) -> JobView:
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._read(name)
            if stored is None:
                raise JobNotFound(name)
            spec = stored.valid()
            if spec.paused == paused:
                return await self._view(name, spec)
            new = replace(spec, paused=paused)
            action = AuditAction.PAUSE if paused else AuditAction.RESUME
            if await self._write(stored, new, self._audit(by, action, name, {})):
                self._ctx.metrics.job_saves.labels("paused" if paused else "resumed").inc()
                return await self._view(name, new)
        raise EditConflict(name, SAVE_ATTEMPTS)

    async def _delete(self, name: str, by: Author) -> dict[str, Any]:
        key = self._ks.job(name)
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._read(name)
            if stored is None:
                raise JobNotFound(name)
            guard = Compare.mod_revision(key, "==", stored.kv.mod_revision)
            audit = self._audit(by, AuditAction.DELETE, name, {"spec": stored.document()})
            try:
                if await self._commit([guard], [Delete(key)], audit):
                    await self._drop_triggers(name)
                    return stored.document()
            except EtcdOutcomeUnknown:
                continue  # not landed: read again and retry
        raise EditConflict(name, SAVE_ATTEMPTS)

    async def _drop_triggers(self, name: str) -> None:
        """A deleted job's pending run requests: chained runs' have no lease, and no
        worker would ever take them. Best effort: a failure only leaves them there."""
        try:
            await self._etcd.delete_prefix(self._ks.trigger_prefix_of(name))
        except EtcdError as exc:
            log.warning("job %r deleted; its pending run requests stay: %s", name, exc)

    async def _put_if_job_exists(self, name: str, key: str, value: bytes, ttl_s: int,
                                 audit: tuple[Put, str]) -> None:
        """Put ``key`` on a fresh lease (its audit entry on none), in one transaction
        with "the job exists"."""
        lease = await self._etcd.grant_lease(ttl_s)
        exists = Compare.create_revision(self._ks.job(name), ">", 0)
        if not await self._commit([exists], [Put(key, value, lease.id)], audit):
            with trio.move_on_after(REVOKE_TIMEOUT_S):
                try:
                    await self._etcd.revoke_lease(lease.id)
                except EtcdError:
                    pass  # it holds nothing and expires by itself
            raise JobNotFound(name)

    async def _kill(self, name: str, run_id: str | None, by: Author) -> None:
        audit = self._audit(by, AuditAction.KILL, name, {"runId": run_id})
        await self._put_if_job_exists(name, self._ks.killer(name), encode_kill_value(run_id),
                                      KILL_TTL_S, audit)

    async def _run_now(self, name: str, by: Author) -> str:
        run_id = uuid.uuid4().hex  # the workers' run id shape
        value = json.dumps({"requestedAt": self._ctx.clock()}).encode()
        audit = self._audit(by, AuditAction.RUN, name, {"runId": run_id})
        await self._put_if_job_exists(name, self._ks.trigger(name, run_id), value,
                                      TRIGGER_TTL_S, audit)
        return run_id
