"""When a backup claims a fire whose owner's claim lead differs from its own: from the
fleet's hand-over instant (the fire's time less the configured claim lead), not from
its own adaptive one (``worker.claim_lead``), so a worker whose lead grew does not take
the fires of first choices whose lead did not. Pure: a fixed clock."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.context import WorkerContext
from worker.locker.claim_order import ClaimOrder, fire_key
from worker.locker.placement import rank_of
from worker.messages import Fire

NOW = 1_700_000_000_000
FLEET = tuple(WorkerInfo(w, "h", 1) for w in ("w0", "w1"))


class FixedClock:
    def now_ms(self) -> int:
        return NOW


def order() -> ClaimOrder:
    cfg = dataclasses.replace(Config(), claim_lead_s=0.2, claim_step_s=0.05)
    claim_order = ClaimOrder(WorkerContext(cfg, "w1", Keyspace(), FixedClock()))
    claim_order.workers_changed(FLEET, {})
    return claim_order


def fire_ranked(rank: int, planned_ms: int, trigger=RunTrigger.SCHEDULE) -> Fire:
    """A fire at ``planned_ms`` of which w1 is the ``rank``-th choice (the job varies)."""
    for n in range(100):
        spec = JobSpec.from_json({"name": f"j{n}", "command": "true",
                                  "cronExpr": "* * * * * *", "concurrency": "allow"})
        fire = Fire(spec, planned_ms, NOW, trigger, uuid.uuid4().hex)
        if rank_of("w1", {}, fire_key(fire), FLEET, {}) == rank:
            return fire
    raise AssertionError("no such fire")


def test_a_backup_handed_a_fire_early_waits_from_the_fleets_hand_over():
    fire = fire_ranked(1, NOW + 600)  # handed over 600 ms ahead: its lead grew
    assert order().delay_for(fire, running=0) == pytest.approx(0.4 + 0.05)


def test_a_first_choice_claims_at_once_however_early():
    assert order().delay_for(fire_ranked(0, NOW + 600), running=0) == 0.0


def test_a_backup_handed_over_at_the_fleets_time_or_later_waits_its_rank_only():
    assert order().delay_for(fire_ranked(1, NOW + 150), running=0) == pytest.approx(0.05)
    catch_up = fire_ranked(1, NOW - 5000, RunTrigger.CATCHUP)
    assert order().delay_for(catch_up, running=0) == pytest.approx(0.05)
    manual = fire_ranked(1, NOW + 600, RunTrigger.MANUAL)
    assert order().delay_for(manual, running=0) == pytest.approx(0.05)


def test_with_shards_a_fire_is_ranked_among_its_jobs_servers_only():
    """Four workers, R = 2: w1 claims only fires of jobs it serves, first for about half
    of them and second for the rest (never third or fourth: the others are not its
    job's servers), and is not a claimant at all of the other jobs' fires."""
    from cluster.presence import Serving
    from cluster.shard_settings import ShardSettings
    from worker.shards import ShardState
    fleet = tuple(WorkerInfo(w, "h", 1, serving=Serving("x", 4)) for w in ("w0", "w1", "w2", "w3"))
    shards = ShardState("w1", {}, ShardSettings(slots=64, replicas=2))
    shards.adopt(shards.proposed(fleet) or shards.fleet)
    cfg = dataclasses.replace(Config(), claim_lead_s=0.2, claim_step_s=0.05)
    claim_order = ClaimOrder(WorkerContext(cfg, "w1", Keyspace(), FixedClock()), shards)
    claim_order.workers_changed(fleet, {})
    delays = {}
    for n in range(400):
        spec = JobSpec.from_json({"name": f"j{n}", "command": "true", "cronExpr": "* * * * * *"})
        fire = Fire(spec, NOW, NOW, RunTrigger.SCHEDULE, uuid.uuid4().hex)
        served = "w1" in shards.servers(spec.name, {})
        assert claim_order.serves(fire) is served
        if served:
            delays[spec.name] = claim_order.delay_for(fire, running=0)
    assert 120 < len(delays) < 280  # about R/W = half of the jobs
    assert {round(d, 6) for d in delays.values()} == {0.0, 0.05}  # rank 0 or 1, never 2, 3
    firsts = sum(1 for d in delays.values() if d == 0.0)
    assert 0.3 < firsts / len(delays) < 0.7
