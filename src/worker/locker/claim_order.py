"""When this worker claims a fire: its rank among the live workers for that fire
(``placement``: a rendezvous hash), stretched by its load, and pushed behind every
in-step worker while its own clock is out of step with the fleet's (``fleet_clock``).

Shards on (``worker.shards``): a fire is ranked among its job's servers only (the R
workers of its slot its selector admits, over the worker's membership), so the first
choice still alternates fire by fire and the backup is the other server; a worker that
does not serve the job does not claim it at all (``serves``), nor records it skipped.

Kept apart from the Locker because it is the one piece of claim policy that depends
on what the worker knows of its fleet (the list, their clocks), not on etcd: the
Locker feeds it ``WorkersChanged`` and asks it, per fire, how long to wait.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cluster.presence import WorkerInfo
from cluster.store import RunTrigger

from worker.context import WorkerContext
from worker.messages import Fire
from worker.shards import ShardState
from .fleet_clock import deviations
from .placement import claim_delay_s, rank_of

__all__ = ["ClaimOrder", "fire_key"]

log = logging.getLogger("worker.locker.actor")  # its lines read as the Locker's


def fire_key(fire: Fire) -> str:
    """What the placement hashes: a fire's job and time (and attempt). Manual and
    chained runs have no fire time of their own: their run id stands in."""
    if fire.trigger in (RunTrigger.MANUAL, RunTrigger.CHAIN):
        return fire.run_id
    return f"{fire.spec.name}@{fire.planned_ms}#{fire.attempt}"


class ClaimOrder:
    """The fleet as this worker last heard of it, and who of it is in step."""

    def __init__(self, ctx: WorkerContext, shards: ShardState | None = None) -> None:
        self._ctx = ctx
        self._shards = shards if shards is not None else ShardState(ctx.worker_id)
        self.workers: tuple[WorkerInfo, ...] = ()
        self._off_step: dict[str, int] = {}  # out-of-step workers → ms from the median
        self._in_step: tuple[WorkerInfo, ...] = ()  # workers minus _off_step, per change
        self.clock_offset_ms = 0  # our clock minus the fleet's median (0 while unknown)

    @property
    def out_of_step(self) -> bool:
        return self._ctx.worker_id in self._off_step

    def workers_changed(self, workers: tuple[WorkerInfo, ...],
                        offsets_ms: Mapping[str, int]) -> None:
        """Who is out of step now; our own change of state is logged, once."""
        self.workers = workers
        me = self._ctx.worker_id
        limit_ms = self._ctx.config.max_clock_skew_s * 1000
        apart = deviations(offsets_ms)
        self.clock_offset_ms = apart.get(me, 0)
        was = self.out_of_step
        self._off_step = {w: d for w, d in apart.items() if abs(d) > limit_ms}
        self._in_step = tuple(w for w in workers if w.worker_id not in self._off_step)
        if self.out_of_step and not was:
            log.warning("clock skew: this worker's clock is %+d ms from the median of %d "
                        "workers' (limit --max-clock-skew-s %g s): it claims fires only "
                        "when no worker in step does", self.clock_offset_ms, len(apart),
                        self._ctx.config.max_clock_skew_s)
        elif was and not self.out_of_step:
            log.warning("clock skew: this worker is no longer out of step (%s)",
                        f"{self.clock_offset_ms:+d} ms from the fleet's median" if apart
                        else "fewer than three clocks known")

    def _early_s(self, fire: Fire) -> float:
        """How much sooner than the fleet's hand-over (the fire's time less the
        configured ``claim_lead_s``) this worker got a scheduled fire: its own lead
        grew (``worker.claim_lead``). A backup waits its rank from the fleet's
        hand-over, not its own: else a worker whose lead grew (its etcd slower, its
        machine busier) would take fires from the first choices whose lead did not."""
        if fire.trigger is not RunTrigger.SCHEDULE or fire.recovers:
            return 0.0
        handover_ms = fire.planned_ms - round(self._ctx.config.claim_lead_s * 1000)
        return max(0.0, (handover_ms - self._ctx.clock.now_ms()) / 1000)

    def serves(self, fire: Fire) -> bool:
        """Is this worker one of the fire's job's servers? Always, with shards off."""
        return self._shards.serves(fire.spec.name, fire.spec.selector)

    def nobody_serves(self, fire: Fire) -> bool:
        """Shards on, and no live worker can run the fire (``ShardState.plans``)."""
        return self._shards.on and not self._shards.servers(fire.spec.name, fire.spec.selector)

    def _candidates(self, fire: Fire) -> tuple[WorkerInfo, ...]:
        """The in-step workers the fire is ranked among: its job's servers, or all."""
        if not self._shards.on:
            return self._in_step
        servers = set(self._shards.servers(fire.spec.name, fire.spec.selector))
        return tuple(w for w in self._in_step if w.worker_id in servers)

    def delay_for(self, fire: Fire, running: int) -> float | None:
        """Seconds to wait before claiming ``fire``; None: not this worker (not
        eligible, or full)."""
        cfg = self._ctx.config
        candidates = self._candidates(fire)
        rank = rank_of(self._ctx.worker_id, cfg.labels, fire_key(fire), candidates,
                       fire.spec.selector)
        if rank is None:
            return None
        skew_ms = self._off_step.get(self._ctx.worker_id)
        if skew_ms is None:
            delay_s = claim_delay_s(rank, running, cfg.capacity, step_s=cfg.claim_step_s)
            return delay_s if not delay_s else delay_s + self._early_s(fire)
        # Out of step (``fleet_clock``): after every in-step eligible worker, and not
        # before the fire's time on the fleet's clock (its own clock plus its lead, if
        # ahead; never within the claim lead, since it would start as soon as granted).
        last = sum(1 for w in candidates if w.matches(fire.spec.selector))
        delay_s = claim_delay_s(last, running, cfg.capacity, step_s=cfg.claim_step_s)
        manual = fire.trigger in (RunTrigger.MANUAL, RunTrigger.CHAIN)
        due_ms = fire.planned_ms + max(0, skew_ms)
        wait_s = 0.0 if manual else max(0.0, (due_ms - self._ctx.clock.now_ms()) / 1000)
        return None if delay_s is None else wait_s + delay_s
