"""The Locker against real etcd: one winner per fire, forbid, replace, manual runs, lost
runs, a graceful stop."""

from __future__ import annotations

import dataclasses
import uuid

import trio

from fire_kit import one_per_fire
from mailbox_kit import queued

from cluster.config import Config
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire
from cluster.retries import PendingRetry
from cluster.presence import RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunStatus, RunTrigger
from worker import claims
from worker.claim_lead import ClaimLead
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.locker.actor import Locker
from worker.locker.messages import Claim, ClaimLost, WorkersChanged
from worker.locker.placement import rank_of
from worker.messages import Fire
from worker.registrar.messages import SessionChanged
from worker.scheduler.records import skipped_record
from worker.scheduler.messages import Denied, Granted, LostClaimed

IDS = ("w1", "w2", "w3")


def spec(name: str, **extra) -> JobSpec:
    return JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *", **extra})


def fire(job: JobSpec, planned_ms: int, trigger=RunTrigger.SCHEDULE, run_id=None) -> Fire:
    return Fire(job, planned_ms, planned_ms, trigger, run_id or uuid.uuid4().hex)


class Fleet:
    """Three Lockers sharing one etcd prefix, as three workers would."""

    def __init__(self, etcd, prefix: str, ids=IDS) -> None:
        self.etcd = etcd
        self.ks = Keyspace(prefix)
        self.lockers: dict[str, tuple] = {}
        self.actors: dict[str, Locker] = {}
        self.ids = ids

    async def start(self, nursery: trio.Nursery, *, listed=IDS,
                    clocks: dict[str, int] | None = None, rooms: dict | None = None,
                    leads: dict | None = None, loads: dict | None = None, **config) -> None:
        """Each worker's session lease (``session_ttl_s`` of its config) is granted once,
        never renewed. ``clocks``: each worker's clock (ms off a true one), as its peers
        measure it;
        ``rooms``: a worker's ``SpillRoom``; ``leads``: its ``ClaimLead``; ``loads``: its
        ``RunLoad``. ``labels`` (in ``config``): every worker's, in the list as in its own
        config."""
        labels = config.get("labels", {})
        infos = tuple(WorkerInfo(w, "h", 1, labels=labels) for w in listed)
        for worker_id in self.ids:
            cfg = dataclasses.replace(Config(), **config)
            peers, inboxes = open_mailboxes(cfg)
            ctx = WorkerContext(cfg, worker_id, self.ks, SystemClock())
            locker = Locker(inboxes.locker, ctx, self.etcd, scheduler=peers.scheduler,
                            executor=peers.executor, room=(rooms or {}).get(worker_id),
                            lead=(leads or {}).get(worker_id),
                            load=(loads or {}).get(worker_id))
            await nursery.start(locker.run)
            self.actors[worker_id] = locker
            lease = await self.etcd.grant_lease(cfg.session_ttl_s)
            await peers.locker.send(SessionChanged(lease.id))
            offsets = offsets_seen_by(worker_id, clocks) if clocks else {}
            await peers.locker.send(WorkersChanged(infos, offsets))
            self.lockers[worker_id] = (peers, inboxes)
            self.actors[worker_id] = locker

    async def everyone(self, msg) -> None:
        for peers, _ in self.lockers.values():
            await peers.locker.send(msg)

    async def claim_each(self, fires: list[Fire]) -> None:
        """Each worker plans every fire with its own run id; only one may win."""
        for f in fires:
            for peers, _ in self.lockers.values():
                await peers.locker.send(Claim(dataclasses.replace(f, run_id=uuid.uuid4().hex)))

    async def replies(self, wait_s: float = 1.5) -> dict[str, list]:
        await trio.sleep(wait_s)
        out: dict[str, list] = {}
        for worker_id, (_, inboxes) in self.lockers.items():
            out[worker_id] = one_per_fire(queued(inboxes.scheduler))
        return out


def granted(replies: dict[str, list]) -> list[tuple[str, Granted]]:
    return [(w, m) for w, msgs in replies.items() for m in msgs if isinstance(m, Granted)]


async def thirty_fires(etcd_endpoint: str, etcd_prefix: str, name: str, **start):
    """Thirty past fires of an ``allow`` job, planned by every worker of a fleet of
    three; the fleet, the fires and who won which."""
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery, **start)
        job = spec(name, concurrency="allow")
        fires = [fire(job, 1_700_000_000_000 + i * 1000) for i in range(30)]
        await fleet.claim_each(fires)
        replies = await fleet.replies()
        nursery.cancel_scope.cancel()
    return fleet, fires, granted(replies)


