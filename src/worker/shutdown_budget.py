"""The worker's graceful-stop time budget: every grace, drain and flush, in one place.

A SIGTERM stops the children of the worker's tree one after the other, in reverse
start order, each within its grace (``ChildSpec.grace_s``); the whole stop runs under
the deadline given to ``run_until_signalled``. Each actor's own stop timeouts must fit
its grace, and the graces must add up to that deadline, or the last children to stop
(the LogSink, which flushes every record) are cut short. So the parts are written here
once, each actor reads its own part, and the sums are computed (and checked) here::

    pipeline     locker, scheduler, job-watcher: a third of pipeline_grace_s each
    executor     jobs_s (Config.shutdown_grace_s) + kill_s (Config.kill_grace_s)
                 + pipe_drain_s + release_wait_s + margin_s
    registrar    flush_s (the sink's Flush) + revoke_s (the session lease)
    log-sink     store_drain_s + spill_s + durable_s
    metrics-http metrics_grace_s (counted even when metrics are off: 1 s of slack)
    alerts       alerts_grace_s (the alert deliverer: its sends are cut, rows stay due)
    live-output  live_output_grace_s (its last flush of what runs printed)
    ───────────
    total_s      what run_until_signalled is given

With the default Config (30 s for jobs, 5 s kill grace): 5 + 40 + 5 + 30 + 1 + 1 + 2.5
= 84.5 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from cluster.config import Config

from .executor.process import PIPE_DRAIN_S

__all__ = ["ExecutorBudget", "LogSinkBudget", "RegistrarBudget", "ShutdownBudget"]

PIPELINE_GRACE_S = 5.0
METRICS_GRACE_S = 1.0
# The alert deliverer stops at once: a send cut short leaves its row claimed, and it is
# sent again after the lease (receivers dedupe by event id).
ALERTS_GRACE_S = 1.0
# The live output's last flush (``live_output_flusher.STOP_FLUSH_S``) and a margin.
LIVE_OUTPUT_GRACE_S = 2.5


class _Parts:
    """All fields are seconds; the grace is their sum."""

    __slots__ = ()

    @property
    def grace_s(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{type(self).__name__}.{f.name} must be >= 0 s, not {value!r}")


@dataclass(frozen=True, slots=True)
class ExecutorBudget(_Parts):
    """The Executor's stop: runs finish, are killed, their records and keys are settled."""

    jobs_s: float  # running jobs may finish (Config.shutdown_grace_s)
    kill_s: float  # SIGTERM to SIGKILL for those that did not (Config.kill_grace_s)
    pipe_drain_s: float = PIPE_DRAIN_S  # EOF on a killed group's pipes
    release_wait_s: float = 2.0  # after the drain: pending key releases may still finish
    margin_s: float = 1.0

    @classmethod
    def from_config(cls, config: Config) -> ExecutorBudget:
        return cls(jobs_s=config.shutdown_grace_s, kill_s=config.kill_grace_s)


@dataclass(frozen=True, slots=True)
class RegistrarBudget(_Parts):
    """The Registrar's stop: flush the run records, then revoke the session lease."""

    # The sink answers a Flush once the records are stored or spilled (it spills when
    # the store is slower than SLOW_WRITE_S), so this is ample.
    flush_s: float = 3.0
    revoke_s: float = 2.0  # shielded: the lease goes even if the flush ran out of time


@dataclass(frozen=True, slots=True)
class LogSinkBudget(_Parts):
    """The LogSink's stop: write to the store, spill the rest, release the durable runs."""

    store_drain_s: float = 10.0  # store writes before the rest is spilled
    spill_s: float = 15.0  # what is left for spilling (unbounded by itself: a disk write)
    durable_s: float = 5.0  # on_durable (the runs' etcd keys) after the final spill


@dataclass(frozen=True, slots=True)
class ShutdownBudget:
    """The whole worker's stop, part by part, in seconds; ``total_s`` bounds it."""

    executor: ExecutorBudget
    registrar: RegistrarBudget
    log_sink: LogSinkBudget
    total_s: float  # given to run_until_signalled: the sum of the children's graces
    pipeline_grace_s: float = PIPELINE_GRACE_S
    metrics_grace_s: float = METRICS_GRACE_S
    alerts_grace_s: float = ALERTS_GRACE_S
    live_output_grace_s: float = LIVE_OUTPUT_GRACE_S

    def __post_init__(self) -> None:
        parts = self.children_grace_s()
        if not math.isclose(self.total_s, sum(parts.values())):
            raise ValueError(f"the shutdown budget's total {self.total_s} s is not the sum of "
                             f"its children's graces {parts}")

    @classmethod
    def from_config(cls, config: Config) -> ShutdownBudget:
        """The one place the budget is computed; the total is checked on construction."""
        executor = ExecutorBudget.from_config(config)
        registrar, log_sink = RegistrarBudget(), LogSinkBudget()
        total_s = (PIPELINE_GRACE_S + executor.grace_s + registrar.grace_s
                   + log_sink.grace_s + METRICS_GRACE_S + ALERTS_GRACE_S
                   + LIVE_OUTPUT_GRACE_S)
        return cls(executor, registrar, log_sink, total_s)

    @property
    def pipeline_child_grace_s(self) -> float:
        return self.pipeline_grace_s / 3  # locker, scheduler, job-watcher

    def children_grace_s(self) -> dict[str, float]:
        """Each child of the worker's root supervisor, and its grace."""
        return {
            "metrics-http": self.metrics_grace_s,
            "alerts": self.alerts_grace_s,
            "live-output": self.live_output_grace_s,
            "log-sink": self.log_sink.grace_s,
            "registrar": self.registrar.grace_s,
            "executor": self.executor.grace_s,
            "pipeline": self.pipeline_grace_s,
        }
