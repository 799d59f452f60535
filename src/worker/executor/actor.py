"""The Executor: runs each won fire as ``bash -c <command>`` and records how it ended.

Each run is a task in the Executor's own nursery, so the actor keeps serving its
mailbox (kills, counts) while commands run. Processes, capture and group kills live
in ``process``; this module decides why a run stops and what is recorded.

A run ends in exactly one record, sent to the LogSink, then:

- ``RunEnded`` to the Scheduler (retries, concurrency); skipped if the Scheduler has
  already stopped (shutdown), since nothing is left to act on it;
- ``release(run)`` in the background (gives back the job's ``active/`` guard; it
  retries by itself): a slow etcd never delays a record or the next run's start. If
  it never succeeds, the guard still goes with the session lease. The ``running/``
  key is the LogSink's to delete, once the record is durable.

How a run starts (``start_at``, ``start_marks``): its process is spawned at once, held;
the run's ``running`` key is marked ``started`` in etcd; then the process is told the
seconds left until the planned instant, and bash waits them out itself before it
``exec``s the command. So a command never starts before its planned time (a scheduled
fire is claimed a little ahead, ``claim_lead_s``), never before etcd says it started
(survivors run a fire again only if it never did), and still starts on time if this
worker dies after telling it; if the worker dies before, the process settles the run
with etcd itself (``orphan``). A kill before the command starts stops it unstarted; a
mark that finds the key gone (the session lease expired) makes it ``lost``, unstarted.
(With a shell other than bash the Executor marks the run, waits in-process, then spawns.)

Why a run stops, first reason wins: ``KillRun`` (its status, usually ``killed``),
``Fenced`` (``lost``: the session lease is gone, so another worker may now own the
job's fires), the job's timeout (``timeout``), or a graceful stop after
``shutdown_grace_s`` (``killed``). Otherwise the exit code decides: ``succeeded`` on 0,
``failed`` on anything else; a command that cannot be started is ``failed`` too.

Who runs it (``run_as``): the job's account, decided first; a ``user`` the worker does
not allow, or does not know, fails the run unstarted (``failed``, no exit code, the
reason in ``err``), counted by reason. A job run as another user changes user at the
final ``exec`` of a held run, or at the spawn otherwise (``drop``).

Environment of a job: the worker's own, minus ``SCHEDULER_*`` (the worker's settings,
which may hold database and etcd credentials), plus, when it runs as an account, that
account's ``HOME``, ``USER`` and ``LOGNAME``, plus the job's ``env``, plus
``SCHEDULER_JOB_NAME``, ``SCHEDULER_RUN_ID``, ``SCHEDULER_PLAN_TIME_MS`` (the planned
fire, epoch ms: a job can measure its own lateness), ``SCHEDULER_TRIGGER`` and
``SCHEDULER_ATTEMPT``.

Metrics: a ``RunTally`` counts the lateness of a scheduled fire when its command is told
to start (or the planned instant, if later), and every run's final status; both O(1),
plain integers, without a checkpoint. ``worker.metrics`` reads them from the statistics.

Mailboxes:
- its own: bounded (``mailbox_size``); senders wait when it is full (backpressure on the
  Scheduler and the JobWatcher). Handling never blocks on a process, so it drains fast.
- LogSink: ``send`` waits while it is full (backpressure), a record is never dropped.
- Locker: ``LoadChanged`` is a gauge offered (``Address.offer``) after every start and
  end; when the Locker's mailbox is full or closed that one update is skipped, and the
  next one carries the current value anyway.

Graceful stop: StartRuns that arrive after it are not spawned: recorded ``lost`` ("left
for another worker"), their keys left to go with the session lease, still ``claimed``,
so that a survivor runs them (its record then replaces ours); runs already waiting for
their mark or planned instant start then (they are ours: no other worker would run them);
runs in progress get ``shutdown_grace_s`` to finish, then are killed (SIGTERM, SIGKILL
after ``kill_grace_s``) and recorded; ``drain`` returns once every run is recorded. The
supervisor's grace for this actor is ``ExecutorBudget.grace_s`` (``worker.shutdown_budget``):
those two, the pipes' drain and the pending releases' wait, and a margin.
If the Executor is cancelled outright, every process group is SIGKILLed, and a
``killed`` record is offered to the LogSink without waiting (logged if it does not fit),
``RunEnded`` likewise to the Scheduler; the run's etcd keys then stay until the session
lease ends (nothing is left to release them).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import trio

from actors import Actor, Inbox
from cluster.store import RunRecord, RunStatus

from worker.context import WorkerContext
from worker.locker.messages import LoadChanged
from worker.log_sink.messages import Write
from worker.messages import Fire, Run
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import RunEnded
from worker.shutdown_budget import ExecutorBudget
from . import drop
from .early_kills import EarlyKill, EarlyKills
from .messages import ExecutorMsg, Fenced, KillRun, RunningCount, StartRun
from .orphan_access import orphan_command
from .process import GroupProcess, ProcessResult, SpawnAs, SpawnFailed, decode_output, start_process
from .run_as import REFUSAL_REASONS, Account, JobUsers, UserRefused
from .run_tally import RunTally, RunTallyStatistics
from .start_at import can_wait_in_shell, held_argv
from .start_marks import Marks

log = logging.getLogger(__name__)

_GONE_REASON = "its claim vanished with the session lease before it started"
SHUTDOWN_REASON = "worker shutting down"
# Its key is kept (a LOST record is not ours to release): it goes with the session lease
# at the end of the stop, still ``claimed``, and a survivor runs the fire (``start_marks``).
LEFT_REASON = "worker shutting down: left for another worker to run"
CONFIG_ENV_PREFIX = "SCHEDULER_"

Release = Callable[[Run], Awaitable[None]]


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


@dataclass(frozen=True, slots=True)
class _KillCause:
    status: RunStatus
    reason: str
    at_ms: int  # wall time of the request: before the planned time, nothing ran


@dataclass(eq=False)
class _Active:
    """A run from StartRun until its record is written."""

    run: Run
    process: GroupProcess | None = None
    cause: _KillCause | None = None  # set once: the first reason to stop wins
    waiting: trio.CancelScope | None = None  # set while it waits for its mark or time
    start_ms: int | None = None  # when its command starts (committed): None until then

    def kill(self, status: RunStatus, reason: str, at_ms: int) -> bool:
        """Ask the run to stop; False if it is already stopping or has ended."""
        if self.cause is not None:
            return False
        if self.process is not None and not self.process.kill(reason):
            return False  # it exited, or its timeout came first
        self.cause = _KillCause(status, reason, at_ms)
        if self.waiting is not None:
            self.waiting.cancel()  # it will never start
        return True

    def attach(self, process: GroupProcess) -> None:
        """The process is up; a kill that came while it was spawning applies now."""
        self.process = process
        if self.cause is not None:
            process.kill(self.cause.reason)


class Executor(Actor[ExecutorMsg]):
    def __init__(self, inbox: Inbox[ExecutorMsg], ctx: WorkerContext, *,
                 release: Release, marks: Marks, users: JobUsers | None = None,
                 budget: ExecutorBudget | None = None) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._budget = budget or ExecutorBudget.from_config(ctx.config)
        self._users = users or JobUsers.as_worker()
        self._release = release
        self._marks = marks
        self._orphan = orphan_command(ctx.config)
        self._active: dict[str, _Active] = {}  # by run id
        self._early_kills = EarlyKills()  # kills that came before their run
        self._idle = trio.Event()  # set exactly when _active is empty
        self._idle.set()
        self._session: int | None = None
        self._stopping = False
        self._runs: trio.Nursery | None = None
        self._background: trio.Nursery | None = None
        self._started = self._finished = self._killed = 0
        self._timed_out = self._spawn_failures = self._records_lost = 0
        self._refused: dict[str, int] = {}  # by UserRefused.reason
        self._tally = RunTally()

    # -- loop -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Nested so that runs end (and are recorded) before releases are given up on.
        async with trio.open_nursery() as background:
            self._background = background
            marking = trio.CancelScope()
            background.start_soon(self._serve_marks, marking)
            async with trio.open_nursery() as runs:
                self._runs = runs
                task_status.started()
                await self.serve()  # ends with drain(): every run recorded
            marking.cancel()  # every run has ended: nothing is left to mark
            # Pending releases get a little longer, then are cancelled on leaving.
            background.cancel_scope.deadline = trio.current_time() + self._budget.release_wait_s

    async def _serve_marks(self, scope: trio.CancelScope) -> None:
        with scope:
            await self._marks.serve()

    def request_stop(self) -> None:
        self._stopping = True  # queued StartRuns are recorded killed, not spawned
        super().request_stop()

    async def drain(self) -> None:
        with trio.move_on_after(self._budget.jobs_s):
            await self._idle.wait()
        for active in list(self._active.values()):
            if active.kill(RunStatus.KILLED, SHUTDOWN_REASON, self._ctx.clock.now_ms()):
                self._killed += 1
        await self._idle.wait()

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
                self._start(run)
            case KillRun(name, run_id, status, reason):
                matching = list(self._matching(name, run_id))
                if run_id is not None and not matching:  # its StartRun may still come
                    self._early_kills.remember(run_id, EarlyKill(status, reason),
                                               trio.current_time())
                self._kill_all(iter(matching), status, reason)
            case Fenced(lease_id):
                self._kill_all(self._fenced_by(lease_id), RunStatus.LOST,
                               f"the session lease {lease_id} was lost: the run was fenced")
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

    def _start(self, run: Run) -> None:
        run_id = run.fire.run_id
        if run_id in self._active:
            log.warning("run %s of %r is already running: duplicate StartRun ignored",
                        run_id, run.fire.spec.name)
            return
        assert self._runs is not None, "Executor.run() starts the nursery before serving"
        active = _Active(run)
        if self._stopping and active.kill(RunStatus.LOST, LEFT_REASON,
                                          self._ctx.clock.now_ms()):
            self._killed += 1
        elif (early := self._early_kills.take(run_id, trio.current_time())) is not None \
                and active.kill(early.status, early.reason, self._ctx.clock.now_ms()):
            self._killed += 1  # the kill came first: it never starts
        self._active[run_id] = active
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        self._started += 1
        self._runs.start_soon(self._run_one, active, name=f"run {run.fire.spec.name}/{run_id}")
        self._publish_load()

    def _matching(self, name: str, run_id: str | None) -> Iterator[_Active]:
        for active in list(self._active.values()):
            fire = active.run.fire
            if fire.spec.name == name and run_id in (None, fire.run_id):
                yield active

    def _fenced_by(self, lease_id: int) -> Iterator[_Active]:
        """Every run, except those known to hold a newer, live session (a late Fenced)."""
        for active in list(self._active.values()):
            lease = active.run.session_lease
            if lease == lease_id or lease != self._session:
                yield active

    def _kill_all(self, runs: Iterator[_Active], status: RunStatus, reason: str) -> None:
        for active in runs:
            if active.kill(status, reason, self._ctx.clock.now_ms()):
                self._killed += 1
                log.info("killing run %s of %r: %s", active.run.fire.run_id,
                         active.run.fire.spec.name, reason)

    # -- one run ----------------------------------------------------------------------

    async def _run_one(self, active: _Active) -> None:
        record: RunRecord | None = None
        written = False
        try:
            record = await self._execute(active)
            await self._write(record)
            written = True
        finally:
            if not written:  # cancelled (or crashed): the process group is dead already
                self._offer_abandoned(active, record)
        self._forget(active)
        assert self._background is not None
        self._background.start_soon(self._release_quietly, active.run)
        if not await self._ctx.peers.scheduler.tell(RunEnded(active.run, record.status)):
            log.info("scheduler stopped: end of run %s not reported", record.run_id)

    async def _execute(self, active: _Active) -> RunRecord:
        fire = active.run.fire
        config = self._ctx.config
        try:
            account = await self._users.for_job(fire.spec.user)
        except UserRefused as exc:
            self._refused[exc.reason] = self._refused.get(exc.reason, 0) + 1
            log.warning("run %s of %r refused: %s", fire.run_id, fire.spec.name, exc)
            return self._never_started(fire, _KillCause(RunStatus.FAILED, str(exc),
                                                        self._ctx.clock.now_ms()))
        held = can_wait_in_shell(config.bash_path)
        if not held:  # no orphan to settle it: marked before it is spawned
            if not await self._marked(active):
                return self._never_started(fire, active.cause or _gone(self._ctx.clock.now_ms()))
            await self._until_planned(active, (fire.planned_ms - self._ctx.clock.now_ms()) / 1000)
        if active.cause is not None:  # killed before it could start
            return self._never_started(fire, active.cause)
        try:
            process = await self._spawn(fire, account, held)
        except SpawnFailed as exc:
            self._spawn_failures += 1
            log.warning("run %s of %r: %s", fire.run_id, fire.spec.name, exc)
            now_ms = self._ctx.clock.now_ms()
            return _record(fire, self._ctx.worker_id, status=RunStatus.FAILED, err=str(exc),
                           start_ms=now_ms, end_ms=now_ms)
        # No checkpoint between start_process and wait(): wait() owns the cleanup.
        active.attach(process)
        if held:
            assert self._runs is not None
            # The scope exists before the task does: a run that ends first cancels it.
            active.waiting = trio.CancelScope()
            self._runs.start_soon(self._commit, active, active.waiting,
                                  name=f"commit {fire.run_id}")
        else:
            self._started_at(active, self._ctx.clock.now_ms())
        result = await process.wait()
        if active.waiting is not None:
            active.waiting.cancel()  # it ended before it was committed
        cause, start_ms = active.cause, active.start_ms
        if start_ms is None or (cause is not None and cause.at_ms < start_ms):
            return self._never_started(fire, cause or _exited_held(result))
        return self._finished_record(active, result, start_ms)

    async def _spawn(self, fire: Fire, account: Account | None, held: bool) -> GroupProcess:
        """Start the run's process, as ``account`` (``drop``); raises SpawnFailed."""
        config = self._ctx.config
        env = job_env(fire, account=account)
        argv: Sequence[str] = [config.bash_path, "-c", fire.spec.command]
        start = functools.partial(
            start_process, cap_bytes=config.output_cap_bytes,
            kill_grace_s=config.kill_grace_s, timeout_s=fire.spec.timeout_s, held=held)
        if account is not None and not account.is_current():
            if not held:  # set in the child before its exec, with the job's environment
                return await start(argv, env=env, spawn_as=SpawnAs(
                    cwd=account.workdir, uid=account.uid, gid=account.gid,
                    groups=account.groups))
            assert self._users.tools is not None, "JobUsers found them at start-up"
            try:
                with drop.env_file(env) as fd:  # closed once the child has its copy
                    argv = held_argv(config.bash_path, fire.spec.command,
                                     self._orphan_argv(fire),
                                     launcher=drop.launcher(account, self._users.tools, fd))
                    return await start(argv, env=drop.root_env(),
                                       spawn_as=SpawnAs(cwd="/", pass_fds=(fd,)))
            except OSError as exc:  # the memfd (EMFILE...); a failed spawn is SpawnFailed
                raise SpawnFailed(config.bash_path, exc) from exc
        if held:
            argv = held_argv(config.bash_path, fire.spec.command, self._orphan_argv(fire),
                             env.pop("BASH_ENV", ""))
        workdir = None if account is None else account.workdir
        return await start(argv, env=env, spawn_as=SpawnAs(cwd=workdir))

    async def _marked(self, active: _Active, scope: trio.CancelScope | None = None) -> bool:
        """Marked started in etcd (``start_marks``); False if its key is gone or it was
        killed before or meanwhile (``scope`` is then cancelled by the kill)."""
        if active.cause is not None:
            return False
        try:
            with scope or trio.CancelScope() as active.waiting:
                return await self._marks.mark(active.run)
            return False  # cancelled by the kill
        finally:
            active.waiting = None

    async def _commit(self, active: _Active, scope: trio.CancelScope) -> None:
        """A held run: mark it started, then tell its process to start the command."""
        if await self._marked(active, scope):
            fire = active.run.fire
            now_ms = self._ctx.clock.now_ms()
            assert active.process is not None
            if active.process.commit((fire.planned_ms - now_ms) / 1000):
                self._started_at(active, now_ms)
        elif active.cause is None:  # its key went with our session: fenced
            if active.kill(RunStatus.LOST, _GONE_REASON, self._ctx.clock.now_ms()):
                self._killed += 1

    def _started_at(self, active: _Active, now_ms: int) -> None:
        fire = active.run.fire
        active.start_ms = max(now_ms, fire.planned_ms)  # a command never starts early
        self._tally.started(fire.trigger, fire.planned_ms, active.start_ms)  # O(1)

    def _orphan_argv(self, fire: Fire) -> list[str]:
        key = self._ctx.keyspace.running(fire.spec.name, fire.run_id)
        return [*self._orphan, key, self._ctx.worker_id, str(fire.planned_ms)]

    async def _until_planned(self, active: _Active, wait_s: float) -> None:
        """A fire claimed ahead of its time (``claim_lead_s``) starts at it, not before."""
        if wait_s <= 0 or active.cause is not None:
            return
        with trio.CancelScope() as active.waiting:  # cancelled by a kill
            await trio.sleep(wait_s)
        active.waiting = None

    def _finished_record(self, active: _Active, result: ProcessResult,
                         start_ms: int) -> RunRecord:
        status, why = _outcome(active.cause, result)
        if status is RunStatus.TIMEOUT:
            self._timed_out += 1
        err = decode_output(result.stderr)
        if why is not None:
            err = _append_line(err, f"[scheduler] run {status}: {why}")
        return _record(
            active.run.fire, self._ctx.worker_id, status=status,
            output=decode_output(result.stdout), err=err, exit_code=result.returncode,
            start_ms=start_ms, end_ms=self._ctx.clock.now_ms(), truncated=result.truncated,
        )

    def _never_started(self, fire: Fire, cause: _KillCause) -> RunRecord:
        return _record(fire, self._ctx.worker_id, status=cause.status,
                       err=f"[scheduler] run {cause.status} before it started: {cause.reason}",
                       start_ms=None, end_ms=self._ctx.clock.now_ms())

    async def _write(self, record: RunRecord) -> None:
        if not await self._ctx.peers.log_sink.tell(Write(record)):
            self._records_lost += 1
            log.error("log sink stopped: run record lost: %s", record.to_json())
        self._finished += 1
        self._tally.ended(record.status)

    def _offer_abandoned(self, active: _Active, record: RunRecord | None) -> None:
        """Cancelled mid-run: offer the record (or a ``killed`` one) without waiting."""
        if record is None:
            record = _record(active.run.fire, self._ctx.worker_id, status=RunStatus.KILLED,
                             err="[scheduler] run killed: the executor was stopped abruptly",
                             start_ms=None, end_ms=self._ctx.clock.now_ms())
        if not self._ctx.peers.log_sink.offer(Write(record)):
            self._records_lost += 1
            log.error("run record lost (executor cancelled): %s", record.to_json())
        self._ctx.peers.scheduler.offer(RunEnded(active.run, record.status))
        self._forget(active)

    def _forget(self, active: _Active) -> None:
        if self._active.pop(active.run.fire.run_id, None) is None:
            return
        if not self._active:
            self._idle.set()
        self._publish_load()

    def _publish_load(self) -> None:
        # Full or closed: skipped, it is a gauge; the next start or end sends the value.
        self._ctx.peers.locker.offer(LoadChanged(len(self._active)))

    async def _release_quietly(self, run: Run) -> None:
        try:
            await self._release(run)
        except Exception:  # it retries by itself; a failure must not stop other runs
            log.exception("releasing the keys of run %s failed; they expire with the "
                          "session lease", run.fire.run_id)


