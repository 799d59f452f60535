"""The Scheduler under a mock clock: exact wake-ups, pause, delete, skip, retry, catch-up."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import trio
import trio.testing

from fire_kit import one_per_fire
from mailbox_kit import queued

from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster import retries
from cluster.presence import CLAIMED, STARTED, RunningInfo
from cluster.retries import RETRY_JITTER, PendingRetry
from cluster.spec import MAX_RETRY_BACKOFF_S, JobSpec, SpecError
from cluster.store import RunStatus, RunTrigger
from worker.claim_lead import WINDOW_S, ClaimLead
from worker.clock import TrioWallClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.executor.messages import KillRun, StartRun
from worker.locker.messages import Claim, ClaimLost, PersistRetry
from worker.log_sink.messages import Write
from worker.messages import Fire, Run
from worker.scheduler.actor import Scheduler
from worker.scheduler.messages import (
    Denied,
    Granted,
    JobDeleted,
    JobSaved,
    JobsSnapshot,
    QuorumBack,
    RetryRequested,
    RunEnded,
    RunVanished,
    TriggerRequested,
)
from worker.scheduler.plan import WINDOW_REACH_MS

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, a whole second


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def spec(name: str, expr: str, **extra) -> JobSpec:
    return JobSpec.from_json({"name": name, "command": "true", "cronExpr": expr, **extra})


class Harness:
    def __init__(self, nursery: trio.Nursery, **config) -> None:
        cfg = dataclasses.replace(Config(), **config)
        self.clock = TrioWallClock(T0)
        self.peers, self.inboxes = open_mailboxes(cfg)
        self.ctx = WorkerContext(cfg, "w1", Keyspace("/cron/"), self.clock)
        self.lead = ClaimLead(self.clock, cfg.claim_lead_s)  # the test plays the Locker
        self.scheduler = Scheduler(self.inboxes.scheduler, self.ctx, locker=self.peers.locker,
                                   executor=self.peers.executor, log_sink=self.peers.log_sink,
                                   lead=self.lead)
        self.persisted: list[tuple[PendingRetry, int]] = []
        nursery.start_soon(self.scheduler.run)

    async def send(self, msg) -> None:
        await self.peers.scheduler.send(msg)

    async def claims_until(self, wall_ms: int) -> list[tuple[Claim, int]]:
        """Every Claim sent to the Locker until the wall clock reads ``wall_ms``,
        with the wall time it was received at. A pending retry to keep comes back as
        etcd's watch brings it to every worker (``RetryRequested``), and is noted."""
        got = []
        with trio.move_on_at(trio.current_time() + (wall_ms - self.clock.now_ms()) / 1000):
            async for msg in self.inboxes.locker:
                if isinstance(msg, PersistRetry):
                    self.persisted.append((msg.retry, self.clock.now_ms()))
                    await self.send(RetryRequested(msg.retry))
                    continue
                got += [(claim, self.clock.now_ms()) for claim in one_per_fire([msg])]
        return got

    def pending(self, inbox) -> list:
        if inbox is self.inboxes.locker:
            return [claim for claim in one_per_fire(queued(inbox))]
        return queued(inbox)


@pytest.mark.parametrize(("lead_s", "concurrency", "early_ms"), [
    (0.0, "allow", 0), (0.05, "allow", 50), (0.3, "allow", 300),
    (0.05, "forbid", 0), (0.3, "replace", 0),  # judged at the fire time itself
])
async def test_fires_exactly_when_due(autojump_clock, lead_s, concurrency, early_ms):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, claim_lead_s=lead_s)
        jobs = (spec("two", "*/2 * * * * *", concurrency=concurrency),
                spec("five", "*/5 * * * * *", concurrency=concurrency))
        await h.send(JobsSnapshot(jobs, 1, {}))
        got = await h.claims_until(T0 + 10_500)
        nursery.cancel_scope.cancel()
    fires = [(c.fire.spec.name, c.fire.planned_ms) for c, _ in got]
    assert [t for _, t in fires] == sorted(t for _, t in fires)
    assert sorted(fires) == sorted([
        ("two", T0 + 2000), ("two", T0 + 4000), ("five", T0 + 5000), ("two", T0 + 6000),
        ("two", T0 + 8000), ("five", T0 + 10000), ("two", T0 + 10000),
    ])
    for claim, received_ms in got:
        # Neither a ms late nor early: the claim is settled by the time it is due.
        assert received_ms == claim.fire.planned_ms - early_ms == claim.fire.fired_ms
        assert claim.fire.trigger is RunTrigger.SCHEDULE
    assert len({c.fire.run_id for c, _ in got}) == 7