async def test_first_choice_claims_of_scheduled_allow_fires_feed_the_claim_lead(
        etcd_endpoint, etcd_prefix):
    """First-choice claims of scheduled allow fires are told to the ``ClaimLead``; once
    their marks land (the Executor's ``ready``, here at once), fires handed over 400 ms
    ago lift the lead to cover them; forbid fires (no lead) count not."""
    clock = SystemClock()
    leads = {"w1": ClaimLead(clock, 0.2)}
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        await fleet.start(nursery, listed=("w1",), leads=leads)
        now = clock.now_ms()
        guarded = [Fire(spec(f"g{i}"), now, now - 400, RunTrigger.SCHEDULE, uuid.uuid4().hex)
                   for i in range(3)]
        await fleet.claim_each(guarded)
        won = granted(await fleet.replies(0.5))
        assert len(won) == 3
        for _, m in won:
            leads["w1"].ready(m.run.fire)
        assert leads["w1"].lead_ms() == 200
        job = spec("leading", concurrency="allow")
        await fleet.claim_each([Fire(job, now + i * 1000, now - 400, RunTrigger.SCHEDULE,
                                     uuid.uuid4().hex) for i in range(3)])
        won = granted(await fleet.replies(0.5))
        assert len(won) == 3
        assert leads["w1"].lead_ms() == 200  # claimed, not yet marked
        for _, m in won:
            leads["w1"].ready(m.run.fire)
        nursery.cancel_scope.cancel()
    assert 500 <= leads["w1"].lead_ms() <= 1000  # ≥ 400 + the margin, rounded up


async def test_each_fire_is_won_by_exactly_one_worker_and_spread(etcd_endpoint, etcd_prefix):
    fleet, fires, wins = await thirty_fires(etcd_endpoint, etcd_prefix, "spread")
    assert sorted(m.run.fire.planned_ms for _, m in wins) == [f.planned_ms for f in fires]
    per_worker = {w: sum(1 for x, _ in wins if x == w) for w in IDS}
    assert all(n >= 3 for n in per_worker.values()), per_worker
    # Every winner holds its running key and the fire's lock names it.
    async with open_etcd([etcd_endpoint]) as etcd:
        for worker_id, m in wins:
            f = m.run.fire
            lock = await etcd.get(claims.lock_key(fleet.ks, f))
            assert lock is not None and f.run_id.encode() in lock.value
            running = await etcd.get(fleet.ks.running(f.spec.name, f.run_id))
            assert RunningInfo.from_bytes(running.value).worker_id == worker_id