def _gone(now_ms: int) -> _KillCause:
    return _KillCause(RunStatus.LOST, _GONE_REASON, now_ms)


def _exited_held(result: ProcessResult) -> _KillCause:
    """A held process that ended before it was told to start: something else killed it."""
    return _KillCause(RunStatus.FAILED,
                      f"its process ended (code {result.returncode}) before it was started", 0)


def job_env(fire: Fire, base: Mapping[str, str] | None = None, *,
            account: Account | None = None) -> dict[str, str]:
    """The environment of one run (see the module docstring for why and what)."""
    inherited = os.environ if base is None else base
    env = {k: v for k, v in inherited.items() if not k.startswith(CONFIG_ENV_PREFIX)}
    if account is not None:
        env.update(account.env())
    env.update(fire.spec.env)
    env.update(
        SCHEDULER_JOB_NAME=fire.spec.name,
        SCHEDULER_RUN_ID=fire.run_id,
        SCHEDULER_PLAN_TIME_MS=str(fire.planned_ms),
        SCHEDULER_TRIGGER=str(fire.trigger),
        SCHEDULER_ATTEMPT=str(fire.attempt),
    )
    return env


def _outcome(cause: _KillCause | None, result: ProcessResult) -> tuple[RunStatus, str | None]:
    """Status, and why it was stopped (None when it ended by itself)."""
    if cause is not None:
        return cause.status, cause.reason
    if result.timed_out:
        return RunStatus.TIMEOUT, result.kill_reason
    return (RunStatus.SUCCEEDED if result.returncode == 0 else RunStatus.FAILED), None


def _append_line(text: str, line: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}{line}\n"


def _record(fire: Fire, worker_id: str, *, status: RunStatus, err: str,
            start_ms: int | None, end_ms: int, output: str = "",
            exit_code: int | None = None, truncated: bool = False) -> RunRecord:
    return RunRecord(
        run_id=fire.run_id, job_name=fire.spec.name, worker=worker_id,
        command=fire.spec.command, output=output, err=err, exit_code=exit_code,
        status=status, trigger=fire.trigger, attempt=fire.attempt,
        plan_time=fire.planned_ms, schedule_time=fire.fired_ms,
        start_time=start_ms, end_time=end_ms, output_truncated=truncated,
    )