async def test_a_thin_window_hands_allow_fires_over_together_up_to_a_second_ahead(
        autojump_clock):
    """Issue 14 target 4: at a low rate a window reaches up to WINDOW_REACH_MS further
    (``plan``), so one wake-up hands over several fires (one claim transaction, one
    mark), each at least a lead and less than lead + 1 s before its time; forbid fires
    still at their time. Each fire once, in time order."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, claim_lead_s=0.2)
        jobs = [spec(f"a{i}", "@every 10s", concurrency="allow", createdAt=T0 + i * 150)
                for i in range(10)]  # a0 at 10000, a1 at 10150, ... a9 at 11350
        jobs.append(spec("f", "@every 10s", createdAt=T0 + 1400))  # forbid at 11400
        await h.send(JobsSnapshot(tuple(jobs), 1, {}))
        got = await h.claims_until(T0 + 12_000)
        nursery.cancel_scope.cancel()
    fires = [(c.fire.spec.name, c.fire.planned_ms - T0, at - T0) for c, at in got]
    assert [t for _, t, _ in fires] == sorted(t for _, t, _ in fires)
    # a0 due at 9800 opens the window: a1..a6 (due 9950..10700) come with it, less than
    # WINDOW_REACH_MS after; a7 (due 10850) opens the next, f waits for its time.
    assert fires == [(f"a{i}", 10000 + i * 150, 9800) for i in range(7)] + \
        [(f"a{i}", 10000 + i * 150, 10850) for i in range(7, 10)] + [("f", 11400, 11400)]
    for claim, at in got:
        assert claim.fire.fired_ms == at
        ahead_ms = claim.fire.planned_ms - at
        assert ahead_ms == 0 if claim.fire.spec.name == "f" else \
            200 <= ahead_ms < 200 + WINDOW_REACH_MS


async def test_slow_claims_hand_allow_fires_over_earlier_until_they_are_fast_again(
        autojump_clock):
    """The lead follows the claims (``worker.claim_lead``): read at each wake-up, so
    the fire after the one it learns of is handed over earlier; forbid fires never are.
    Every fire is handed over once, in time order."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, claim_lead_s=0.2)
        await h.send(JobsSnapshot((spec("a", "* * * * * *", concurrency="allow"),
                                   spec("f", "* * * * * *")), 1, {}))
        got = await h.claims_until(T0 + 2_500)
        for _ in range(5):  # claims took 380 ms from their hand-over: lead 500 ms
            h.lead.observed(380)
        got += await h.claims_until(T0 + 18_000)
        lead_ms = h.scheduler.statistics_detail().claim_lead_ms
        nursery.cancel_scope.cancel()
    early = {(c.fire.spec.name, c.fire.planned_ms - T0): c.fire.planned_ms - at
             for c, at in got}
    assert len(early) == len(got) == 17 + 18  # each fire once: f 1..17 s, a 1..18 s
    assert {ms for (name, _), ms in early.items() if name == "f"} == {0}
    allow = [early[("a", s * 1000)] for s in range(1, 19)]
    # 200 ms ahead; 500 from the fire after the wake-up that read the slow claims; back
    # to 200 once they are WINDOW_S old (noted at 2.5 s: forgotten from 12.5 s).
    assert allow == [200] * 3 + [500] * 10 + [200] * 5, str(allow)
    assert round(WINDOW_S) == 10 and lead_ms == 200


async def test_paused_job_never_fires_and_resumes_without_reset(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("p", "* * * * * *", paused=True),), 1, {}))
        assert await h.claims_until(T0 + 5_500) == []
        await h.send(JobSaved(spec("p", "* * * * * *")))
        got = await h.claims_until(T0 + 8_500)
        nursery.cancel_scope.cancel()
    assert [c.fire.planned_ms for c, _ in got] == [T0 + 6000, T0 + 7000, T0 + 8000]