async def test_a_dead_preferred_owner_is_covered_by_the_next_in_rank(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        # w3 is listed (its lease not expired yet) but runs no Locker: it is dead.
        fleet = Fleet(etcd, etcd_prefix, ids=("w1", "w2"))
        await fleet.start(nursery, listed=IDS)
        job = spec("failover", concurrency="allow")
        for i in range(30):
            await fleet.everyone(Claim(fire(job, 1_700_000_000_000 + i * 1000)))
        replies = await fleet.replies()
        nursery.cancel_scope.cancel()
    assert len(granted(replies)) == 30


async def test_forbid_skips_a_fire_while_the_job_runs_and_records_it_once(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        job = spec("busy")  # concurrency defaults to forbid
        await etcd.put(fleet.ks.active("busy"), "someone-elses-run")
        await fleet.everyone(Claim(fire(job, 1_700_000_000_000)))
        replies = await fleet.replies()
        nursery.cancel_scope.cancel()
    assert granted(replies) == []
    skips = [m for msgs in replies.values() for m in msgs if isinstance(m, Denied)]
    assert len(skips) == 1 and skips[0].record_skip and "forbid" in skips[0].reason


async def test_allow_runs_beside_a_running_instance(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        job = spec("parallel", concurrency="allow")
        await etcd.put(fleet.ks.active("parallel"), "someone-elses-run")
        await fleet.everyone(Claim(fire(job, 1_700_000_000_000)))
        replies = await fleet.replies()
        nursery.cancel_scope.cancel()
    assert len(granted(replies)) == 1


async def test_a_manual_trigger_runs_once(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        job = spec("manual")
        await etcd.put(fleet.ks.trigger("manual", "run-1"), b"{}")
        await fleet.everyone(Claim(fire(job, 1_700_000_000_000, RunTrigger.MANUAL, "run-1")))
        replies = await fleet.replies()
        trigger_left = await etcd.get(fleet.ks.trigger("manual", "run-1"))
        nursery.cancel_scope.cancel()
    [(_, win)] = granted(replies)
    assert win.run.fire.run_id == "run-1"
    assert trigger_left is None


async def test_a_vanished_run_is_claimed_as_lost_by_exactly_one_survivor(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        info = RunningInfo("run-9", "job", "dead-worker", 1_700_000_000_000, 1, "schedule", 1)
        await fleet.everyone(ClaimLost(info))
        replies = await fleet.replies(0.5)
        nursery.cancel_scope.cancel()
    lost = [m for msgs in replies.values() for m in msgs if isinstance(m, LostClaimed)]
    assert lost == [LostClaimed(info)]


async def test_a_run_that_never_started_is_claimed_again_by_exactly_one_survivor(
        etcd_endpoint, etcd_prefix):
    """Every survivor sees the same vanished run and claims it again under its lost key:
    one runs it, under the same run id, holding a fresh running key of its own; the
    fire's own lock (still the dead worker's) does not stop it."""
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        job = spec("again", concurrency="forbid")
        original = fire(job, 1_700_000_000_000)
        await etcd.put(claims.lock_key(fleet.ks, original), claims.lock_value(original, "dead"))
        # Fires after it were claimed meanwhile: the job's last scheduled time is newer.
        newer = LastFire.first(1_700_000_005_000, "schedule", "r5", 1, "w1", 1_700_000_005_000)
        await etcd.put(fleet.ks.state("again"), newer.to_bytes())
        recovery = dataclasses.replace(original, recovers="dead")
        await fleet.everyone(Claim(recovery))
        replies = await fleet.replies()
        [(winner, win)] = granted(replies)
        running = await etcd.get(fleet.ks.running("again", original.run_id))
        state = await etcd.get(fleet.ks.state("again"))
        nursery.cancel_scope.cancel()
    assert win.run.fire == recovery and win.run.guarded
    info = RunningInfo.from_bytes(running.value)
    assert (info.worker_id, info.started) == (winner, False)  # claimed, to be marked again
    # state/: the recovered run is the job's last fire, but an old fire claimed again
    # never moves the catch-up cursor back (a fleet restart would run 1-5 s again).
    last = LastFire.from_bytes(state.value)
    assert (last.cursor_ms, last.planned_ms, last.run_id, last.worker, last.trigger) == \
        (newer.cursor_ms, original.planned_ms, original.run_id, winner, "schedule")


async def test_a_vanished_run_is_either_run_again_or_recorded_lost_never_both(
        etcd_endpoint, etcd_prefix):
    """Survivors may disagree (one no longer knows the job): the lost key decides."""
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        job = spec("race", concurrency="allow")
        for i in range(10):
            original = fire(job, 1_700_000_000_000 + i * 1000)
            info = claims.running_info(original, "dead", original.planned_ms)
            for n, (peers, _) in enumerate(fleet.lockers.values()):
                msg = ClaimLost(info) if n == i % 3 else Claim(
                    dataclasses.replace(original, recovers="dead"))
                await peers.locker.send(msg)
        replies = await fleet.replies()
        nursery.cancel_scope.cancel()
    outcomes = sorted((m.run.fire.planned_ms if isinstance(m, Granted) else m.info.planned_ms)
                      for msgs in replies.values() for m in msgs
                      if isinstance(m, Granted | LostClaimed))
    assert outcomes == [1_700_000_000_000 + i * 1000 for i in range(10)]


async def test_the_guard_goes_at_run_end_the_running_key_once_the_record_is_durable(
        etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        await fleet.start(nursery, listed=("w1",))
        await fleet.everyone(Claim(fire(spec("rel"), 1_700_000_000_000)))
        [(_, win)] = granted(await fleet.replies(0.5))
        ks, run_id = fleet.ks, win.run.fire.run_id
        assert await etcd.get(ks.active("rel")) is not None
        await claims.release_guard(etcd, ks, win.run)
        assert await etcd.get(ks.active("rel")) is None
        assert await etcd.get(ks.running("rel", run_id)) is not None  # record not durable yet
        record = skipped_record(win.run.fire, "w1", "-")
        done = dataclasses.replace(record, status=RunStatus.SUCCEEDED)
        await claims.release_running(etcd, ks, "w1", [record])  # skipped: not a run of ours
        assert await etcd.get(ks.running("rel", run_id)) is not None
        await claims.release_running(etcd, ks, "w1", [done])
        assert await etcd.get(ks.running("rel", run_id)) is None
        assert await etcd.get(claims.lock_key(ks, win.run.fire)) is not None  # kept: fenced fire
        nursery.cancel_scope.cancel()


async def test_replace_takes_the_place_of_the_running_instance(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        ks = fleet.ks
        await etcd.put(ks.active("rep"), "old-run")

        async def dies_when_asked() -> None:  # what the old run's Executor does
            while await etcd.get(ks.killer("rep")) is None:
                await trio.sleep(0.02)
            await etcd.delete(ks.active("rep"))

        nursery.start_soon(dies_when_asked)
        await fleet.everyone(Claim(fire(spec("rep", concurrency="replace"), 1_700_000_000_000)))
        replies = await fleet.replies()
        active = await etcd.get(ks.active("rep"))
        nursery.cancel_scope.cancel()
    [(_, win)] = granted(replies)
    assert win.run.guarded and active.value.decode() == win.run.fire.run_id
    assert not [m for msgs in replies.values() for m in msgs if isinstance(m, Denied)]


async def test_a_stop_lets_first_choices_finish_and_backoffs_give_up(etcd_endpoint, etcd_prefix):
    """``in_flight`` counts the fires not yet decided. At a graceful stop the claims
    already under way end through their batch (the batchers stop only after them); the
    fires still waiting their rank's step are dropped at once (the stop does not wait
    the step out) and claim nothing."""
    async with open_etcd([etcd_endpoint]) as etcd:
        cfg = dataclasses.replace(Config(), claim_step_s=1.0)
        peers, inboxes = open_mailboxes(cfg)
        ctx = WorkerContext(cfg, "w1", Keyspace(etcd_prefix), SystemClock())
        locker = Locker(inboxes.locker, ctx, etcd, scheduler=peers.scheduler,
                        executor=peers.executor)
        infos = tuple(WorkerInfo(w, "h", 1) for w in IDS)
        job = spec("stop", concurrency="allow")
        fires = [fire(job, 1_700_000_000_000 + i * 1000) for i in range(12)]
        first = [f for f in fires if rank_of("w1", cfg.labels, f"stop@{f.planned_ms}#1",
                                             infos, {}) == 0]
        assert 0 < len(first) < len(fires)
        async with trio.open_nursery() as nursery:
            await nursery.start(locker.run)
            await peers.locker.send(SessionChanged((await etcd.grant_lease(10)).id))
            await peers.locker.send(WorkersChanged(infos))
            for f in fires:
                await peers.locker.send(Claim(f))
            await trio.sleep(0.5)  # first choices won; the others wait a step (1 s) or more
            assert locker.statistics_detail().in_flight == len(fires) - len(first)
            locker.request_stop()
            asked = trio.current_time()
        stop_s = trio.current_time() - asked
        replies = []
        while True:
            try:
                replies.append(inboxes.scheduler.receive_nowait())
            except trio.WouldBlock:
                break
        locks = [await etcd.get(claims.lock_key(ctx.keyspace, f)) for f in fires]
    assert sorted(m.run.fire.planned_ms for m in replies if isinstance(m, Granted)) \
        == [f.planned_ms for f in first]
    assert sum(lock is not None for lock in locks) == len(first)
    assert locker.statistics_detail().in_flight == 0
    assert stop_s < 0.4, stop_s  # the next step was 0.5 s away: not waited for


def offsets_seen_by(worker_id: str, clocks_ms: dict[str, int]) -> dict[str, int]:
    """What ``worker_id``'s JobWatcher measures: every clock minus its own."""
    return {w: c - clocks_ms[worker_id] for w, c in clocks_ms.items()}


async def test_a_worker_out_of_step_with_the_fleet_claims_nothing_first(etcd_endpoint, etcd_prefix):
    clocks = {"w1": 3_000, "w2": 0, "w3": 40}  # w1 ahead by 3 s; w2, w3 within 1 s
    _, fires, wins = await thirty_fires(etcd_endpoint, etcd_prefix, "skewed", clocks=clocks)
    assert sorted(m.run.fire.planned_ms for _, m in wins) == [f.planned_ms for f in fires]
    assert {w for w, _ in wins} == {"w2", "w3"}  # the two in step share every fire


async def test_an_ahead_worker_alone_waits_out_its_lead(etcd_endpoint, etcd_prefix):
    """w2 and w3 are listed but take no claims (dead): w1, 1.5 s ahead of the fleet,
    claims the fire, but not before its time on the fleet's clock: never early."""
    clocks = {"w1": 1_500, "w2": 0, "w3": 0}
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        await fleet.start(nursery)
        (peers, inboxes), = fleet.lockers.values()
        infos = tuple(WorkerInfo(w, "h", 1) for w in IDS)
        await peers.locker.send(WorkersChanged(infos, offsets_seen_by("w1", clocks)))
        planned_ms = SystemClock().now_ms() + 200  # w1's own clock: due in 0.2 s
        await peers.locker.send(Claim(fire(spec("lone", concurrency="allow"), planned_ms)))
        with trio.fail_after(10):
            reply = await inboxes.scheduler.receive()
        won_at_ms = SystemClock().now_ms()
        nursery.cancel_scope.cancel()
    assert isinstance(reply, Granted)
    assert won_at_ms >= planned_ms + 1_500  # the fire's time by the fleet's clock
    assert won_at_ms <= planned_ms + 1_500 + 1_000  # then at once (after the rank steps)


async def test_one_catch_up_last_run_per_outage_whichever_time_each_worker_picked(
        etcd_endpoint, etcd_prefix):
    """Three workers came back from an outage at different instants: each picked its own
    most recent missed fire for ``catchUp: last``. One runs, fleet-wide; and a fire's
    own lock still counts (the schedule claimed T+4 s already: that catch-up is taken)."""
    t = 1_700_000_000_000
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        for concurrency in ("allow", "forbid"):
            job = spec(f"outage-{concurrency}", concurrency=concurrency, startingDeadline=60)
            for i, (peers, _) in enumerate(fleet.lockers.values(), start=1):
                catch_up = dataclasses.replace(
                    fire(job, t + i * 1000, RunTrigger.CATCHUP), missed_fires=i,
                    first_missed_ms=t + 1000, catch_up_after_ms=t)
                await peers.locker.send(Claim(catch_up))
        later = spec("later", concurrency="allow", startingDeadline=60)
        peers, _ = fleet.lockers["w1"]
        await peers.locker.send(Claim(fire(later, t + 4000)))
        await trio.sleep(0.5)
        await fleet.lockers["w2"][0].locker.send(Claim(dataclasses.replace(
            fire(later, t + 4000, RunTrigger.CATCHUP), catch_up_after_ms=t)))
        replies = await fleet.replies()
        nursery.cancel_scope.cancel()
    wins = granted(replies)
    per_job = {}
    for _, m in wins:
        per_job.setdefault(m.run.fire.spec.name, []).append(m.run.fire.trigger)
    assert per_job == {"outage-allow": [RunTrigger.CATCHUP], "outage-forbid": [RunTrigger.CATCHUP],
                       "later": [RunTrigger.SCHEDULE]}
    # The losers were told it is taken, not skipped: no record of them.
    denied = [m for msgs in replies.values() for m in msgs if isinstance(m, Denied)]
    assert all(not m.record_skip for m in denied), denied


async def test_one_worker_runs_a_catch_up_all_outage_and_the_cursor_moves_past_it(
        etcd_endpoint, etcd_prefix):
    """``catchUp: all``: w1 came back first and missed t+1..t+5 s; w2 came back two
    seconds later and sees t+1..t+7 s (the last two are w1's scheduled fires). w1's first
    claim makes it the outage's owner: it runs its whole set, w2 none of it, so every
    record says 5 missed. The cursor is past the set from that first claim on: a worker
    reading ``state/`` meanwhile starts after it, not in its middle."""
    t = 1_700_000_000_000
    job = spec("outage-all", concurrency="allow", startingDeadline=60, catchUp="all")

    def catch_up(planned_ms: int, missed: int) -> Fire:
        return dataclasses.replace(
            fire(job, planned_ms, RunTrigger.CATCHUP), missed_fires=missed,
            first_missed_ms=t + 1000, catch_up_after_ms=t, last_missed_ms=t + missed * 1000)

    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1", "w2"))
        await fleet.start(nursery, listed=("w1", "w2"))
        w1, w2 = (fleet.lockers[w][0].locker for w in ("w1", "w2"))
        await w1.send(Claim(catch_up(t + 1000, 5)))
        first = await fleet.replies(1.0)
        cursor = LastFire.from_bytes((await etcd.get(fleet.ks.state(job.name))).value).cursor_ms
        for i in range(1, 8):
            await w2.send(Claim(catch_up(t + i * 1000, 7)))
        second = await fleet.replies()
        for i in range(2, 6):
            await w1.send(Claim(catch_up(t + i * 1000, 5)))
        third = await fleet.replies()
        nursery.cancel_scope.cancel()
    assert [m.run.fire.planned_ms for _, m in granted(first)] == [t + 1000]
    assert cursor == t + 5000
    assert granted(second) == []
    assert [m for m in second["w2"] if isinstance(m, Denied) and m.record_skip] == []
    assert sorted((w, m.run.fire.planned_ms, m.run.fire.missed_fires) for w, m in granted(third)) \
        == [("w1", t + i * 1000, 5) for i in range(2, 6)]


async def test_state_is_the_last_fire_on_every_path(etcd_endpoint, etcd_prefix):
    """state/<name> after each path's claim: the fire it names, and the catch-up cursor,
    which only a scheduled or catch-up time moves (a manual run or a retry of an older
    fire does not move it back). (``replace``: in test_replace; a recovered claim:
    above; a chained run's request is a trigger key like a manual one's.)"""
    t = 1_700_000_000_000
    seen = []
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        await fleet.start(nursery, listed=("w1",))
        job = spec("paths", concurrency="allow")
        peers, _ = fleet.lockers["w1"]
        manual_id, retry_id, chain_id = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
        await etcd.put(fleet.ks.trigger("paths", manual_id), "{}")
        await etcd.put(fleet.ks.trigger("paths", chain_id), "{}")
        await etcd.put(fleet.ks.retry("paths", retry_id),
                       PendingRetry("paths", retry_id, t + 5000, 2, t).to_bytes())
        for f in (fire(job, t + 5000),  # schedule
                  dataclasses.replace(fire(job, t + 9000, RunTrigger.CATCHUP),
                                      missed_fires=3, first_missed_ms=t + 7000,
                                      catch_up_after_ms=t + 6000),
                  fire(job, t + 20_000, RunTrigger.MANUAL, run_id=manual_id),
                  dataclasses.replace(fire(job, t + 5000, RunTrigger.RETRY, run_id=retry_id),
                                      attempt=2),
                  fire(job, t + 30_000, RunTrigger.CHAIN, run_id=chain_id)):
            await peers.locker.send(Claim(f))
            await fleet.replies(0.4)
            kv = await etcd.get(fleet.ks.state("paths"))
            seen.append((f, LastFire.from_bytes(kv.value)))
        nursery.cancel_scope.cancel()
    got = [(last.cursor_ms, last.planned_ms, last.trigger, last.run_id, last.attempt, last.worker)
           for _, last in seen]
    assert got == [
        (t + 5000, t + 5000, "schedule", seen[0][0].run_id, 1, "w1"),
        (t + 9000, t + 9000, "catchup", seen[1][0].run_id, 1, "w1"),
        (t + 9000, t + 20_000, "manual", manual_id, 1, "w1"),
        (t + 9000, t + 5000, "retry", seen[3][0].run_id, 2, "w1"),
        (t + 9000, t + 30_000, "chain", chain_id, 1, "w1"),
    ]


async def test_a_pending_retry_is_run_by_exactly_one_worker_and_its_key_goes(
        etcd_endpoint, etcd_prefix):
    """Three workers plan the same retry from retry/ and claim it when due: one wins
    (its claim deletes the key), the others are told nothing; a worker that plans it
    again later (a re-read) finds the key gone: taken, not run, not skipped."""
    t = 1_700_000_000_000
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        job = spec("again2", concurrency="forbid", retries=3)
        pending = PendingRetry("again2", uuid.uuid4().hex, t, 2, t + 1000)
        await etcd.put(fleet.ks.retry("again2", pending.run_id), pending.to_bytes())
        retry = dataclasses.replace(fire(job, t, RunTrigger.RETRY, run_id=pending.run_id),
                                    attempt=2)
        await fleet.everyone(Claim(retry))
        replies = await fleet.replies()
        key_after = await etcd.get(fleet.ks.retry("again2", pending.run_id))
        await fleet.everyone(Claim(retry))
        again = await fleet.replies()
        nursery.cancel_scope.cancel()
    [(_, win)] = granted(replies)
    assert win.run.fire == retry and key_after is None
    assert granted(again) == [] and all(not msgs for msgs in again.values())
