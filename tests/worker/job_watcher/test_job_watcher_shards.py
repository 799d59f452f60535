"""The JobWatcher with shards on, against real etcd: it plans only the jobs its worker
serves, hands jobs over when a worker that serves joins (without killing their runs),
takes them back when it leaves, with the run-nows left pending for them meanwhile, and
passes on only its own jobs' run-nows and lost runs."""

from __future__ import annotations

from types import MappingProxyType

import trio

from actors import open_mailbox
from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.presence import RunningInfo, Serving, WorkerInfo, fleet_epoch
from cluster.shard_settings import ShardSettings
from cluster.slots import SlotTable, slot_of
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.job_watcher.actor import JobWatcher, JobWatcherMsg
from worker.mailboxes import open_mailboxes
from worker.scheduler.messages import JobsSnapshot, RunVanished, TriggerRequested
from worker.shards import ShardState

from test_job_watcher import ME, job, next_of, running

SETTINGS = ShardSettings(slots=64, replicas=2)
NAMES = [f"j{i:02d}" for i in range(60)]


def share(me: str, fleet: list[str]) -> set[str]:
    table = SlotTable.build(fleet, SETTINGS.replicas, slots=SETTINGS.slots)
    return {n for n in NAMES if me in table.owners[slot_of(n, SETTINGS.slots)]}


def serving(worker_id: str, fleet: list[str]) -> bytes:
    info = WorkerInfo(worker_id, "h", 1, serving=Serving(fleet_epoch(fleet), len(fleet)))
    return info.to_bytes()


def count_gets(etcd, monkeypatch) -> list[str]:
    """The keys ``etcd.get`` is asked for from now on."""
    gets: list[str] = []
    get = etcd.get

    async def counted_get(key, **kwargs):
        gets.append(key)
        return await get(key, **kwargs)

    monkeypatch.setattr(etcd, "get", counted_get)
    return gets


async def test_a_join_hands_jobs_over_and_a_leave_takes_them_back_with_their_run_nows(
        etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    three, four = [ME, "w2", "w3"], [ME, "w2", "w3", "w4"]
    for name in NAMES:
        await etcd.put(ks.job(name), job(name))
    for other in ("w2", "w3"):
        await etcd.put(ks.worker(other), serving(other, three))
    mine, after_join = share(ME, three), share(ME, four)
    lost = mine - after_join
    assert lost and after_join < mine  # a join only takes jobs away
    config = Config()
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(etcd_prefix), SystemClock())
    _, inbox = open_mailbox[JobWatcherMsg](1, name="job-watcher")
    shards = ShardState(ME, {}, SETTINGS)
    watcher = JobWatcher(inbox, ctx, etcd, scheduler=addresses.scheduler,
                         executor=addresses.executor, locker=addresses.locker, shards=shards)
    scheduler = inboxes.scheduler
    async with running(watcher):
        first = await next_of(scheduler, JobsSnapshot)
        assert {s.name for s in first.specs} == mine
        assert shards.serving() == Serving(fleet_epoch(three), 3)  # loaded, then said
        # w4 registers: not serving yet, so nothing moves (make before break).
        await etcd.put(ks.worker("w4"), WorkerInfo("w4", "h", 1).to_bytes())
        # w4 says it serves: w1 hands over exactly what w4 took from it.
        await etcd.put(ks.worker("w4"), serving("w4", four))
        joined = await next_of(scheduler, JobsSnapshot)
        assert joined.specs == () and joined.kept == frozenset(after_join)  # not parsed again
        assert joined.handed_over == frozenset(lost)
        # Run-nows: of a job w1 serves, passed on; of one it handed over, not.
        kept, gone = sorted(after_join)[0], sorted(lost)[0]
        await etcd.put(ks.trigger(gone, "r-gone"), "{}")
        await etcd.put(ks.trigger(kept, "r-kept"), "{}")
        asked = await next_of(scheduler, TriggerRequested)
        assert (asked.name, asked.run_id) == (kept, "r-kept")
        # w4 dies: w1 serves its jobs again, and the run-now left pending is replayed.
        await etcd.delete(ks.worker("w4"))
        back = await next_of(scheduler, JobsSnapshot)
        assert {s.name for s in back.specs} == lost and back.kept == frozenset(after_join)
        assert back.handed_over == frozenset()
        replayed = await next_of(scheduler, TriggerRequested)
        assert (replayed.name, replayed.run_id) == (gone, "r-gone")
        with trio.fail_after(5):
            while shards.serving() != Serving(fleet_epoch(three), 3):
                await trio.sleep(0.01)


