"""The task the APScheduler 4 nodes run: spawn the probe, note when and how late.

APScheduler 4 stores tasks by reference (``aps4_task:probe``), so the function lives in
a module of its own that every node imports; ``configure`` gives it the node's plan
and recorder before the scheduler starts.
"""

from __future__ import annotations

import asyncio
import itertools

from apscheduler import current_job

from peer_common import Plan, Recorder, wall_ms

_state: dict[str, object] = {}
_run_ids = itertools.count()


def configure(plan: Plan, recorder: Recorder) -> None:
    _state["plan"] = plan
    _state["recorder"] = recorder


async def probe(job: str) -> None:
    plan: Plan = _state["plan"]  # type: ignore[assignment]
    recorder: Recorder = _state["recorder"]  # type: ignore[assignment]
    scheduled = current_job.get().scheduled_fire_time
    planned_ms = round(scheduled.timestamp() * 1000)
    proc = await asyncio.create_subprocess_exec(
        plan.bash, "-c", plan.command, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=plan.probe_env(planned_ms, f"aps4-{recorder.node}-{next(_run_ids)}"),
        start_new_session=True,
    )
    start_ms = wall_ms()
    output, _ = await proc.communicate()
    recorder.add(job, planned_ms, start_ms, output)
