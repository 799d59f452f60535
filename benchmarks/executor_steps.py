"""Trio task steps and tasks spawned per run by the Executor alone (issue 14, target 1).

    PYTHONPATH=src python -m benchmarks.executor_steps [--runs 200] [--command true]

Why: CPU per fire cannot be measured on a loaded machine, but the trio work of a run
can be counted, and it does not depend on the load. This runs the real Executor (real
``bash`` children, held as in a worker, live output on) with the real ``StartMarks`` on
an etcd whose transactions succeed at once (so the marks' serving task is counted too)
and releases that return at once, sends ``--runs`` StartRuns one after the other
(each waits for the previous run's task to return, and its release if it has one, so
runs do not share wake-ups), and counts with a trio Instrument the task steps and the tasks
spawned from the first StartRun to the last run's end. It prints them per run, grouped
by task name (a run's id stripped). The runs are of a ``concurrency: allow`` job, as in
``benchmarks.latency``; ``--guarded``: of a ``forbid`` job (the default), whose end
releases its ``active/`` guard.

The harness's own tasks (the sender, the peers' inbox readers) are counted apart, under
"harness": they stand for the Scheduler and LogSink, which a real worker runs anyway.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid

import trio
import trio.testing

from cluster.config import Config
from cluster.etcd import TxnResult
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.executor.actor import Executor
from worker.executor.messages import KillRun, StartRun
from worker.executor.start_marks import StartMarks
from worker.live_output import LiveOutput
from worker.log_sink.messages import Write
from worker.mailboxes import open_mailboxes
from worker.messages import Fire, Run

from ._steps import HARNESS, Steps



def make_run(command: str, guarded: bool) -> Run:
    job = JobSpec.from_json({"name": "steps", "command": command, "cronExpr": "* * * * *",
                             "concurrency": "forbid" if guarded else "allow"})
    now_ms = time.time_ns() // 1_000_000
    fire = Fire(job, planned_ms=now_ms, fired_ms=now_ms, trigger=RunTrigger.SCHEDULE,
                run_id=uuid.uuid4().hex)
    return Run(fire, session_lease=1, guarded=guarded)


class InstantEtcd:
    """Every transaction succeeds, after one checkpoint (a real one waits at least once)."""

    async def txn(self, compare, success=(), failure=(), *, timeout_s=None) -> TxnResult:
        await trio.lowlevel.checkpoint()
        return TxnResult(succeeded=True, revision=1, responses=())


async def measure(steps: Steps, runs: int, command: str, kill: bool, guarded: bool) -> None:
    config = dataclasses.replace(Config(), kill_grace_s=1.0)
    peers, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, "worker-steps", Keyspace("/cron/"), SystemClock())
    released = trio.Semaphore(0)

    async def release(run: Run) -> None:
        released.release()

    executor = Executor(inboxes.executor, ctx, scheduler=peers.scheduler,
                        log_sink=peers.log_sink, release=release,
                        marks=StartMarks(InstantEtcd(), ctx.keyspace, ctx.worker_id, ctx.clock,
                                         size=config.mailbox_size),
                        live=LiveOutput(SystemClock()))
    async with trio.open_nursery() as nursery:
        await nursery.start(executor.run)

        async def drain(inbox) -> None:  # the Locker's mailbox
            async for _ in inbox:
                pass

        nursery.start_soon(drain, inboxes.locker, name=f"{HARNESS} locker")
        await trio.sleep(0.2)
        steps.on = True
        for _ in range(runs):
            run = make_run(command, guarded)
            await peers.executor.send(StartRun(run))
            if kill:
                await trio.sleep(0.05)
                await peers.executor.send(KillRun("steps", run.fire.run_id))
            msg = await inboxes.log_sink.receive()
            assert isinstance(msg, Write), msg
            while executor.tasks_running:  # its task returns once its release started
                await trio.sleep(0.001)
            if guarded:
                await released.acquire()
        await trio.testing.wait_all_tasks_blocked(0.05)
        steps.on = False
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--command", default="true")
    parser.add_argument("--kill", action="store_true", help="kill each run 50 ms in")
    parser.add_argument("--guarded", action="store_true",
                        help="runs of a concurrency: forbid job (they release a guard)")
    args = parser.parse_args()
    steps = Steps()

    async def top() -> None:
        trio.lowlevel.current_task().name = f"{HARNESS} main"
        await measure(steps, args.runs, args.command, args.kill, args.guarded)

    trio.run(top, instruments=[steps])
    n = args.runs
    print(f"{n} runs of {args.command!r}{' (killed)' if args.kill else ''}"
          f"{' (guarded)' if args.guarded else ''}: per run")
    print(f"{'steps':>8} {'spawned':>8}  task")
    for name in sorted(steps.steps, key=lambda k: -steps.steps[k]):
        print(f"{steps.steps[name] / n:8.2f} {steps.spawned[name] / n:8.2f}  {name}")
    own = {k: v for k, v in steps.steps.items() if k != HARNESS}
    print(f"{sum(own.values()) / n:8.2f} {sum(v for k, v in steps.spawned.items() if k != HARNESS) / n:8.2f}"
          f"  total, harness excluded")
    print(f"{sum(steps.steps.values()) / n:8.2f} {sum(steps.spawned.values()) / n:8.2f}"
          f"  total")


if __name__ == "__main__":
    main()