async def test_runs_lost_with_a_worker_go_to_the_scheduler_only_for_jobs_served_here(
        etcd, etcd_prefix, monkeypatch):
    """Of the runs a dead worker left (read at the revision before its key went), only
    those of jobs this worker serves once the membership has shrunk are passed on: the
    job's servers are the workers that run it again, one of whom records it lost. It
    asks etcd nothing about the others (it was one read per run)."""
    ks = Keyspace(etcd_prefix)
    gets = count_gets(etcd, monkeypatch)
    four, three = [ME, "w2", "w3", "w4"], [ME, "w3", "w4"]
    for name in NAMES:
        await etcd.put(ks.job(name), job(name))
    served = sorted(share(ME, three))
    elsewhere = sorted(set(NAMES) - share(ME, three))
    assert served and elsewhere
    lease = (await etcd.grant_lease(60)).id
    await etcd.put(ks.worker("w2"), serving("w2", four), lease_id=lease)
    for other in ("w3", "w4"):
        await etcd.put(ks.worker(other), serving(other, four))
    runs = [RunningInfo("r-here", served[0], "w2", planned_ms=1000, attempt=1,
                        trigger="schedule", started_ms=2000),
            RunningInfo("r-there", elsewhere[0], "w2", planned_ms=1000, attempt=1,
                        trigger="schedule", started_ms=2000)]
    for run in runs:
        await etcd.put(ks.running(run.job_name, run.run_id), run.to_bytes(), lease_id=lease)
    config = Config()
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(etcd_prefix), SystemClock())
    _, inbox = open_mailbox[JobWatcherMsg](1, name="job-watcher")
    watcher = JobWatcher(inbox, ctx, etcd, scheduler=addresses.scheduler,
                         executor=addresses.executor, locker=addresses.locker,
                         shards=ShardState(ME, {}, SETTINGS))
    async with running(watcher):
        await next_of(inboxes.scheduler, JobsSnapshot)
        await etcd.revoke_lease(lease)  # w2 dies with both runs
        assert await next_of(inboxes.scheduler, RunVanished) == RunVanished(runs[0])
        with trio.fail_after(5):
            while watcher.statistics_detail().lost_reads == 0:
                await trio.sleep(0.01)
        rest = []
        while inboxes.scheduler.statistics().depth:
            rest.append(inboxes.scheduler.receive_nowait())
        assert not [m for m in rest if isinstance(m, RunVanished)]
        assert watcher.statistics_detail().lost_runs == 1
    assert not [k for k in gets if k.startswith(ks.jobs_prefix)]


async def test_jobs_and_state_are_read_in_pages_and_only_its_share_is_kept(
        etcd, etcd_prefix, monkeypatch):
    """Memory (DESIGN §6b): no whole-range read of jobs/ or state/ (one costs ~1 KB a
    job at once, kept by the allocator), at start-up nor on a membership change; of
    state/, only the cursors of the jobs it plans."""
    monkeypatch.setattr("cluster.mirror.PAGE_SIZE", 7)
    ks = Keyspace(etcd_prefix)
    three, two = [ME, "w2", "w3"], [ME, "w2"]
    for name in NAMES:
        await etcd.put(ks.job(name), job(name))
        await etcd.put(ks.state(name), b"1700000000000")
    for other in ("w2", "w3"):
        await etcd.put(ks.worker(other), serving(other, three))
    reads: list[tuple[str, int]] = []  # (what, keys in one response)
    page_read, whole_read = etcd.get_prefix_page, etcd.get_prefix

    async def get_prefix_page(prefix, **kwargs):
        page = await page_read(prefix, **kwargs)
        reads.append((prefix[len(etcd_prefix):], len(page.kvs)))
        return page

    async def get_prefix(prefix, **kwargs):
        snapshot = await whole_read(prefix, **kwargs)
        reads.append(("whole " + prefix[len(etcd_prefix):], len(snapshot.kvs)))
        return snapshot

    monkeypatch.setattr(etcd, "get_prefix_page", get_prefix_page)
    monkeypatch.setattr(etcd, "get_prefix", get_prefix)
    config = Config()
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, ks, SystemClock())
    _, inbox = open_mailbox[JobWatcherMsg](1, name="job-watcher")
    shards = ShardState(ME, {}, SETTINGS)
    watcher = JobWatcher(inbox, ctx, etcd, scheduler=addresses.scheduler,
                         executor=addresses.executor, locker=addresses.locker, shards=shards)
    async with running(watcher):
        first = await next_of(inboxes.scheduler, JobsSnapshot)
        assert {s.name for s in first.specs} == share(ME, three)
        assert set(first.last_fired_ms) == share(ME, three)  # not the others' cursors
        await etcd.delete(ks.worker("w3"))  # a membership change: read again
        gained = await next_of(inboxes.scheduler, JobsSnapshot)
        assert {s.name for s in gained.specs} == share(ME, two) - share(ME, three)
        assert gained.kept == frozenset(share(ME, two) & share(ME, three))
        assert set(gained.last_fired_ms) == share(ME, two) - share(ME, three)  # the new
    pages = [(what, n) for what, n in reads if what in ("jobs/", "state/")]
    assert not [what for what, _ in reads if what.startswith("whole jobs/")
                or what.startswith("whole state/")], reads
    assert max(n for _, n in pages) == 7, reads
    assert sum(n for what, n in pages if what == "jobs/") == 2 * len(NAMES)  # two reads