async def test_deleting_a_job_stops_its_fires_and_kills_its_runs(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("d", "* * * * * *"),), 1, {}))
        assert len(await h.claims_until(T0 + 2_500)) == 2
        await h.send(JobDeleted("d"))
        assert await h.claims_until(T0 + 6_000) == []
        kills = h.pending(h.inboxes.executor)
        nursery.cancel_scope.cancel()
    assert kills == [KillRun("d", None, RunStatus.KILLED, "job deleted")]


async def test_a_claim_granted_after_its_job_was_deleted_is_killed_before_it_starts(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("d", "* * * * * *"),), 1, {}))
        [(claim, _)] = await h.claims_until(T0 + 1_500)
        await h.send(JobDeleted("d"))  # while the claim was in flight
        run = Run(claim.fire, session_lease=7, guarded=False)
        await h.send(Granted(run))
        await trio.testing.wait_all_tasks_blocked()
        sent = h.pending(h.inboxes.executor)
        nursery.cancel_scope.cancel()
    # The run is handed over (its keys are released with its record) and stopped.
    assert sent == [KillRun("d", None, RunStatus.KILLED, "job deleted"), StartRun(run),
                    KillRun("d", claim.fire.run_id, RunStatus.KILLED, "job deleted")]


async def test_a_denied_fire_with_skip_right_is_recorded_as_skipped(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("f", "* * * * * *"),), 1, {}))
        [(claim, _)] = await h.claims_until(T0 + 1_500)
        await h.send(Denied(claim.fire, "still running (concurrency forbid)", record_skip=True))
        await h.send(Denied(claim.fire, "taken"))  # someone else's: nothing to record
        await trio.testing.wait_all_tasks_blocked()
        records = h.pending(h.inboxes.log_sink)
        nursery.cancel_scope.cancel()
    assert len(records) == 1 and isinstance(records[0], Write)
    record = records[0].record
    assert record.status is RunStatus.SKIPPED
    assert (record.job_name, record.plan_time, record.run_id) == ("f", T0 + 1000, claim.fire.run_id)
    assert "forbid" in record.err


async def test_failed_run_is_retried_with_backoff_for_the_same_fire(autojump_clock, monkeypatch):
    monkeypatch.setattr(retries, "RETRY_JITTER", 0.0)  # exact times (jitter: below)
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        job = spec("r", "0 * * * * *", retries=2, retryBackoff=3)
        await h.send(JobsSnapshot((job,), 1, {}))
        [(claim, _)] = await h.claims_until(T0 + 40_500)  # 22:14:00
        await h.send(RunEnded(Run(claim.fire, 1, False), RunStatus.FAILED))
        got = await h.claims_until(T0 + 45_000)
        [(retry, at_ms)] = got
        assert retry.fire.trigger is RunTrigger.RETRY and retry.fire.attempt == 2
        assert retry.fire.planned_ms == claim.fire.planned_ms
        assert at_ms == T0 + 40_500 + 3_000
        await h.send(RunEnded(Run(retry.fire, 1, False), RunStatus.TIMEOUT))
        [(third, at_ms)] = await h.claims_until(T0 + 52_000)
        assert third.fire.attempt == 3 and at_ms == T0 + 45_000 + 6_000  # doubled
        await h.send(RunEnded(Run(third.fire, 1, False), RunStatus.FAILED))
        later = await h.claims_until(T0 + 100_500)  # retries used up; 22:15:00 is next
        nursery.cancel_scope.cancel()
    assert [c.fire.trigger for c, _ in later] == [RunTrigger.SCHEDULE]
    # Each was kept in etcd first (every worker plans it from there), as it ran.
    assert [(r.run_id, r.attempt, r.due_ms, r.planned_ms) for r, _ in h.persisted] == [
        (retry.fire.run_id, 2, T0 + 43_500, T0 + 40_000),
        (third.fire.run_id, 3, T0 + 51_000, T0 + 40_000)]


