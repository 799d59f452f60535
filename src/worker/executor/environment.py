"""The environment of one run.

The worker's own, minus ``SCHEDULER_*`` (the worker's settings, which may hold database
and etcd credentials), plus, when it runs as an account, that account's ``HOME``,
``USER`` and ``LOGNAME``, plus the job's ``env``, plus ``SCHEDULER_JOB_NAME``,
``SCHEDULER_RUN_ID``, ``SCHEDULER_PLAN_TIME_MS`` (the planned fire, epoch ms: a job can
measure its own lateness), ``SCHEDULER_TRIGGER`` and ``SCHEDULER_ATTEMPT``; for a
chained run (trigger ``chain``) also ``SCHEDULER_UPSTREAM_JOB``,
``SCHEDULER_UPSTREAM_RUN_ID`` and ``SCHEDULER_UPSTREAM_STATUS``: the run it follows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from worker.messages import Fire
from .run_as import Account

CONFIG_ENV_PREFIX = "SCHEDULER_"


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
    if fire.upstream is not None:
        env.update(SCHEDULER_UPSTREAM_JOB=fire.upstream.job,
                   SCHEDULER_UPSTREAM_RUN_ID=fire.upstream.run_id,
                   SCHEDULER_UPSTREAM_STATUS=fire.upstream.status)
    return env