async def test_a_membership_change_during_a_paged_read_is_not_published_as_loaded(
        etcd, etcd_prefix, monkeypatch):
    """Regression: a read in pages takes a while; if the membership changes meanwhile,
    part of it was sorted for the older one, so the worker must not say it serves the
    new one (the others would drop jobs it has not planned) until the reload after."""
    from worker.job_watcher.jobs import JobsListener
    monkeypatch.setattr("cluster.mirror.PAGE_SIZE", 7)
    ks = Keyspace(etcd_prefix)
    for name in NAMES:
        await etcd.put(ks.job(name), job(name))
    shards = ShardState(ME, {}, SETTINGS)
    await shards.settle()  # alone (no fleet listener here): then adopt by hand
    three = (shards.me, WorkerInfo("w2", "h", 1), WorkerInfo("w3", "h", 1))
    shards.adopt(three)
    page_read = etcd.get_prefix_page

    async def get_prefix_page(prefix, **kwargs):
        if prefix == ks.jobs_prefix and kwargs.get("after") is not None \
                and len(shards.fleet) == 3:
            shards.adopt(three[:2])  # w3 died between two pages
        return await page_read(prefix, **kwargs)

    monkeypatch.setattr(etcd, "get_prefix_page", get_prefix_page)
    addresses, inboxes = open_mailboxes(Config())
    listener = JobsListener(etcd, ks, addresses.scheduler, ME, shards)
    await listener.load(None)
    assert isinstance(inboxes.scheduler.receive_nowait(), JobsSnapshot)
    assert shards.serving() is None  # read partly for {w1, w2, w3}: not loaded
    await listener.reload()  # what the fleet listener does after adopting
    reloaded = inboxes.scheduler.receive_nowait()
    assert {s.name for s in reloaded.specs} | reloaded.kept == share(ME, [ME, "w2"])
    assert shards.serving() == Serving(fleet_epoch([ME, "w2"]), 2)


def labelled(worker_id: str, fleet: list[str], **labels: str) -> bytes:
    info = WorkerInfo(worker_id, "h", 1, MappingProxyType(labels),
                      serving=Serving(fleet_epoch(fleet), len(fleet)))
    return info.to_bytes()


def named(prefix: str, mine: bool, fleet: list[str]) -> str:
    """A job name whose slot ``ME`` owns (``mine``) or not, over ``fleet``."""
    table = SlotTable.build(fleet, SETTINGS.replicas, slots=SETTINGS.slots)
    return next(n for i in range(1000) if (ME in table.owners[slot_of(n := f"{prefix}{i}",
                                                                     SETTINGS.slots)]) == mine)