async def test_a_retry_kept_by_another_worker_is_claimed_at_its_time_once(autojump_clock):
    """A retry another worker wrote (it may have died since) comes with the watch: it is
    claimed at its due time, as the job is now, under its own run id; seen twice (a
    re-read of retry/), it is still claimed once."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("r", "@yearly", retries=3, command="v2"),), 1, {}))
        pending = PendingRetry("r", "retry-7", T0 - 60_000, 3, T0 + 12_345)
        await h.send(RetryRequested(pending))
        await h.send(RetryRequested(pending))
        got = await h.claims_until(T0 + 30_000)
        nursery.cancel_scope.cancel()
    [(claim, at_ms)] = got
    assert at_ms == T0 + 12_345
    f = claim.fire
    assert (f.run_id, f.attempt, f.planned_ms, f.trigger, f.spec.command) == \
        ("retry-7", 3, T0 - 60_000, RunTrigger.RETRY, "v2")


def test_retry_backoff_doubles_to_its_cap_and_jitter_only_shortens():
    import random
    rng = random.Random(7)
    for failed, backoff_s in ((1, 10), (2, 20), (3, 40), (8, 1280), (9, 2000), (30, 2000)):
        dues = [retries.retry_due_ms(0, 10, 2000, failed, rng=rng) for _ in range(200)]
        assert all(0.9 * backoff_s * 1000 <= d <= backoff_s * 1000 for d in dues), (failed, dues)
        assert min(dues) < 0.93 * backoff_s * 1000 and max(dues) > 0.97 * backoff_s * 1000


async def test_the_retry_backoff_cap_is_the_largest_retry_backoff_a_spec_accepts(autojump_clock):
    # Regression: the spec accepted retryBackoff up to 1 day while the Scheduler capped
    # every wait at 1 h, so a job saved with 2 h was retried after 1 h.
    assert spec("ok", "0 0 0 * * *", retryBackoff=MAX_RETRY_BACKOFF_S).retry_backoff_s \
        == MAX_RETRY_BACKOFF_S
    with pytest.raises(SpecError, match="retryBackoff"):
        spec("too-long", "0 0 0 * * *", retryBackoff=MAX_RETRY_BACKOFF_S + 1)
    first_s = 7_200  # 2 h: more than the old cap
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        job = spec("r", "0 0 0 * * *", retries=5, retryBackoff=first_s, startingDeadline=0)
        await h.send(JobsSnapshot((job,), 1, {}))
        [(claim, _)] = await h.claims_until(T0 + 6_500_000)  # midnight
        fire, ended_ms, waits = claim.fire, h.clock.now_ms(), []
        for _ in range(5):
            await h.send(RunEnded(Run(fire, 1, False), RunStatus.FAILED))
            fire, at_ms = await next_retry(h, ended_ms + 2 * MAX_RETRY_BACKOFF_S * 1000)
            waits.append((at_ms - ended_ms) / 1000)
            ended_ms = at_ms
        nursery.cancel_scope.cancel()
    # 2 h, 4 h, 8 h, 16 h, then the cap: the largest backoff a spec may ask for (1 day);
    # each shortened by the jitter, up to RETRY_JITTER of it, never lengthened.
    nominal = [7_200, 14_400, 28_800, 57_600, MAX_RETRY_BACKOFF_S]
    assert all((1 - RETRY_JITTER) * n <= w <= n for w, n in zip(waits, nominal, strict=True)), waits


async def next_retry(h: Harness, until_ms: int) -> tuple[Fire, int]:
    """The next retry claimed, and the wall time it was claimed at (schedule fires aside)."""
    with trio.move_on_at(trio.current_time() + (until_ms - h.clock.now_ms()) / 1000):
        async for msg in h.inboxes.locker:
            if isinstance(msg, PersistRetry):  # kept in etcd; its watch brings it back
                await h.send(RetryRequested(msg.retry))
            elif isinstance(msg, Claim) and msg.fire.trigger is RunTrigger.RETRY:
                return msg.fire, h.clock.now_ms()
    raise AssertionError(f"no retry claimed by {until_ms}")


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.KILLED, RunStatus.REPLACED])
async def test_no_retry_after_success_kill_or_replace(autojump_clock, status):
    """A replaced run is no failure: the run that took its place is the job's run."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("s", "*/30 * * * * *", retries=3, retryBackoff=1),), 1, {}))
        [(claim, _)] = await h.claims_until(T0 + 10_500)
        await h.send(RunEnded(Run(claim.fire, 1, False), status))
        got = await h.claims_until(T0 + 20_000)
        nursery.cancel_scope.cancel()
    assert got == [] and h.persisted == []


