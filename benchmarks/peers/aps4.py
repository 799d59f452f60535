"""Baseline (c): one APScheduler 4 node (pre-release) sharing PostgreSQL and Redis.

    .venv-aps4/bin/python benchmarks/peers/aps4.py PLAN.json RESULTS.json \
        --node N --db postgresql+asyncpg://... --redis redis://... [--add-schedules]

APScheduler 4 is the distributed Python peer: every node runs an ``AsyncScheduler``
(scheduling and running jobs) on a shared SQLAlchemy data store (PostgreSQL; it cannot
use MariaDB) with a Redis event broker, and the data store's locks make each fire run
once. Node 0 adds the schedules; the others find them in the store. Settings match
ours: no coalescing, a 5 s misfire grace, room for every job to run at once. Spread
jobs start at their phase a little in the future (a start in the past would make the
first pass replay every missed second), burst jobs are ``CronTrigger(second="*")``.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timezone

from apscheduler import AsyncScheduler, CoalescePolicy, ConflictPolicy
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.eventbrokers.redis import RedisEventBroker
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

import aps4_task
from peer_common import EXIT_MARGIN_MS, Plan, Recorder, wall_ms

MISFIRE_GRACE_S = 5
MAX_CONCURRENT_JOBS = 10_000
START_AFTER_MS = 1500


def trigger_for(plan: Plan, phase_ms: int, now_ms: int):  # type: ignore[no-untyped-def]
    if plan.mode == "burst":
        return CronTrigger(second="*", timezone="UTC")
    first = ((now_ms + START_AFTER_MS) // 1000 + 1) * 1000 + phase_ms
    return IntervalTrigger(seconds=1, start_time=datetime.fromtimestamp(first / 1000, timezone.utc))


async def add_schedules(scheduler: AsyncScheduler, plan: Plan) -> None:
    now_ms = wall_ms()
    for name, phase_ms in plan.jobs:
        await scheduler.add_schedule(
            aps4_task.probe, trigger_for(plan, phase_ms, now_ms), id=name, args=[name],
            coalesce=CoalescePolicy.all, misfire_grace_time=MISFIRE_GRACE_S,
            conflict_policy=ConflictPolicy.replace,
        )


async def run(args: argparse.Namespace, plan: Plan) -> None:
    store = SQLAlchemyDataStore(args.db)
    broker = RedisEventBroker(args.redis)
    async with AsyncScheduler(store, broker, identity=f"node{args.node}",
                              max_concurrent_jobs=MAX_CONCURRENT_JOBS) as scheduler:
        if args.add_schedules:
            await add_schedules(scheduler, plan)
        await scheduler.start_in_background()
        await asyncio.sleep(max(0.0, (plan.stop_ms - wall_ms()) / 1000))
        if args.add_schedules:
            for name, _ in plan.jobs:
                await scheduler.remove_schedule(name)
        await asyncio.sleep(EXIT_MARGIN_MS / 1000)
        await scheduler.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("plan")
    parser.add_argument("out")
    parser.add_argument("--node", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--add-schedules", action="store_true")
    args = parser.parse_args()
    plan = Plan.load(args.plan)
    recorder = Recorder(f"aps4-node{args.node}")
    recorder.dump_on_sigterm(args.out)
    aps4_task.configure(plan, recorder)
    asyncio.run(run(args, plan))
    recorder.dump(args.out)


if __name__ == "__main__":
    main()
