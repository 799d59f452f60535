"""Baseline (a): APScheduler 3's AsyncIOScheduler in one process, the same cron set.

    python benchmarks/peers/aps3.py PLAN.json RESULTS.json

No cluster and no locking: the most a single-process Python scheduler does. Spread
jobs are ``IntervalTrigger(seconds=1)`` started at their phase, burst jobs
``CronTrigger(second="*")``. Each fire spawns the probe with asyncio's subprocess
support (what an asyncio application would use), and ``start`` is taken when the
spawn returned, as for our workers. Settings match ours: no coalescing, a 5 s misfire
grace, and no limit on overlapping instances that the load could reach.

APScheduler 3 does not hand a job its scheduled time; the submission event does, just
before the job's coroutine is first scheduled, so it is queued per job and taken by
the coroutine. Run times that APScheduler passed over as misfires (older than the
grace) are dropped from the queue the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from peer_common import EXIT_MARGIN_MS, Plan, Recorder, wall_ms

MISFIRE_GRACE_S = 5
MAX_INSTANCES = 10_000


class Aps3Peer:
    def __init__(self, plan: Plan, recorder: Recorder) -> None:
        self.plan = plan
        self.recorder = recorder
        self.pending: dict[str, deque[datetime]] = defaultdict(deque)
        self.run_ids = itertools.count()
        self.scheduler = AsyncIOScheduler(timezone=timezone.utc, job_defaults={
            "coalesce": False, "max_instances": MAX_INSTANCES,
            "misfire_grace_time": MISFIRE_GRACE_S,
        })
        self.scheduler.add_listener(self.on_submitted, EVENT_JOB_SUBMITTED)

    def on_submitted(self, event: JobSubmissionEvent) -> None:
        self.pending[event.job_id].extend(event.scheduled_run_times)

    def planned_ms(self, job: str) -> int:
        queue = self.pending[job]
        horizon = datetime.now(timezone.utc) - timedelta(seconds=MISFIRE_GRACE_S)
        while len(queue) > 1 and queue[0] < horizon:
            queue.popleft()  # APScheduler skipped it as a misfire
        return round(queue.popleft().timestamp() * 1000)

    async def fire(self, job: str) -> None:
        planned_ms = self.planned_ms(job)
        proc = await asyncio.create_subprocess_exec(
            self.plan.bash, "-c", self.plan.command, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=self.plan.probe_env(planned_ms, f"aps3-{next(self.run_ids)}"),
            start_new_session=True,
        )
        start_ms = wall_ms()
        output, _ = await proc.communicate()
        self.recorder.add(job, planned_ms, start_ms, output)

    def add_jobs(self) -> None:
        for name, phase_ms in self.plan.jobs:
            if self.plan.mode == "spread":
                start = datetime.fromtimestamp((self.plan.anchor_ms + phase_ms) / 1000, timezone.utc)
                trigger = IntervalTrigger(seconds=1, start_date=start, timezone=timezone.utc)
            else:
                trigger = CronTrigger(second="*", timezone=timezone.utc)
            self.scheduler.add_job(self.fire, trigger, args=[name], id=name)

    async def run(self) -> None:
        self.add_jobs()
        self.scheduler.start()
        await asyncio.sleep(max(0.0, (self.plan.stop_ms - wall_ms()) / 1000))
        self.scheduler.pause()
        await asyncio.sleep(EXIT_MARGIN_MS / 1000)
        self.scheduler.shutdown(wait=False)


def main() -> None:
    plan_path, out_path = sys.argv[1:3]
    recorder = Recorder("apscheduler")
    recorder.dump_on_sigterm(out_path)
    asyncio.run(Aps3Peer(Plan.load(plan_path), recorder).run())
    recorder.dump(out_path)


if __name__ == "__main__":
    main()
