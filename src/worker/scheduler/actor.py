"""The Scheduler: turns the plan table into fires, and run outcomes into retries.

It sleeps exactly until the earliest fire is due (plan table or pending retry), or until
a message arrives; it never scans the table and never does I/O itself. A scheduled fire
of a job with concurrency ``allow`` is due ``claim_lead_s`` before its time (see
``plan``; longer while claims take longer, ``worker.claim_lead``, read at each wake-up):
its claim, an etcd transaction of milliseconds (more in a burst), is settled when the
time comes, and the command starts at the planned instant, never before (the Executor,
``start_at``). The ``allow`` fires due soon after come with it, a window claimed
together (``plan``: a lead, or up to a second while it holds fewer than
``WINDOW_MIN_FIRES``), so a fire may be handed over up to a lead plus a second ahead;
the window goes to the Locker as one message (``ClaimWindow``), a lone fire as a
``Claim``. An edit, pause or kill of the job within that window meets a fire already
claimed: edits and pauses apply from the next fire; a kill stops it before its command
starts. Retries, catch-up and manual runs are due at once. Policy lives here and only here: pause,
catch-up after an outage (``catch_up``), misfires beyond the grace, retries with backoff
(kept in etcd by the Locker, ``cluster.retries``: every worker that serves its job plans
it), and what is recorded for skipped or lost runs (``records``); and chains: each fire
it hands over carries the jobs chained after its job (``worker.chains.ChainIndex``), and
a trigger naming an upstream run becomes a ``chain`` run. Claims, processes and storage
belong to the Locker, Executor and LogSink. Shards: only the jobs its worker serves are
planned (``plan.hand_over``).

In: the jobs from the JobWatcher (``JobsSnapshot``, ``JobSaved``, ``JobDeleted``,
``TriggerRequested``, ``RetryRequested``, ``RunVanished``), claim outcomes from the
Locker (``Granted``, ``GrantedBatch``, ``Denied``, ``LostClaimed``) and ``QuorumBack``
(catch up an etcd outage), ``RunEnded`` from the Executor. Out: ``Claim``,
``ClaimWindow``, ``ClaimLost`` and ``PersistRetry`` to the Locker, ``StartRun`` and
``KillRun`` to the Executor, ``Write`` (skipped and lost records) to the LogSink. Firing
is the runtime's timer (``timer_deadline``/``on_timer``): a due fire goes before queued
messages.

Mailbox: bounded (``mailbox_size``); a full one makes senders wait. Fires go to the
Locker through an ``outbox`` forwarded by a background task, so that the actor keeps
reading the Locker's replies while the Locker is full (the two would otherwise wait on
each other); a scheduled fire that waited there beyond the misfire grace is a misfire.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import trio

from actors import Actor, Address, Inbox
from cluster.presence import ENDED, RunningInfo
from cluster.retries import PendingRetry, retry_due_ms, retry_run_id
from cluster.spec import MAX_CATCHUP_FIRES, MAX_RETRY_BACKOFF_S, JobSpec
from cluster.store import RunRecord, RunStatus, RunTrigger

from worker.clock import trio_deadline_for
from worker.context import WorkerContext
from worker.executor.messages import ExecutorMsg, KillRun, StartRun
from worker.locker.messages import Claim, ClaimLost, ClaimWindow, LockerMsg, PersistRetry
from worker.log_sink.messages import LogSinkMsg, Write
from worker.chains import ChainIndex
from worker.claim_lead import ClaimLead
from worker.messages import Fire, Run, Upstream
from worker.skips import tally_record
from .messages import (
    Denied,
    Granted,
    GrantedBatch,
    JobDeleted,
    JobSaved,
    JobsSnapshot,
    LostClaimed,
    RETRYABLE,
    QuorumBack,
    RetryRequested,
    RunEnded,
    RunVanished,
    SchedulerMsg,
    TriggerRequested,
)
from .catch_up import Missed, missed_fires, utc
from .held_triggers import drop_held, hold_trigger
from .misfires import MisfireLog
from .outbox import ClaimOutbox
from .plan import PlanTable
from .records import lost_record, skipped_record

log = logging.getLogger(__name__)

MAX_SLEEP_S = 10.0  # re-read the wall clock at least this often (clock steps)
# The skew the lost-run window (``_recent``) allows for between the run's claimer and
# us, at the least: --max-clock-skew-s is when the master warns and the fleet outvotes a
# clock (1 s by default), not a bound on how far off a clock may be.
LOST_WINDOW_SKEW_S = 5.0


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    jobs: int
    fires: int
    misfires: int  # fire times passed over because they were later than the grace
    retries_pending: int
    outbox: int  # fires waiting for room in the Locker's mailbox
    firing: bool
    claim_lead_ms: int = 0  # the plan's lead now (``worker.claim_lead``)


def new_run_id() -> str:
    return uuid.uuid4().hex


class Scheduler(Actor[SchedulerMsg]):
    def __init__(self, inbox: Inbox[SchedulerMsg], ctx: WorkerContext, *,
                 locker: Address[LockerMsg], executor: Address[ExecutorMsg],
                 log_sink: Address[LogSinkMsg], lead: ClaimLead | None = None) -> None:
        """``lead``: the worker's ``ClaimLead`` (read only; a fresh one if not given)."""
        super().__init__(inbox)
        self._ctx = ctx
        self._locker = locker  # used through the outbox; kept here: it is our wiring
        self._executor = executor
        self._log_sink = log_sink
        self._lead = lead if lead is not None else ClaimLead(ctx.clock, ctx.config.claim_lead_s)
        self._plan = PlanTable(lead_ms=self._lead.lead_ms())
        # Pending retries of every worker, from retry/ (``cluster.retries``): each is
        # claimed at its due time by whichever worker ranks first.
        self._retries: list[tuple[int, int, PendingRetry]] = []  # (due_ms, seq, retry)
        self._retry_ids: set[str] = set()
        self._seq = itertools.count()
        self._firing = True
        self._fires = 0
        self._grace_ms = round(ctx.config.misfire_grace_s * 1000)
        self._misfires = MisfireLog(self._grace_ms)
        # name -> (run id, asked, upstream run of a chained run)
        self._pending_triggers: dict[str, list[tuple[str, int, Upstream | None]]] = {}
        self._chains = ChainIndex()  # who runs after whom: stamped on each claimed fire
        self._outbox = ClaimOutbox(locker.tell, ctx.clock, grace_ms=self._grace_ms,
                                   on_stale=self._stale)

    # -- hooks ----------------------------------------------------------------------

    def background(self) -> Iterable[Callable[[], Awaitable[None]]]:
        return (self._outbox.forward,)

    def timer_deadline(self) -> float:
        """When the earliest fire (plan table or pending retry) is due, on the trio clock.

        Asked after every message: one that makes a fire due now gives a deadline of now,
        which is past once the runtime waits on it (trio cancels a scope entered at or
        after its deadline), so the fire goes before the next message, never later.
        """
        self._plan.set_lead(self._lead.lead_ms())  # claims got slower, or fast again
        candidates = [t for t in (self._plan.next_due_ms(), self._next_retry_ms()) if t is not None]
        if not candidates or not self._firing:
            return trio.current_time() + MAX_SLEEP_S
        return trio_deadline_for(self._ctx.clock, min(candidates), max_sleep_s=MAX_SLEEP_S)

    async def on_timer(self) -> None:
        await self._fire_due()

    def request_stop(self) -> None:
        self._firing = False  # graceful stop: no new fires, replies still handled
        super().request_stop()

    async def drain(self) -> None:
        if self._outbox:
            log.info("stopping: %d queued fires not claimed", len(self._outbox))

    def statistics_detail(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            len(self._plan), self._fires, self._misfires.count, len(self._retries),
            len(self._outbox), self._firing, self._plan.lead_ms,
        )

    # -- messages -------------------------------------------------------------------

    async def handle(self, msg: SchedulerMsg) -> None:
        match msg:
            case JobsSnapshot() as snapshot:
                await self._converge(snapshot)
            case JobSaved(spec, serve):
                self._chains.saved(spec)
                if serve:
                    self._plan.upsert(spec, self._ctx.clock.now_ms())
                    await self._release_triggers(spec.name)
                else:  # other workers serve it now (shards)
                    self._plan.hand_over(spec.name)
                    drop_held(self._pending_triggers, spec.name)
            case JobDeleted(name):
                self._chains.deleted(name)
                if self._plan.delete(name):
                    await self._send_executor(KillRun(name, None, RunStatus.KILLED, "job deleted"))
            case TriggerRequested(name, run_id, requested_ms, upstream):
                await self._trigger(name, run_id, requested_ms, upstream)
            case RetryRequested(retry):
                if retry.run_id not in self._retry_ids:
                    self._retry_ids.add(retry.run_id)
                    heapq.heappush(self._retries, (retry.due_ms, next(self._seq), retry))
            case Granted(run):
                await self._start(run)
            case GrantedBatch(runs):
                for run in runs:
                    await self._start(run)
            case Denied(fire, reason, record_skip, tally):
                if record_skip and tally is not None:
                    await self._record(tally_record(fire, self._ctx.worker_id, reason, tally))
                elif record_skip:
                    await self._record(skipped_record(fire, self._ctx.worker_id, reason))
            case RunVanished(info):
                await self._on_vanished(info)
            case LostClaimed(info):
                await self._on_lost(info)
            case RunEnded(run, status):
                self._maybe_retry(run.fire.spec.name, run.fire, status)
            case QuorumBack(lost_since_ms):
                await self._after_outage(lost_since_ms)

    async def _start(self, run: Run) -> None:
        await self._send_executor(StartRun(run))
        name = run.fire.spec.name
        if not self._plan.runs_here(name):  # deleted while its claim was in flight
            await self._send_executor(
                KillRun(name, run.fire.run_id, RunStatus.KILLED, "job deleted"))

    async def _converge(self, snapshot: JobsSnapshot) -> None:
        now_ms = self._ctx.clock.now_ms()
        known = self._plan.names()
        specs, last_fired_ms = snapshot.specs, snapshot.last_fired_ms
        kept = [entry.spec for name in snapshot.kept
                if (entry := self._plan.get(name)) is not None]
        if len(kept) != len(snapshot.kept):  # the JobWatcher's view and ours differ
            log.warning("%d jobs kept by a reload are not in the plan",
                        len(snapshot.kept) - len(kept))
        self._chains.replace_all((*specs, *kept, *snapshot.chained))
        for name in self._plan.replace_all(specs, now_ms, snapshot.handed_over,
                                           snapshot.kept):
            await self._send_executor(KillRun(name, None, RunStatus.KILLED, "job deleted"))
        for name in snapshot.handed_over:
            drop_held(self._pending_triggers, name)
        left = 0
        for spec in specs:
            if spec.name not in known and spec.name in last_fired_ms:
                if spec.name in snapshot.caught_up_elsewhere:
                    left += 1
                else:
                    await self._catch_up(spec, last_fired_ms[spec.name], now_ms)
            await self._release_triggers(spec.name)
        if left:
            log.info("catch-up of %d jobs left to the worker(s) back before this one", left)

    async def _catch_up(self, spec: JobSpec, last_fired_ms: int, now_ms: int,
                        upto_ms: int | None = None) -> Missed:
        """Fire what ``spec.catch_up`` runs of the times missed after ``last_fired_ms``,
        within ``startingDeadline`` (``catch_up``); returns them."""
        missed = missed_fires(spec, last_fired_ms, now_ms, upto_ms)
        for planned_ms in missed.run:
            await self._claim(spec, planned_ms, RunTrigger.CATCHUP, missed, last_fired_ms)
        return missed

    async def _after_outage(self, lost_since_ms: int) -> None:
        """etcd had no quorum from ``lost_since_ms``: the Locker claimed nothing, and
        claims begun up to a grace before were dropped. Catch those fires up as after
        any outage; one that did run keeps its lock, so its catch-up is taken, not run.
        Said in one line: how many, and the planned times they span."""
        now_ms = self._ctx.clock.now_ms()
        fired: dict[str, tuple[int, ...]] = {}
        for name in self._plan.names():
            entry = self._plan.get(name)
            if entry is None:
                continue
            # Fires already handed over ahead of their time (``claim_lead_s``, and a
            # window's reach: up to a lead plus 1 s) were dropped too: up to the plan's
            # next one, past every fire handed over. (None starts before its time.)
            upto_ms = now_ms if entry.next_ms is None else max(now_ms, entry.next_ms - 1)
            fired[name] = (await self._catch_up(entry.spec, lost_since_ms - self._grace_ms - 1,
                                                now_ms, upto_ms)).run
        times = sorted(t for ts in fired.values() for t in ts)
        log.warning("etcd quorum back: catching up %d fires of %d jobs missed since %s, "
                    "planned %s to %s (within startingDeadline; catchUp last: the most "
                    "recent, all: each, at most %d a job)",
                    len(times), sum(1 for ts in fired.values() if ts), utc(lost_since_ms),
                    utc(times[0]) if times else "-", utc(times[-1]) if times else "-",
                    MAX_CATCHUP_FIRES)

    async def _trigger(self, name: str, run_id: str, requested_ms: int,
                       upstream: Upstream | None = None) -> None:
        """A run now, or a chained run (``upstream``): claimed by its trigger key."""
        entry = self._plan.get(name)
        if entry is None:  # a job not seen yet: kept a while (``held_triggers``)
            hold_trigger(self._pending_triggers, name, (run_id, requested_ms, upstream),
                         self._ctx.clock.now_ms())
            return
        trigger = RunTrigger.MANUAL if upstream is None else RunTrigger.CHAIN
        fire = Fire(entry.spec, requested_ms, self._ctx.clock.now_ms(), trigger, run_id,
                    upstream=upstream)
        self._queue_claim(Claim(fire))

    async def _release_triggers(self, name: str) -> None:
        for run_id, requested_ms, upstream in self._pending_triggers.pop(name, ()):
            await self._trigger(name, run_id, requested_ms, upstream)

    async def _on_vanished(self, info: RunningInfo) -> None:
        """Another worker's run went with its lease. If its command was never committed
        to start (``start_marks``), claim the fire again and run it, on whichever live
        worker ranks first (every survivor sees the same run); otherwise, or if the job
        is gone or paused, one survivor records it lost."""
        entry = self._plan.get(info.job_name)
        trigger = _trigger_of(info)
        if info.started or entry is None or entry.spec.paused or trigger is None \
                or not self._recent(info):
            # Ended: its worker wrote its chained runs' triggers. Else it is lost, and
            # whoever records it so writes them (``worker.chains``).
            links = () if info.state == ENDED else self._chains.links(info.job_name)
            self._queue_claim(ClaimLost(info, links))
            return
        log.warning("run %s of %r never started on worker %r, which is gone: running it again",
                    info.run_id, info.job_name, info.worker_id)
        self._queue_claim(Claim(Fire(
            entry.spec, info.planned_ms, self._ctx.clock.now_ms(), trigger,
            info.run_id, info.attempt, recovers=info.worker_id,
            missed_fires=info.missed_fires, first_missed_ms=info.first_missed_ms)))

    def _recent(self, info: RunningInfo) -> bool:
        """Claimed recently enough that its lost key, if another worker took it, still
        exists: a deletion replayed late (a stalled watch) must not run a fire again
        after it was run once already. Lost keys live at least 2/3 of ``lock_ttl_s``."""
        cfg = self._ctx.config
        skew_s = max(cfg.max_clock_skew_s, LOST_WINDOW_SKEW_S)
        window_ms = (cfg.lock_ttl_s * 2 / 3 - skew_s) * 1000
        return self._ctx.clock.now_ms() - info.started_ms < window_ms

    async def _on_lost(self, info: RunningInfo) -> None:
        entry = self._plan.get(info.job_name)
        command = entry.spec.command if entry else ""
        await self._record(lost_record(info, command, self._ctx.clock.now_ms()))
        if entry is not None:
            fire = Fire(entry.spec, info.planned_ms, info.started_ms,
                        RunTrigger(info.trigger), info.run_id, info.attempt)
            self._maybe_retry(info.job_name, fire, RunStatus.LOST)

    def _maybe_retry(self, name: str, fire: Fire, status: RunStatus) -> None:
        """Keep the next attempt in etcd (the Locker writes it): every worker plans it
        from there, so it runs even if this worker dies during the backoff."""
        entry = self._plan.get(name)
        if entry is None or status not in RETRYABLE or fire.attempt > entry.spec.retries:
            return
        due_ms = retry_due_ms(self._ctx.clock.now_ms(), entry.spec.retry_backoff_s,
                              MAX_RETRY_BACKOFF_S, fire.attempt)
        run_id = retry_run_id(name, fire.planned_ms, fire.attempt + 1)
        self._queue_claim(PersistRetry(PendingRetry(name, run_id, fire.planned_ms,
                                                    fire.attempt + 1, due_ms)))

    # -- firing ---------------------------------------------------------------------

    async def _fire_due(self) -> None:
        if not self._firing:
            return
        now_ms = self._ctx.clock.now_ms()
        window = []
        for due in self._plan.pop_due(now_ms, self._grace_ms):
            if due.late:
                self._misfires.passed_over(due.spec.name, due.planned_ms,
                                           now_ms - due.planned_ms, "the worker was stalled")
            elif not due.spec.paused:
                window.append(self._new_fire(due.spec, due.planned_ms, RunTrigger.SCHEDULE))
        if len(window) > 1:  # one message for the window (``ClaimWindow``)
            self._queue_claim(ClaimWindow(tuple(window)))
        elif window:
            self._queue_claim(Claim(window[0]))
        while self._retries and self._retries[0][0] <= now_ms:
            _, _, retry = heapq.heappop(self._retries)
            self._retry_ids.discard(retry.run_id)
            entry = self._plan.get(retry.job_name)
            if entry is not None and not entry.spec.paused:
                # The job as it is now, not as it was when the attempt before failed.
                self._queue_claim(Claim(Fire(entry.spec, retry.planned_ms, now_ms,
                                             RunTrigger.RETRY, retry.run_id, retry.attempt)))

    def _next_retry_ms(self) -> int | None:
        return self._retries[0][0] if self._retries else None

    async def _claim(self, spec: JobSpec, planned_ms: int, trigger: RunTrigger,
                     missed: Missed | None = None, after_ms: int | None = None) -> None:
        """``missed``/``after_ms``: a catch-up fire, of the outage after ``after_ms``."""
        self._queue_claim(Claim(self._new_fire(spec, planned_ms, trigger, missed, after_ms)))

    def _new_fire(self, spec: JobSpec, planned_ms: int, trigger: RunTrigger,
                  missed: Missed | None = None, after_ms: int | None = None) -> Fire:
        fire = Fire(spec, planned_ms, self._ctx.clock.now_ms(), trigger, new_run_id(),
                    missed_fires=missed.count if missed else None,
                    first_missed_ms=missed.first_ms if missed else None,
                    catch_up_after_ms=after_ms if missed else None,
                    last_missed_ms=missed.run[-1] if missed else None)
        self._fires += 1
        return fire

    # -- sending (peers may be stopping during a shutdown) ---------------------------

    def _queue_claim(self, msg: Claim | ClaimWindow | ClaimLost | PersistRetry) -> None:
        # Each fire carries the jobs that run after it, as they are now.
        if isinstance(msg, Claim):
            msg = Claim(self._with_chains(msg.fire))
        elif isinstance(msg, ClaimWindow):
            msg = ClaimWindow(tuple(self._with_chains(f) for f in msg.fires))
        self._outbox.put(msg)  # never waits: see ``outbox``

    def _with_chains(self, fire: Fire) -> Fire:
        links = self._chains.links(fire.spec.name)
        return replace(fire, chains=links) if links != fire.chains else fire

    def _stale(self, fire: Fire, waited_ms: int) -> None:
        self._misfires.passed_over(fire.spec.name, fire.planned_ms, waited_ms,
                                   "it waited for the locker")

    async def _send_executor(self, msg: StartRun | KillRun) -> None:
        await self._executor.tell_or_log(msg, log, logging.WARNING)

    async def _record(self, record: RunRecord) -> None:
        await self._log_sink.send(Write(record))


def _trigger_of(info: RunningInfo) -> RunTrigger | None:
    try:
        return RunTrigger(info.trigger)
    except ValueError:
        return None