async def catch_ups(job: JobSpec, last_fired_ms: int) -> list[Fire]:
    """The fires a worker starting at T0 claims for ``job``, last fired at ``last_fired_ms``
    (its state/ key), with every worker down in between."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((job,), 1, {job.name: last_fired_ms}))
        got = await h.claims_until(T0 + 500)
        nursery.cancel_scope.cancel()
    assert all(c.fire.trigger is RunTrigger.CATCHUP for c, _ in got)
    return [c.fire for c, _ in got]


async def test_a_job_whose_outage_a_worker_back_earlier_catches_up_is_not_caught_up_here(
        autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        job = spec("c", "*/10 * * * * *", startingDeadline=45)
        await h.send(JobsSnapshot((job,), 1, {job.name: T0 - 80_000}, frozenset({"c"})))
        got = await h.claims_until(T0 + 500)
        nursery.cancel_scope.cancel()
    assert [c.fire.trigger for c, _ in got] == []  # its next scheduled fire is later


async def test_catch_up_last_runs_the_job_once_for_every_missed_fire(autojump_clock):
    # Last fired 22:12:00; now 22:13:20: within 45 s are :40, :50, :00, :10, :20.
    [fire] = await catch_ups(spec("c", "*/10 * * * * *", startingDeadline=45), T0 - 80_000)
    assert (fire.planned_ms, fire.missed_fires, fire.first_missed_ms) == (T0, 5, T0 - 40_000)
    assert fire.catch_up_after_ms == T0 - 80_000  # one run per outage, fleet-wide
    assert fire.last_missed_ms == T0


async def test_catch_up_all_runs_each_missed_fire_in_order(autojump_clock):
    fires = await catch_ups(spec("c", "*/10 * * * * *", startingDeadline=45, catchUp="all"),
                            T0 - 80_000)
    assert [f.planned_ms for f in fires] == [T0 - 40_000, T0 - 30_000, T0 - 20_000, T0 - 10_000, T0]
    assert {(f.missed_fires, f.first_missed_ms) for f in fires} == {(5, T0 - 40_000)}
    assert len({f.run_id for f in fires}) == 5
    # One outage, fleet-wide (whoever claims first runs the set), and each claim moves
    # the cursor past the whole set.
    assert {(f.catch_up_after_ms, f.last_missed_ms) for f in fires} == {(T0 - 80_000, T0)}


@pytest.mark.parametrize(("deadline_s", "missed"), [(40, 5), (39.999, 4), (10, 2), (9.999, 1)])
async def test_a_fire_exactly_starting_deadline_old_is_still_caught_up(
        autojump_clock, deadline_s, missed):
    fires = await catch_ups(spec("c", "*/10 * * * * *", startingDeadline=deadline_s,
                                 catchUp="all"), T0 - 80_000)
    assert [f.planned_ms for f in fires] == [T0 - 10_000 * i for i in reversed(range(missed))]
    assert {(f.missed_fires, f.first_missed_ms) for f in fires} == \
        {(missed, T0 - 10_000 * (missed - 1))}


async def test_catch_up_never_runs_more_than_100_fires_the_most_recent(autojump_clock):
    """Every second for 300 s missed, 250 s of deadline: 251 fire times within it
    (both ends count). ``all`` runs the 100 most recent, in order; each record says 251."""
    job = spec("s", "* * * * * *", startingDeadline=250, catchUp="all", concurrency="allow")
    fires = await catch_ups(job, T0 - 300_000)
    assert [f.planned_ms for f in fires] == [T0 - 1000 * i for i in reversed(range(100))]
    assert {(f.missed_fires, f.first_missed_ms) for f in fires} == {(251, T0 - 250_000)}
    [last] = await catch_ups(dataclasses.replace(job, catch_up="last"), T0 - 300_000)
    assert (last.planned_ms, last.missed_fires, last.first_missed_ms) == (T0, 251, T0 - 250_000)


async def test_nothing_is_caught_up_when_the_last_fire_is_the_latest(autojump_clock):
    assert await catch_ups(spec("c", "*/10 * * * * *", startingDeadline=45), T0) == []
    # Last fired before the deadline, nothing since within it: none either.
    assert await catch_ups(spec("c", "0 0 * * * *", startingDeadline=45), T0 - 80_000) == []


async def test_after_quorum_returns_the_outage_fires_are_caught_up(autojump_clock, caplog):
    """etcd had no quorum from T0+30 s: the Locker claimed nothing. Once it is back
    (T0+69.8 s), every fire within startingDeadline (25 s) is claimed again as a
    catch-up, including the one handed over ahead of its time (lead 0.3 s: 70 s); a
    job without startingDeadline gets none. ``catchUp: all`` runs each, ``last`` (the
    default) the latest, once, with the count. One line says so, with the span."""
    caplog.set_level(logging.WARNING)
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, claim_lead_s=0.3)
        jobs = (spec("c", "*/10 * * * * *", startingDeadline=25, concurrency="allow",
                     catchUp="all"),
                spec("l", "*/10 * * * * *", startingDeadline=25, concurrency="allow"),
                spec("n", "*/10 * * * * *", concurrency="allow"))
        await h.send(JobsSnapshot(jobs, 1, {}))
        scheduled = await h.claims_until(T0 + 69_800)
        await h.send(QuorumBack(T0 + 30_000))
        got = await h.claims_until(T0 + 69_900)
        nursery.cancel_scope.cancel()
    assert sorted(c.fire.planned_ms for c, _ in scheduled if c.fire.spec.name == "c") == \
        [T0 + 10_000 * i for i in range(1, 8)]
    assert sorted((c.fire.spec.name, c.fire.planned_ms, c.fire.missed_fires)
                  for c, _ in got) == \
        [("c", T0 + 50_000, 3), ("c", T0 + 60_000, 3), ("c", T0 + 70_000, 3),
         ("l", T0 + 70_000, 3)]
    assert [c.fire.planned_ms for c, _ in got if c.fire.spec.name == "c"] == \
        [T0 + 50_000, T0 + 60_000, T0 + 70_000]
    assert all(c.fire.trigger is RunTrigger.CATCHUP for c, _ in got)
    lines = [r.getMessage() for r in caplog.records if "quorum back" in r.getMessage()]
    assert lines == ["etcd quorum back: catching up 4 fires of 2 jobs missed since "
                     "2023-11-14T22:13:50.000+00:00, planned 2023-11-14T22:14:10.000+00:00 "
                     "to 2023-11-14T22:14:30.000+00:00 (within startingDeadline; catchUp "
                     "last: the most recent, all: each, at most 100 a job)"]


async def test_after_quorum_returns_a_fire_a_thin_window_reached_is_caught_up_too(
        autojump_clock):
    """A thin window hands ``w``'s fire at 70.9 s over with ``a``'s at 70 s, at 69.7 s
    (``plan``: up to a lead plus 1 s ahead); its claim was dropped with the outage's, so
    the catch-up at 69.8 s covers it, though its time has not come."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, claim_lead_s=0.3)
        jobs = (spec("a", "*/10 * * * * *", startingDeadline=25, concurrency="allow"),
                spec("w", "@every 10s", startingDeadline=25, concurrency="allow",
                     createdAt=T0 + 900))
        await h.send(JobsSnapshot(jobs, 1, {}))
        scheduled = await h.claims_until(T0 + 69_800)
        await h.send(QuorumBack(T0 + 30_000))
        got = await h.claims_until(T0 + 69_900)
        nursery.cancel_scope.cancel()
    assert [(c.fire.spec.name, c.fire.planned_ms - T0, at - T0) for c, at in scheduled][-2:] \
        == [("a", 70_000, 69_700), ("w", 70_900, 69_700)]
    assert sorted((c.fire.spec.name, c.fire.planned_ms - T0, c.fire.missed_fires)
                  for c, _ in got) == [("a", 70_000, 3), ("w", 70_900, 3)]
    assert all(c.fire.trigger is RunTrigger.CATCHUP for c, _ in got)


