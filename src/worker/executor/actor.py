"""The Executor: runs each won fire as ``bash -c <command>`` and records how it ended.

What it owns: the runs in flight on this worker, from StartRun to their record (each
an ``ActiveRun``), and their process groups. Its parts: ``launch`` (how a run starts:
held, marked, at its planned instant), ``active`` (why a run stops: first reason wins),
``record`` (the record it ends in), ``environment`` (what a job sees), ``releases``
(its keys given back in the background), ``process`` and ``spawn`` (the process group).

Messages in (``ExecutorMsg``): ``StartRun`` (a won fire) from the Scheduler, or from
the Locker directly; ``KillRun`` from the JobWatcher and the Scheduler; ``Fenced``,
``SessionChanged`` and ``RunningCount`` from the Registrar.

Messages out, after a run ends in exactly one record (and, for a job that other jobs
run after, once ``end_mark`` wrote their triggers to etcd: ``worker.chains``):

- ``Write(record)`` to the LogSink;
- ``RunEnded`` to the Scheduler, only for a run that ended in a ``RETRYABLE`` status
  (retries are all it is for); skipped if the Scheduler has already stopped
  (shutdown), since nothing is left to act on it;
- its count of runs into the worker's ``RunLoad`` (which the Locker reads) after every
  start and end;
- and, for a run that holds its job's ``active/`` guard (``Run.guarded``: concurrency
  ``forbid`` or ``replace``), ``release(run)`` in the background (``releases``; gives
  the guard back); a run without one starts no release. The ``running/`` key is the
  LogSink's to delete, once the record is durable.

Who runs it (``run_as``): the job's account, decided first; a ``user`` the worker does
not allow, or does not know, fails the run unstarted (``failed``, no exit code, the
reason in ``err``), counted by reason. A mark that finds the key gone (the session
lease expired) makes it ``lost``, unstarted.

Each run is a task of the actor's own (``spawn``), so the actor keeps serving its
mailbox (kills, counts) while commands run; one task a run, no more (CPU per fire): its
process is followed in it (``process``), and a held run is committed in the start
marks' serving task, by a callback, as its mark lands (``_marked``); only a mark left
undecided (etcd unreachable, a failed batch) gets a task to retry it. ``task_limit`` is
None on purpose: a limit would stop the mailbox, and with it the kills and fencing that
must reach running jobs.
What bounds the runs is upstream: the Locker claims a fire only while this worker runs
fewer than ``capacity`` (the ``RunLoad``), and the Scheduler keeps each job's
``concurrency``.

Metrics: a ``RunTally`` counts the lateness of a scheduled fire when its command is told
to start (or the planned instant, if later), and every run's final status; both O(1),
plain integers, without a checkpoint. ``worker.metrics`` reads them from the statistics.

Mailboxes:
- its own: bounded (``mailbox_size``); senders wait when it is full (backpressure on the
  Scheduler, the Locker and the JobWatcher). Handling never blocks on a process, so it
  drains fast.
- LogSink: ``tell`` waits while it is full (backpressure), a record is never dropped;
  while it has room, the record goes in without a schedule point (``Address.send``).

Graceful stop: StartRuns that arrive after it are not spawned: recorded ``lost`` ("left
for another worker"), their keys left to go with the session lease, still ``claimed``,
so that a survivor runs them (its record then replaces ours); runs already waiting for
their mark or planned instant start then (they are ours: no other worker would run them);
runs in progress get ``shutdown_grace_s`` to finish, then are killed (SIGTERM, SIGKILL
after ``kill_grace_s``) and recorded. ``drain`` keeps this order: every run ends and is
recorded (and its ``RunEnded`` told, if any), then marking stops, then the pending
releases get ``release_wait_s`` and are cancelled. The supervisor's grace for this actor is
``ExecutorBudget.grace_s`` (``worker.shutdown_budget``): those, the pipes' drain and a
margin.
If the Executor is cancelled outright, every process group is SIGKILLed, and a
``killed`` record is offered to the LogSink without waiting (logged if it does not fit),
a ``RunEnded`` (if retryable) likewise to the Scheduler; the run's etcd keys then stay
until the session lease ends (nothing is left to release them).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

import trio

from actors import Actor, Address, Inbox
from cluster.store import RunRecord, RunStatus

from worker.context import WorkerContext
from worker.log_sink.messages import LogSinkMsg, Write
from worker.claim_lead import ClaimLead
from worker.live_output import LiveOutput
from worker.run_load import RunLoad
from worker.messages import Fire, Run
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import RETRYABLE, RunEnded, SchedulerMsg
from worker.shutdown_budget import ExecutorBudget
from . import record
from .active import GONE_REASON, ActiveRun, KillCause, exited_held, gone
from .early_kills import EarlyKill, EarlyKills
from .launch import Launcher, marked, until_planned
from .messages import ExecutorMsg, Fenced, KillRun, RunningCount, StartRun
from .releases import Release, Releases
from .run_as import REFUSAL_REASONS, JobUsers, UserRefused
from .run_tally import RunTally, RunTallyStatistics
from .spawn import SpawnFailed
from .start_marks import Mark, Marks

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "worker shutting down"
# Its key is kept (a LOST record is not ours to release): it goes with the session lease
# at the end of the stop, still ``claimed``, and a survivor runs the fire (``start_marks``).
LEFT_REASON = "worker shutting down: left for another worker to run"

Task = Callable[..., Awaitable[object]]
# Writes the end of a run whose job has chained jobs, with their triggers (worker.chains).
EndMark = Callable[[Run, RunRecord], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ExecutorStatistics:
    running: int  # runs started and not yet recorded
    started: int  # StartRun messages accepted
    finished: int  # runs ended and handed to the LogSink (or logged as lost)
    killed: int  # runs stopped by KillRun, Fenced or a shutdown
    timed_out: int
    spawn_failures: int
    records_lost: int  # records the LogSink could not take (it had stopped): logged
    user_not_allowed: int  # runs refused: their ``user`` is not allowed here
    unknown_user: int  # runs refused: their ``user`` does not exist here
    runs: RunTallyStatistics  # by final status, and the lateness of scheduled fires


class Executor(Actor[ExecutorMsg]):
    def __init__(self, inbox: Inbox[ExecutorMsg], ctx: WorkerContext, *,
                 scheduler: Address[SchedulerMsg], log_sink: Address[LogSinkMsg],
                 release: Release, marks: Marks,
                 users: JobUsers | None = None, budget: ExecutorBudget | None = None,
                 end_mark: EndMark | None = None, lead: ClaimLead | None = None,
                 live: LiveOutput | None = None, load: RunLoad | None = None) -> None:
        """``lead``: the worker's ``ClaimLead``, told when a run's mark landed; ``live``:
        where runs' output goes while they run (``worker.live_output``); ``load``: the
        worker's ``RunLoad``, kept at the count of runs (a fresh one if not given)."""
        super().__init__(inbox)  # no task_limit: see the module docstring
        self._ctx = ctx
        self._scheduler = scheduler
        self._log_sink = log_sink
        self._load = load if load is not None else RunLoad()
        self._budget = budget or ExecutorBudget.from_config(ctx.config)
        self._users = users or JobUsers.as_worker()
        self._launcher = Launcher(ctx.config, ctx.keyspace, ctx.worker_id, self._users, live)
        self._marks = marks
        self._end_mark = end_mark  # a chained job's end, written before its record
        self._lead = lead
        self._marking = trio.CancelScope()  # cancelled once no run is left to mark
        self._releases = Releases(release, wait_s=self._budget.release_wait_s)
        self._active: dict[str, ActiveRun] = {}  # by run id
        self._early_kills = EarlyKills()  # kills that came before their run
        self._idle = trio.Event()  # set exactly when _active is empty
        self._idle.set()
        # Tasks of runs (a run, a commit that retries its mark) not yet returned: the
        # stop waits for them before it stops marking and releasing. _tasks_over is set
        # exactly when none.
        self._run_tasks = 0
        self._tasks_over = trio.Event()
        self._tasks_over.set()
        self._session: int | None = None
        self._stopping = False
        self._started = self._finished = self._killed = 0
        self._timed_out = self._spawn_failures = self._records_lost = 0
        self._refused: dict[str, int] = {}  # by UserRefused.reason
        self._tally = RunTally()

    # -- hooks ------------------------------------------------------------------------

    def background(self) -> Iterable[Task]:
        return (self._serve_marks, self._releases.serve)

    async def _serve_marks(self) -> None:
        with self._marking:
            await self._marks.serve()

    def request_stop(self) -> None:
        self._stopping = True  # queued StartRuns are recorded lost, not spawned
        super().request_stop()

    async def drain(self) -> None:
        """Runs end and are recorded, then marking stops, then releases get their wait."""
        with trio.move_on_after(self._budget.jobs_s):
            await self._idle.wait()
        for active in list(self._active.values()):
            if active.kill(RunStatus.KILLED, SHUTDOWN_REASON, self._ctx.clock.now_ms()):
                self._killed += 1
        await self._idle.wait()
        await self._tasks_over.wait()  # each RunEnded told: no release starts after this
        self._marking.cancel()  # every run has ended: nothing is left to mark
        await self._releases.finish()  # pending ones get release_wait_s, then are cancelled

    def statistics_detail(self) -> ExecutorStatistics:
        return ExecutorStatistics(
            len(self._active), self._started, self._finished, self._killed,
            self._timed_out, self._spawn_failures, self._records_lost,
            *(self._refused.get(reason, 0) for reason in REFUSAL_REASONS),
            self._tally.statistics(),
        )

    # -- messages -------------------------------------------------------------------

    async def handle(self, msg: ExecutorMsg) -> None:
        match msg:
            case StartRun(run):
                await self._start(run)
            case KillRun(name, run_id, status, reason):
                matching = list(self._matching(name, run_id))
                if run_id is not None and not matching:  # its StartRun may still come
                    self._early_kills.remember(run_id, EarlyKill(status, reason),
                                               trio.current_time())
                self._kill_all(iter(matching), status, reason)
            case Fenced(lease_id, kill_within_s):
                self._kill_all(self._fenced_by(lease_id), RunStatus.LOST,
                               f"the session lease {lease_id} was lost: the run was fenced",
                               kill_within_s)
            case SessionChanged(lease_id):
                self._session = lease_id
                if lease_id is not None:
                    # A new session without a Fenced first (the Registrar restarted):
                    # runs on any older lease are no longer covered by a live lease.
                    stale = (a for a in list(self._active.values())
                             if a.run.session_lease != lease_id)
                    self._kill_all(stale, RunStatus.LOST,
                                   f"session replaced by lease {lease_id}: the run was fenced")
            case RunningCount(reply):
                reply.send(len(self._active))

    async def _start(self, run: Run) -> None:
        run_id = run.fire.run_id
        if run_id in self._active:
            log.warning("run %s of %r is already running: duplicate StartRun ignored",
                        run_id, run.fire.spec.name)
            return
        active = ActiveRun(run)
        if self._stopping and active.kill(RunStatus.LOST, LEFT_REASON,
                                          self._ctx.clock.now_ms()):
            self._killed += 1
        elif (early := self._early_kills.take(run_id, trio.current_time())) is not None \
                and active.kill(early.status, early.reason, self._ctx.clock.now_ms()):
            self._killed += 1  # the kill came first: it never starts
        self._active[run_id] = active
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        self._started += 1
        fire = active.run.fire
        self._spawn_run_task(self._run_one, active, name=f"run {fire.spec.name}/{fire.run_id}")
        self._publish_load()

    def _matching(self, name: str, run_id: str | None) -> Iterator[ActiveRun]:
        for active in list(self._active.values()):
            fire = active.run.fire
            if fire.spec.name == name and run_id in (None, fire.run_id):
                yield active

    def _fenced_by(self, lease_id: int) -> Iterator[ActiveRun]:
        """Every run, except those known to hold a newer, live session (a late Fenced)."""
        for active in list(self._active.values()):
            lease = active.run.session_lease
            if lease == lease_id or lease != self._session:
                yield active

    def _kill_all(self, runs: Iterator[ActiveRun], status: RunStatus, reason: str,
                  grace_s: float | None = None) -> None:
        for active in runs:
            if active.kill(status, reason, self._ctx.clock.now_ms(), grace_s):
                self._killed += 1
                log.info("killing run %s of %r: %s", active.run.fire.run_id,
                         active.run.fire.spec.name, reason)

    # -- one run ----------------------------------------------------------------------

    def _spawn_run_task(self, fn: Task, *args: object, name: str) -> None:
        """``spawn``, counted in _run_tasks; never blocks (no task_limit), so a callback
        may call it too."""
        if self._run_tasks == 0:
            self._tasks_over = trio.Event()
        self._run_tasks += 1
        self.spawn_nowait(fn, *args, name=name)

    def _run_task_over(self) -> None:
        self._run_tasks -= 1
        if self._run_tasks == 0:
            self._tasks_over.set()

    async def _run_one(self, active: ActiveRun) -> None:
        end: RunRecord | None = None
        written = False
        try:
            try:
                end = await self._execute(active)
                if self._end_mark is not None:
                    await self._end_mark(active.run, end)  # chains: ``worker.chains``
                await self._write(end)
                written = True
            finally:
                if not written:  # cancelled (or crashed): the process group is dead already
                    self._offer_abandoned(active, end)
            self._forget(active)
            if active.run.guarded:  # else there is nothing to give back: no task
                self._releases.start(active.run)
            if end.status in RETRYABLE and \
                    not await self._scheduler.tell(RunEnded(active.run, end.status)):
                log.info("scheduler stopped: end of run %s not reported", end.run_id)
        finally:
            self._run_task_over()

    async def _execute(self, active: ActiveRun) -> RunRecord:
        fire = active.run.fire
        try:
            account = await self._users.for_job(fire.spec.user)
        except UserRefused as exc:
            self._refused[exc.reason] = self._refused.get(exc.reason, 0) + 1
            log.warning("run %s of %r refused: %s", fire.run_id, fire.spec.name, exc)
            return self._never_started(active, KillCause(RunStatus.FAILED, str(exc),
                                                         self._ctx.clock.now_ms()))
        held = self._launcher.holds
        if not held:  # no orphan to settle it: marked before it is spawned
            if not await marked(self._marks, active):
                return self._never_started(active, active.cause or gone(self._ctx.clock.now_ms()))
            self._ready(fire)
            await until_planned(active, (fire.planned_ms - self._ctx.clock.now_ms()) / 1000)
        if active.cause is not None:  # killed before it could start
            return self._never_started(active, active.cause)
        try:
            process = await self._launcher.spawn(fire, account)
        except SpawnFailed as exc:
            self._spawn_failures += 1
            log.warning("run %s of %r: %s", fire.run_id, fire.spec.name, exc)
            now_ms = self._ctx.clock.now_ms()
            return record.record(fire, self._ctx.worker_id, status=RunStatus.FAILED,
                                 err=str(exc), start_ms=now_ms, end_ms=now_ms)
        # No checkpoint between start_process and wait(): wait() owns the cleanup.
        active.attach(process)
        if held:
            self._mark_soon(active)
        else:
            self._started_at(active, self._ctx.clock.now_ms())
        try:
            result = await process.wait()
        finally:
            if active.waiting is not None:
                active.waiting.cancel()  # it ended before it was committed: it never will be
        cause, start_ms = active.cause, active.start_ms
        if start_ms is None or (cause is not None and cause.at_ms < start_ms):
            return self._never_started(active, cause or exited_held(result))
        end = record.finished(fire, self._ctx.worker_id, cause, result,
                              start_ms=start_ms, end_ms=self._ctx.clock.now_ms())
        if end.status is RunStatus.TIMEOUT:
            self._timed_out += 1
        return end

    def _ready(self, fire: Fire) -> None:
        if self._lead is not None:
            self._lead.ready(fire)

    def _mark_soon(self, active: ActiveRun) -> None:
        """A held run: its mark is queued, and once it lands the marks' serving task
        commits the run (``_marked``): no task of its own. Its Pending is ``waiting``,
        so that a kill, or the run's end, cancels the commit."""
        if active.cause is not None:  # killed while it was spawning: never marked
            return
        try:
            active.waiting = self._marks.mark_soon(
                active.run, functools.partial(self._marked, active))
        except trio.WouldBlock:  # the marks' queue is full: a task waits for room
            self._retry_mark(active, None)

    def _marked(self, active: ActiveRun, answer: Mark) -> None:
        """The answer to a held run's queued mark, in the marks' serving task; never
        called once the run was killed or ended (its Pending was cancelled)."""
        active.waiting = None
        match answer:
            case Mark.STARTED:
                self._commit_now(active)
            case Mark.GONE:
                self._fence_unmarked(active)
            case _:  # undecided (etcd unreachable, a failed batch): rare, so a task
                self._retry_mark(active, answer)

    def _retry_mark(self, active: ActiveRun, after: Mark | None) -> None:
        # The scope exists before the task does: a run that ends first cancels it.
        active.waiting = trio.CancelScope()
        self._spawn_run_task(self._commit, active, active.waiting, after,
                             name=f"commit {active.run.fire.run_id}")

    async def _commit(self, active: ActiveRun, scope: trio.CancelScope,
                      after: Mark | None) -> None:
        """A held run whose queued mark was not decided: mark it started (retrying from
        ``after``), then tell its process to start the command."""
        try:
            if await marked(self._marks, active, scope, after):
                self._commit_now(active)
            else:
                self._fence_unmarked(active)
        finally:
            self._run_task_over()

    def _commit_now(self, active: ActiveRun) -> None:
        """Its mark landed: the held process is told when to start the command."""
        fire = active.run.fire
        self._ready(fire)
        now_ms = self._ctx.clock.now_ms()
        assert active.process is not None
        if active.process.commit((fire.planned_ms - now_ms) / 1000):
            self._started_at(active, now_ms)

    def _fence_unmarked(self, active: ActiveRun) -> None:
        """Its key went with our session before the mark (or it was killed meanwhile,
        and then this does nothing: the first reason to stop wins)."""
        if active.kill(RunStatus.LOST, GONE_REASON, self._ctx.clock.now_ms()):
            self._killed += 1

    def _started_at(self, active: ActiveRun, now_ms: int) -> None:
        fire = active.run.fire
        active.start_ms = max(now_ms, fire.planned_ms)  # a command never starts early
        self._tally.started(fire.trigger, fire.planned_ms, active.start_ms)  # O(1)

    def _never_started(self, active: ActiveRun, cause: KillCause) -> RunRecord:
        return record.never_started(active.run.fire, self._ctx.worker_id, cause,
                                    end_ms=self._ctx.clock.now_ms())

    async def _write(self, end: RunRecord) -> None:
        if not await self._log_sink.tell(Write(end)):
            self._records_lost += 1
            log.error("log sink stopped: run record lost: %s", end.to_json())
        self._finished += 1
        self._tally.ended(end.status)

    def _offer_abandoned(self, active: ActiveRun, end: RunRecord | None) -> None:
        """Cancelled mid-run: offer the record (or a ``killed`` one) without waiting."""
        if end is None:
            end = record.abandoned(active.run.fire, self._ctx.worker_id,
                                   end_ms=self._ctx.clock.now_ms())
        if not self._log_sink.offer(Write(end)):
            self._records_lost += 1
            log.error("run record lost (executor cancelled): %s", end.to_json())
        if end.status in RETRYABLE:
            self._scheduler.offer(RunEnded(active.run, end.status))
        self._forget(active)

    def _forget(self, active: ActiveRun) -> None:
        if self._active.pop(active.run.fire.run_id, None) is None:
            return
        if not self._active:
            self._idle.set()
        self._publish_load()

    def _publish_load(self) -> None:
        self._load.running = len(self._active)
