"""The Scheduler with shards on: a job handed over to other workers leaves the plan but
its runs here are not killed (it was not deleted); one deleted after that is."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from cluster.store import RunStatus
from worker.executor.messages import KillRun, StartRun
from worker.messages import Run
from worker.scheduler.messages import Granted, JobDeleted, JobSaved, JobsSnapshot, TriggerRequested

from test_scheduler import T0, Harness, spec


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_job_handed_over_stops_firing_here_and_its_claimed_run_still_starts(
        autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("h", "* * * * * *"),), 1, {}))
        [(claim, _)] = await h.claims_until(T0 + 1_500)
        await h.send(JobSaved(spec("h", "* * * * * *"), serve=False))  # others serve it
        run = Run(claim.fire, session_lease=7, guarded=False)
        await h.send(Granted(run))  # its claim was in flight
        assert await h.claims_until(T0 + 5_000) == []
        sent = h.pending(h.inboxes.executor)
        await h.send(JobDeleted("h"))  # now deleted: its run here is killed
        await trio.testing.wait_all_tasks_blocked()
        after = h.pending(h.inboxes.executor)
        nursery.cancel_scope.cancel()
    assert sent == [StartRun(run)]
    assert after == [KillRun("h", None, RunStatus.KILLED, "job deleted")]


async def test_a_snapshot_that_hands_jobs_over_kills_nothing(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("a", "* * * * * *"), spec("b", "* * * * * *")), 1, {}))
        assert len(await h.claims_until(T0 + 1_500)) == 2
        await h.send(JobsSnapshot((spec("a", "* * * * * *"),), 2, {},
                                  handed_over=frozenset({"b"})))
        claims = await h.claims_until(T0 + 4_500)
        kills = h.pending(h.inboxes.executor)
        nursery.cancel_scope.cancel()
    assert {c.fire.spec.name for c, _ in claims} == {"a"} and len(claims) == 3
    assert kills == []


async def test_a_run_now_held_for_a_job_served_elsewhere_is_dropped_at_once(autojump_clock):
    """Regression: a run-now that came before its job is held for it; when the job
    turns out to be served by other workers (its put, or a re-read that hands it over)
    the request is theirs, and was held here for the whole hold time all the same."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("b", "@yearly"),), 1, {}))
        await h.send(TriggerRequested("a", "run-1", T0))
        await h.send(TriggerRequested("b2", "run-2", T0))
        await h.send(JobSaved(spec("a", "@yearly"), serve=False))
        await trio.testing.wait_all_tasks_blocked()
        after_put = dict(h.scheduler._pending_triggers)
        await h.send(JobsSnapshot((spec("b", "@yearly"),), 2, {},
                                  handed_over=frozenset({"b2"})))
        await trio.testing.wait_all_tasks_blocked()
        after_read = dict(h.scheduler._pending_triggers)
        claims = await h.claims_until(T0 + 2_000)
        nursery.cancel_scope.cancel()
    assert set(after_put) == {"b2"} and after_read == {}
    assert claims == []


async def test_a_job_handed_over_then_deleted_unseen_has_its_run_here_killed(autojump_clock):
    """Regression: a full snapshot (after a compaction) that no longer names a job handed
    over earlier means it was deleted meanwhile: its run still going here is killed."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("a", "* * * * * *"), spec("h", "* * * * * *")), 1, {}))
        claims = await h.claims_until(T0 + 1_500)
        await h.send(JobsSnapshot((spec("a", "* * * * * *"),), 2, {},
                                  handed_over=frozenset({"h"})))
        [claim] = [c for c, _ in claims if c.fire.spec.name == "h"]
        await h.send(Granted(Run(claim.fire, session_lease=7, guarded=False)))
        await h.send(JobsSnapshot((spec("a", "* * * * * *"),), 3, {}))  # h is gone
        await trio.testing.wait_all_tasks_blocked()
        sent = h.pending(h.inboxes.executor)
        nursery.cancel_scope.cancel()
    assert sent[-1] == KillRun("h", None, RunStatus.KILLED, "job deleted")


async def test_kept_jobs_are_not_resent_and_keep_firing_from_their_entry(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("a", "* * * * * *"), spec("b", "* * * * * *")), 1, {}))
        assert len(await h.claims_until(T0 + 1_500)) == 2
        await h.send(JobsSnapshot((spec("c", "* * * * * *"),), 2, {},
                                  handed_over=frozenset({"b"}), kept=frozenset({"a"})))
        claims = await h.claims_until(T0 + 4_500)
        kills = h.pending(h.inboxes.executor)
        nursery.cancel_scope.cancel()
    fired = sorted((c.fire.spec.name, c.fire.planned_ms) for c, _ in claims)
    assert {name for name, _ in fired} == {"a", "c"} and kills == []
    assert [t for name, t in fired if name == "a"] == [T0 + 2_000, T0 + 3_000, T0 + 4_000]