async def test_no_catch_up_without_starting_deadline(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("c", "*/10 * * * * *"),), 1, {"c": T0 - 80_000}))
        got = await h.claims_until(T0 + 500)
        nursery.cancel_scope.cancel()
    assert got == []


async def test_manual_trigger_claims_one_run_with_the_requested_id(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("m", "@yearly"),), 1, {}))
        await h.send(TriggerRequested("m", "run-42", T0))
        await h.send(TriggerRequested("unknown", "run-43", T0))
        got = await h.claims_until(T0 + 1_000)
        nursery.cancel_scope.cancel()
    [(claim, _)] = got
    assert (claim.fire.run_id, claim.fire.trigger) == ("run-42", RunTrigger.MANUAL)


async def test_fires_that_waited_for_the_locker_beyond_the_grace_are_misfires(autojump_clock):
    async with trio.open_nursery() as nursery:
        # A one-slot Locker mailbox that nobody reads for 10 s: fires queue in the outbox.
        h = Harness(nursery, misfire_grace_s=2.0, mailbox_size=1)
        await h.send(JobsSnapshot((spec("x", "* * * * * *"),), 1, {}))
        await trio.sleep(9.5)
        queued = h.scheduler.statistics_detail().outbox
        got = await h.claims_until(T0 + 10_500)
        stats = h.scheduler.statistics_detail()
        nursery.cancel_scope.cancel()
    assert queued == 7  # 3000..9000: 1000 sits in the mailbox, 2000 waits to go in
    # 3000..7000 waited more than 2 s when the Locker made room: passed over.
    assert [c.fire.planned_ms - T0 for c, _ in got] == [1000, 2000, 8000, 9000, 10000]
    assert stats.misfires == 5 and stats.fires == 10 and stats.outbox == 0


