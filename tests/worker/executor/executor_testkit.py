"""What the Executor tests share: a run to start, a harness holding an Executor on real
mailboxes (fake release and start marks; tests read what it sent to its peers), and a
FIFO reader bounded in time.

Imported by the test_executor* and test_run_as modules beside it.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from mailbox_kit import queued

from actors import call
from cluster.config import Config
from cluster.etcd import EtcdUnavailable, GetResult, TxnResult
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec
from cluster.store import RunRecord, RunTrigger
from worker.claim_lead import ClaimLead
from worker.live_output import LiveOutput
from worker.run_load import RunLoad
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.executor.actor import Executor
from worker.executor.messages import RunningCount
from worker.executor.run_as import JobUsers
from worker.executor.start_marks import Mark, StartMarks
from worker.group_commit import Pending
from worker.log_sink.messages import Write
from worker.messages import Fire, Run
from worker.shutdown_budget import ExecutorBudget


LEASE = 0x1234
WAIT_S = 10  # generous bound for anything that should take well under a second


def make_run(name: str, command: str, *, lease: int = LEASE, guarded: bool = True,
             **spec) -> Run:
    """A run of a new job; ``guarded``: it holds the job's ``active/`` guard, so its end
    releases it."""
    job = JobSpec.from_json({"name": name, "command": command, "cronExpr": "* * * * *", **spec})
    now_ms = time.time_ns() // 1_000_000
    fire = Fire(job, planned_ms=now_ms - 1500, fired_ms=now_ms - 1000,
                trigger=RunTrigger.CATCHUP, run_id=uuid.uuid4().hex, attempt=2)
    return Run(fire, session_lease=lease, guarded=guarded)


class FakeMarks(StartMarks):
    """The real StartMarks, on an etcd that marks every run started (or, with ``gone``,
    finds every key gone) after ``delay_s``, its first ``unreachable`` transactions
    failing as if etcd could not be reached; ``asked``: every run it was asked to mark
    (once per run: a retry of a queued mark is not asked again)."""

    def __init__(self) -> None:
        self.asked: list[Run] = []
        self.gone = False
        self.delay_s = 0.0
        self.unreachable = 0
        self.stopped_at: float | None = None  # trio time its serve() was cancelled
        super().__init__(_MarkingEtcd(self), Keyspace("/cron/"), "worker-7", SystemClock(),
                         size=100)

    async def serve(self) -> None:
        try:
            await super().serve()
        finally:
            self.stopped_at = trio.current_time()

    async def mark(self, run: Run, after: Mark | None = None) -> bool:
        if after is None:
            self.asked.append(run)
        return await super().mark(run, after)

    def mark_soon(self, run: Run, on_marked: Callable[[Mark], None]) -> Pending[Run, Mark]:
        self.asked.append(run)
        return super().mark_soon(run, on_marked)


class _MarkingEtcd:
    def __init__(self, marks: FakeMarks) -> None:
        self._marks = marks

    async def txn(self, compare, success=(), failure=(), *, timeout_s=None) -> TxnResult:
        await trio.sleep(self._marks.delay_s)
        if self._marks.unreachable > 0:
            self._marks.unreachable -= 1
            raise EtcdUnavailable("txn", "the test cut it off")
        if self._marks.gone:  # each key read back: gone
            return TxnResult(succeeded=False, revision=1,
                             responses=tuple(GetResult(kvs=()) for _ in failure))
        return TxnResult(succeeded=True, revision=1, responses=())


class Harness:
    """An Executor on real mailboxes; tests read what it sent to its peers."""

    def __init__(self, users: JobUsers | None = None, *,
                 budget: ExecutorBudget | None = None, lead: ClaimLead | None = None,
                 **config) -> None:
        cfg = dataclasses.replace(Config(), **{"kill_grace_s": 1.0, **config})
        self.peers, self.inboxes = open_mailboxes(cfg)
        self.ctx = WorkerContext(cfg, "worker-7", Keyspace("/cron/"), SystemClock())
        self.released: list[Run] = []
        self.release_error: Exception | None = None
        self.release_hangs = False  # a release then waits until it is cancelled
        self.releases_cancelled_at: list[float] = []  # trio times
        self.marks = FakeMarks()
        self.live = LiveOutput(SystemClock())  # what runs print, as the worker's tree has it
        self.load = RunLoad()  # the count the Locker would read
        self.executor = Executor(self.inboxes.executor, self.ctx,
                                 scheduler=self.peers.scheduler, log_sink=self.peers.log_sink,
                                 release=self._release, marks=self.marks, users=users,
                                 budget=budget, live=self.live, lead=lead, load=self.load)

    async def _release(self, run: Run) -> None:
        self.released.append(run)
        if self.release_error is not None:
            raise self.release_error
        if self.release_hangs:
            try:
                await trio.sleep_forever()
            finally:
                self.releases_cancelled_at.append(trio.current_time())

    async def send(self, msg) -> None:
        await self.peers.executor.send(msg)

    async def record(self) -> RunRecord:
        with trio.fail_after(WAIT_S):
            msg = await self.inboxes.log_sink.receive()
        assert isinstance(msg, Write)
        return msg.record

    async def records(self, n: int) -> dict[str, RunRecord]:
        return {r.run_id: r for r in [await self.record() for _ in range(n)]}

    async def running(self) -> int:
        with trio.fail_after(WAIT_S):
            return await call(self.peers.executor, RunningCount)

    def drained(self, inbox) -> list:
        return queued(inbox)

    async def runs_over(self) -> None:
        """Until every run's task has returned (its release started, its RunEnded told,
        if any): a succeeded run sends the Scheduler nothing to wait for."""
        with trio.fail_after(WAIT_S):
            while self.executor.tasks_running:
                await trio.sleep(0.005)


@asynccontextmanager
async def executor(users: JobUsers | None = None, **config) -> AsyncIterator[Harness]:
    h = Harness(users, **config)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        yield h
        nursery.cancel_scope.cancel()


async def read_fifo(path: Path) -> str:
    """What a job writes into the FIFO at ``path`` (blocks until it has written)."""
    with trio.fail_after(WAIT_S):
        return await trio.to_thread.run_sync(path.read_text, abandon_on_cancel=True)
