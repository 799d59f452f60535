"""Trio task steps and tasks spawned per fire by the Locker alone (issue 14, target 1).

    set -a; . /tmp/svc/env.txt; set +a    # SCHEDULER_TEST_ETCD=host:port
    PYTHONPATH=src python -m benchmarks.locker_steps [--fires 200] [--rate 100]

Why: CPU per fire cannot be measured on a loaded machine, but the trio work of a claim
can be counted, and it hardly depends on the load. This runs two real Lockers (two
workers' worth) against a real etcd, hands every fire to both as the Scheduler does
(``claim_lead_s`` ahead of its time, ``--rate`` fires a second, each of its own
``allow`` job), so that one is the fire's first choice and claims it, the other its
backup and checks it a rank's step later. A trio Instrument counts the task steps and
the tasks spawned from the first hand-over until every fire is decided, per fire (of
both workers together), grouped by task name (a run's id stripped). The etcd client's
steps are the same work before and after; the harness (the sender standing for the
Scheduler, the inbox readers) is counted apart, under "harness".
"""

from __future__ import annotations

import argparse
import os
import uuid

import trio
import trio.testing

from cluster.config import Config
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.locker.actor import Locker
from worker.locker.messages import Claim, WorkersChanged
from worker.mailboxes import open_mailboxes
from worker.messages import Fire
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import Granted

from ._steps import HARNESS, Steps

IDS = ("w1", "w2")


async def measure(steps: Steps, endpoint: str, fires: int, rate: float) -> int:
    """Returns how many fires were granted (each should be, once)."""
    cfg = Config()
    clock = SystemClock()
    ks = Keyspace(f"/steps-{uuid.uuid4().hex[:12]}/")
    infos = tuple(WorkerInfo(w, "h", 1) for w in IDS)
    granted = 0
    async with open_etcd([endpoint]) as etcd, trio.open_nursery() as nursery:
        to_lockers = []
        for worker_id in IDS:
            peers, inboxes = open_mailboxes(cfg)
            locker = Locker(inboxes.locker, WorkerContext(cfg, worker_id, ks, clock), etcd,
                            scheduler=peers.scheduler, executor=peers.executor)
            await nursery.start(locker.run)
            await peers.locker.send(SessionChanged((await etcd.grant_lease(30)).id))
            await peers.locker.send(WorkersChanged(infos))
            to_lockers.append(peers.locker)

            async def replies(inbox=inboxes.scheduler) -> None:
                nonlocal granted
                async for msg in inbox:
                    granted += isinstance(msg, Granted)

            nursery.start_soon(replies, name=f"{HARNESS} scheduler {worker_id}")
        # Warm up: the lock leases granted, the channels up.
        await send_fires(to_lockers, clock, cfg, 5, rate)
        await trio.sleep(1.0)
        granted = 0
        steps.on = True
        await send_fires(to_lockers, clock, cfg, fires, rate)
        with trio.move_on_after(5.0):
            while granted < fires:
                await trio.sleep(0.05)
        await trio.sleep(cfg.claim_step_s * 4)  # the backups' checks, after their step
        await trio.testing.wait_all_tasks_blocked(0.05)
        steps.on = False
        nursery.cancel_scope.cancel()
        await etcd.delete_prefix(ks.prefix)
    return granted


async def send_fires(to_lockers, clock, cfg: Config, fires: int, rate: float) -> None:
    for _ in range(fires):
        now = clock.now_ms()
        job = JobSpec.from_json({"name": f"steps-{uuid.uuid4().hex[:8]}", "command": "true",
                                 "cronExpr": "* * * * * *", "concurrency": "allow"})
        fire = Fire(job, now + round(cfg.claim_lead_s * 1000), now, RunTrigger.SCHEDULE,
                    uuid.uuid4().hex)
        for to_locker in to_lockers:
            await to_locker.send(Claim(fire))
        await trio.sleep(1 / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fires", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="fires a second")
    parser.add_argument("--endpoint", default=os.environ.get("SCHEDULER_TEST_ETCD"))
    args = parser.parse_args()
    steps = Steps()
    got = 0

    async def top() -> None:
        nonlocal got
        trio.lowlevel.current_task().name = f"{HARNESS} main"
        got = await measure(steps, args.endpoint, args.fires, args.rate)

    trio.run(top, instruments=[steps])
    n = args.fires
    print(f"{n} fires at {args.rate:g}/s over {len(IDS)} Lockers, {got} granted: per fire")
    print(f"{'steps':>8} {'spawned':>8}  task")
    for name in sorted(steps.steps.keys() | steps.spawned.keys(), key=lambda k: -steps.steps[k]):
        print(f"{steps.steps[name] / n:8.2f} {steps.spawned[name] / n:8.2f}  {name}")
    own = {k: v for k, v in steps.steps.items() if k != HARNESS}
    print(f"{sum(own.values()) / n:8.2f} "
          f"{sum(v for k, v in steps.spawned.items() if k != HARNESS) / n:8.2f}"
          f"  total, harness excluded")


if __name__ == "__main__":
    main()