async def test_a_full_locker_never_stops_the_scheduler_reading_its_replies(autojump_clock):
    """Many fires due at once, a Locker that (like the real one) stops reading while its
    claims are in flight and answers from those claims: everything still gets started."""
    jobs, seconds = 40, 3
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, mailbox_size=4)
        nursery.start_soon(fake_locker, h, nursery)
        started = []
        nursery.start_soon(collect_starts, h, started)
        await h.send(JobsSnapshot(tuple(spec(f"j{i}", "* * * * * *") for i in range(jobs)), 1, {}))
        with trio.fail_after(30):
            while len(started) < jobs * seconds:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert len({run.fire.run_id for run in started}) == len(started)
    assert h.scheduler.statistics_detail().misfires == 0


async def fake_locker(h: Harness, nursery: trio.Nursery) -> None:
    in_flight = trio.Semaphore(4)

    async def grant(claim: Claim) -> None:
        await trio.sleep(0.01)  # the transaction
        await h.send(Granted(Run(claim.fire, session_lease=7, guarded=False)))
        in_flight.release()

    async for msg in h.inboxes.locker:
        for claim in one_per_fire([msg]):
            await in_flight.acquire()  # all taken: stop reading the mailbox
            nursery.start_soon(grant, claim)


async def collect_starts(h: Harness, started: list) -> None:
    async for msg in h.inboxes.executor:
        if isinstance(msg, StartRun):
            started.append(msg.run)


async def test_stop_means_no_more_fires(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((spec("s", "* * * * * *"),), 1, {}))
        assert len(await h.claims_until(T0 + 1_500)) == 1
        h.scheduler.request_stop()
        assert await h.claims_until(T0 + 5_000) == []