async def test_run_nows_are_sorted_without_reading_etcd_and_one_before_its_job_waits_for_it(
        etcd, etcd_prefix, monkeypatch):
    """Regression: a run-now of a job not served here cost an etcd read each, and one
    that came before its job's put was dropped, etcd holding the job by then. Now: a
    job of another's slot, or of its own that its selector rules out, is left to its
    servers; one of its own slots not seen yet is passed on (the Scheduler holds it);
    one it serves as a selector's fallback is replayed once its put is seen."""
    from worker.job_watcher.jobs import JobsListener
    from worker.scheduler.messages import JobSaved
    ks = Keyspace(etcd_prefix)
    three = [ME, "w2", "w3"]
    for other in ("w2", "w3"):
        await etcd.put(ks.worker(other), labelled(other, three, zone="eu"))
    others, late = named("other", False, three), named("late", True, three)
    ruled_out, fallback = named("eu", True, three), named("gpu", False, three)
    await etcd.put(ks.job(others), job(others))
    gates = {late: trio.Event(), fallback: trio.Event()}  # their puts reach it late
    on_event = JobsListener.on_event

    async def gated(self, event):
        gate = gates.get(ks.name_from_job_key(event.key))
        if gate is not None:
            await gate.wait()
        await on_event(self, event)

    monkeypatch.setattr(JobsListener, "on_event", gated)
    gets = count_gets(etcd, monkeypatch)
    config = Config()
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(etcd_prefix), SystemClock())
    _, inbox = open_mailbox[JobWatcherMsg](1, name="job-watcher")
    shards = ShardState(ME, {"gpu": "yes"}, SETTINGS)
    watcher = JobWatcher(inbox, ctx, etcd, scheduler=addresses.scheduler,
                         executor=addresses.executor, locker=addresses.locker, shards=shards)
    scheduler = inboxes.scheduler
    async with running(watcher):
        await next_of(scheduler, JobsSnapshot)
        await etcd.put(ks.job(ruled_out), job(ruled_out, selector={"zone": "eu"}))
        assert (await next_of(scheduler, JobSaved)).serve is False
        await etcd.put(ks.trigger(others, "r-others"), "{}")
        await etcd.put(ks.trigger(ruled_out, "r-eu"), "{}")
        await etcd.put(ks.job(late), job(late))  # not seen yet
        await etcd.put(ks.job(fallback), job(fallback, selector={"gpu": "yes"}))  # nor this
        await etcd.put(ks.trigger(fallback, "r-gpu"), "{}")
        await etcd.put(ks.trigger(late, "r-late"), "{}")
        asked = await next_of(scheduler, TriggerRequested)
        assert (asked.name, asked.run_id) == (late, "r-late")  # the others were not passed on
        gates[late].set()
        assert (await next_of(scheduler, JobSaved)).spec.name == late
        gates[fallback].set()
        saved = await next_of(scheduler, JobSaved)
        assert (saved.spec.name, saved.serve) == (fallback, True)
        replayed = await next_of(scheduler, TriggerRequested)
        assert (replayed.name, replayed.run_id) == (fallback, "r-gpu")
    assert not [k for k in gets if k.startswith(ks.jobs_prefix)]


async def test_a_membership_change_parses_only_the_jobs_gained_not_those_kept(
        etcd, etcd_prefix, monkeypatch):
    """Memory (DESIGN §6b): a reload parsed every spec it kept again, and the Scheduler
    replaced each: the churn of ~0.6 KB a job at every membership change. Now only the
    jobs not planned before are parsed (and sent); the kept are named."""
    from worker.job_watcher.jobs import JobsListener
    ks = Keyspace(etcd_prefix)
    for name in NAMES:
        await etcd.put(ks.job(name), job(name))
    parsed: list[str] = []
    spec_of = JobsListener.spec_of

    def counting(self, kv):
        parsed.append(ks.name_from_job_key(kv.key))
        return spec_of(self, kv)

    monkeypatch.setattr(JobsListener, "spec_of", counting)
    shards = ShardState(ME, {}, SETTINGS)
    await shards.settle()
    four = (shards.me, *(WorkerInfo(w, "h", 1) for w in ("w2", "w3", "w4")))
    shards.adopt(four)
    addresses, inboxes = open_mailboxes(Config())
    listener = JobsListener(etcd, ks, addresses.scheduler, ME, shards)
    await listener.load(None)
    first = inboxes.scheduler.receive_nowait()
    mine4 = share(ME, [ME, "w2", "w3", "w4"])
    assert {s.name for s in first.specs} == mine4 and first.kept == frozenset()
    parsed.clear()
    shards.adopt(four[:3])  # w4 died
    await listener.reload()
    reloaded = inboxes.scheduler.receive_nowait()
    mine3 = share(ME, [ME, "w2", "w3"])
    assert mine4 < mine3  # a death only adds
    assert {s.name for s in reloaded.specs} == mine3 - mine4
    assert reloaded.kept == frozenset(mine4)
    assert not set(parsed) & mine4, "a kept job was parsed again"
    assert set(parsed) >= mine3 - mine4
    assert shards.served == mine3