async def test_a_message_that_makes_a_fire_due_fires_it_at_once(mock_clock):
    """The firing timer is asked again after each message: a job saved inside its
    claim lead is due already, and is claimed without the clock moving at all."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, claim_lead_s=0.5)
        mock_clock.jump(0.7)  # T0 + 700: the next fire (T0 + 1000) is due from T0 + 500
        await h.send(JobSaved(spec("j", "* * * * * *", concurrency="allow")))
        await trio.testing.wait_all_tasks_blocked()
        [claim] = h.pending(h.inboxes.locker)
        assert claim.fire.planned_ms == T0 + 1000
        assert claim.fire.fired_ms == h.clock.now_ms() == T0 + 700
        nursery.cancel_scope.cancel()


async def test_a_run_now_request_that_arrives_before_its_job_waits_for_it(autojump_clock):
    """Jobs and triggers come on two watch streams with no common order."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((), 1, {}))
        await h.send(TriggerRequested("early", "run-7", T0))
        assert await h.claims_until(T0 + 2_000) == []
        await h.send(JobSaved(spec("early", "@yearly")))
        got = await h.claims_until(T0 + 3_000)
        # One that never sees its job is dropped after a while, not kept for ever.
        await h.send(TriggerRequested("never", "run-8", T0 + 3_000))
        await trio.sleep(60)
        await h.send(TriggerRequested("other", "run-9", T0 + 63_000))
        await trio.testing.wait_all_tasks_blocked()  # the Scheduler has handled it
        pending = dict(h.scheduler._pending_triggers)
        nursery.cancel_scope.cancel()
    [(claim, _)] = got
    assert (claim.fire.run_id, claim.fire.trigger) == ("run-7", RunTrigger.MANUAL)
    assert set(pending) == {"other"}


async def test_a_vanished_run_that_never_started_is_claimed_again(autojump_clock):
    """Same run id, fire time, trigger and attempt; only the lost key tells it apart."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        job = spec("v", "@yearly", concurrency="allow")
        await h.send(JobsSnapshot((job,), 1, {}))
        await trio.sleep(5)
        info = RunningInfo("run-4", "v", "dead", T0 + 1000, 2, "retry", T0 + 900, CLAIMED)
        await h.send(RunVanished(info))
        [(claim, _)] = await h.claims_until(T0 + 6_000)
        nursery.cancel_scope.cancel()
    assert claim == Claim(Fire(job, T0 + 1000, claim.fire.fired_ms, RunTrigger.RETRY, "run-4", 2,
                               recovers="dead"))
    assert claim.fire.fired_ms >= T0 + 5000


@pytest.mark.parametrize("case", ["started", "unknown job", "paused job"])
async def test_a_vanished_run_that_may_have_started_is_recorded_lost_by_one(autojump_clock, case):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        job = spec("v", "@yearly", paused=case == "paused job")
        await h.send(JobsSnapshot((job,) if case != "unknown job" else (), 1, {}))
        state = STARTED if case == "started" else CLAIMED
        info = RunningInfo("run-4", "v", "dead", T0 + 1000, 1, "schedule", T0 + 900, state)
        await h.send(RunVanished(info))
        got = await h.claims_until(T0 + 1_000)
        nursery.cancel_scope.cancel()
    assert [msg for msg, _ in got] == [ClaimLost(info)]


@pytest.mark.parametrize("max_clock_skew_s", [5.0, 1.0])
async def test_a_vanished_run_seen_too_late_is_recorded_lost_not_run_again(
        autojump_clock, max_clock_skew_s):
    """A deletion replayed after the lost keys may have expired (a stalled watch): another
    worker may have run it again already, so it must not be claimed again. The window
    allows for 5 s of skew even where --max-clock-skew-s (when to warn) is lower."""
    async with trio.open_nursery() as nursery:
        h = Harness(nursery, lock_ttl_s=60, max_clock_skew_s=max_clock_skew_s)
        await h.send(JobsSnapshot((spec("v", "@yearly", concurrency="allow"),), 1, {}))
        await trio.sleep(36)  # claimed 36 s ago: past 2/3 x 60 - 5 = 35 s
        info = RunningInfo("run-5", "v", "dead", T0 + 200, 1, "schedule", T0, CLAIMED)
        await h.send(RunVanished(info))
        got = await h.claims_until(T0 + 37_000)
        nursery.cancel_scope.cancel()
    assert [msg for msg, _ in got] == [ClaimLost(info)]
