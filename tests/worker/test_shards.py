"""worker.shards: who serves what as workers join, leave and die (no servers), and a
process whose shard setting contradicts the cluster's refused in one line (etcd)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from cluster.presence import Serving, WorkerInfo, fleet_epoch
from cluster.shard_settings import ShardSettings
from cluster.slots import SlotTable, slot_of
from worker.shards import ShardState, handed_over, membership

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ShardSettings(slots=64, replicas=2)
NAMES = [f"job{i}" for i in range(300)]


def info(worker_id: str, serving: tuple[str, ...] | None = None, leaving: bool = False,
         **labels: str) -> WorkerInfo:
    said = None if serving is None else Serving(fleet_epoch(serving), len(serving), leaving)
    return WorkerInfo(worker_id, "h", 1, MappingProxyType(labels), serving=said)


def state(me: str, workers: list[WorkerInfo], **labels: str) -> ShardState:
    shards = ShardState(me, labels, SETTINGS)
    fleet = shards.proposed(workers)
    if fleet is not None:
        shards.adopt(fleet)
    return shards


def served(shards: ShardState) -> set[str]:
    return {n for n in NAMES if shards.serves(n, {})}


def test_only_workers_that_say_serving_and_are_not_leaving_count_and_oneself_always():
    workers = [info("a", ("a", "b")), info("b", ("a", "b")), info("c"),
               info("d", ("a", "b", "d"), leaving=True)]
    assert [w.worker_id for w in membership(info("c"), workers)] == ["a", "b", "c"]
    assert [w.worker_id for w in membership(info("d"), workers)] == ["a", "b", "d"]


def test_a_joiner_plans_its_share_at_once_and_the_others_keep_theirs_until_it_serves():
    before = [info("a", ("a", "b")), info("b", ("a", "b"))]
    joining = [*before, info("c")]  # registered, not serving yet
    a, c = state("a", joining), state("c", joining)
    assert served(a) == set(NAMES)  # R = 2 of 2: a still serves every job
    table = SlotTable.build(["a", "b", "c"], 2, slots=SETTINGS.slots)
    mine = {n for n in NAMES if "c" in table.owners[slot_of(n, SETTINGS.slots)]}
    assert served(c) == mine and 0 < len(mine) < len(NAMES)
    # c publishes: a drops exactly the jobs c took from it, and no job has no server.
    after = [*before[:1], info("b", ("a", "b")), info("c", ("a", "b", "c"))]
    fleet = a.proposed(after)
    assert fleet is not None
    a.adopt(fleet)
    b = state("b", after)
    assert served(a) | served(b) | served(c) == set(NAMES)
    assert all(sum(s.serves(n, {}) for s in (a, b, c)) == 2 for n in NAMES)
    assert set(NAMES) - served(a) <= mine  # a lost only what c gained


def test_a_republication_that_changes_nothing_is_no_change():
    workers = [info("a", ("a", "b")), info("b", ("a", "b"))]
    a = state("a", workers)
    assert a.proposed([info("a", ("a", "b")), info("b", ("a", "b"))]) is None
    assert a.proposed([info("a", ("a", "b"))]) is not None  # b died


def test_a_dead_workers_jobs_are_served_by_the_survivors_and_none_is_left_bare():
    three = [info(w, ("a", "b", "c")) for w in "abc"]
    states = {w: state(w, three) for w in "abc"}
    assert all(sum(s.serves(n, {}) for s in states.values()) == 2 for n in NAMES)
    two = three[:2]  # c's lease expired
    for w in "ab":
        states[w].adopt(states[w].proposed(two) or states[w].fleet)
    assert all(states["a"].serves(n, {}) and states["b"].serves(n, {}) for n in NAMES)


def test_a_leaver_is_handed_over_once_every_other_server_loaded_the_fleet_without_it():
    leaving = [info("a", ("a", "b", "c"), leaving=True), info("b", ("a", "b", "c")),
               info("c", ("a", "b", "c"))]
    assert not handed_over("a", leaving)
    one_done = [leaving[0], info("b", ("b", "c")), leaving[2]]
    assert not handed_over("a", one_done)
    assert handed_over("a", [leaving[0], info("b", ("b", "c")), info("c", ("b", "c"))])
    # a joiner that does not serve yet is not waited for
    assert handed_over("a", [leaving[0], info("b", ("b", "c")), info("c", ("b", "c")),
                             info("d")])


def test_a_job_whose_selector_no_owner_matches_is_served_by_matching_workers():
    workers = [info(w, tuple("abcd"), **({"gpu": "1"} if w == "d" else {})) for w in "abcd"]
    states = {w: state(w, workers, **({"gpu": "1"} if w == "d" else {})) for w in "abcd"}
    for name in NAMES[:50]:
        servers = [w for w, s in states.items() if s.serves(name, {"gpu": "1"})]
        assert servers == ["d"]


def test_serving_is_published_once_loaded_and_says_leaving():
    shards = state("a", [info("b", ("a", "b"))])
    assert shards.serving() is None  # not loaded yet: the others do not count it
    shards.loaded()
    assert shards.serving() == Serving(fleet_epoch(["a", "b"]), 2, False)
    shards.leave()
    assert shards.serving() == Serving(fleet_epoch(["a", "b"]), 2, True)


def test_with_shards_off_every_worker_serves_every_job_and_publishes_nothing():
    shards = ShardState("a")
    assert not shards.on and all(shards.serves(n, {}) for n in NAMES)
    shards.loaded()
    assert shards.serving() is None


@pytest.mark.parametrize("module", ["worker", "master"])
async def test_a_setting_that_contradicts_the_clusters_is_refused_in_one_line(
        module, etcd, etcd_endpoint, etcd_prefix, tmp_path):
    from cluster.keyspace import Keyspace
    await etcd.put(Keyspace(etcd_prefix).shards, SETTINGS.to_bytes())
    spill = tmp_path / "spill"
    extra = (["--spill-dir", str(spill), "--state-dir", str(tmp_path)] if module == "worker"
             else ["--state-dir", str(tmp_path)])
    done = subprocess.run(
        [sys.executable, "-m", module, "--etcd", etcd_endpoint, "--prefix", etcd_prefix,
         "--shard-slots", "128", *extra], capture_output=True, text=True, timeout=60,
        cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{module}: shards: "), lines
    assert "128 slots" in lines[0] and "64 slots" in lines[0]


def test_the_start_up_check_reads_access_and_shards_on_one_etcd_client(
        etcd_endpoint, etcd_prefix, monkeypatch):
    """Access and the shard settings are checked on the same client: one connection
    at start-up, not one per check."""
    import cluster.etcd_access as etcd_access
    import trio
    from cluster.config import Config
    from cluster.keyspace import Keyspace
    from cluster.shard_settings import ShardSettingsConflict
    from worker.__main__ import check_etcd_access

    async def put_settings() -> None:
        async with etcd_access.open_etcd([etcd_endpoint]) as etcd:
            await etcd.put(Keyspace(etcd_prefix).shards, SETTINGS.to_bytes())

    trio.run(put_settings)
    opened = []
    real = etcd_access.open_cluster_etcd

    def counted(config):
        opened.append(config)
        return real(config)

    monkeypatch.setattr(etcd_access, "open_cluster_etcd", counted)
    config = Config(etcd_endpoints=(etcd_endpoint,), prefix=etcd_prefix, shard_slots=128)
    with pytest.raises(ShardSettingsConflict, match="128 slots"):
        check_etcd_access(config)
    assert len(opened) == 1


def test_a_job_no_live_worker_can_run_is_planned_by_one_worker_only_to_count_it():
    """Its selector matches nobody: nobody serves it, and exactly one worker (its
    slot's first owner) plans it, whose Locker counts its fires unschedulable."""
    workers = [info(w, tuple("abcd")) for w in "abcd"]
    states = [state(w, workers) for w in "abcd"]
    for name in NAMES[:50]:
        assert not any(s.serves(name, {"gpu": "1"}) for s in states)
        assert sum(s.plans(name, {"gpu": "1"}) for s in states) == 1
        assert sum(s.plans(name, {}) for s in states) == 2  # a job anyone can run: R


# -- cold start by cohort -------------------------------------------------------------

import trio  # noqa: E402
import trio.testing  # noqa: E402

from worker.shards import (  # noqa: E402
    COHORT_TIMEOUT_S, CohortVerdict, cohort_verdict, settle_left)


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def test_settling_waits_a_quiet_half_second_after_the_last_change_two_at_most():
    assert settle_left(10.0, None, 10.0) == 0.5  # alone: half a second
    assert settle_left(10.0, None, 10.5) == 0
    assert settle_left(10.0, 10.3, 10.5) == pytest.approx(0.3)  # a registration at 10.3
    assert settle_left(10.0, 11.9, 11.95) == pytest.approx(0.05)  # never past 2 s
    assert settle_left(10.0, 9.0, 10.2) == pytest.approx(0.3)  # a change before it began


def test_a_cohorts_fresh_members_are_counted_though_not_serving_and_leavers_never():
    workers = [info("a"), info("b"), info("c", ("c",)), info("d", ("c", "d"), leaving=True)]
    assert [w.worker_id for w in membership(info("a"), workers, {"b"})] == ["a", "b", "c"]
    assert [w.worker_id for w in membership(info("a"), workers)] == ["a", "c"]
    assert [w.worker_id for w in membership(info("a"), workers, {"b", "d"})] == ["a", "b", "c"]


def test_the_cohort_verdict_counts_until_all_serve_as_agreed_else_falls_back():
    epoch = fleet_epoch("abc")
    loading = [info("a"), info("b"), info("c")]
    assert cohort_verdict({"b", "c"}, epoch, loading, {}, False)[0] is CohortVerdict.COUNTING
    verdict, why = cohort_verdict({"b", "c"}, epoch, loading, {}, True)
    assert verdict is CohortVerdict.FALLBACK and "b, c not serving" in why
    served = {"b": epoch, "c": epoch}
    assert cohort_verdict({"b", "c"}, epoch, loading, served, True)[0] is CohortVerdict.ENDED
    verdict, why = cohort_verdict({"b", "c"}, epoch, loading, {"b": fleet_epoch("ab")}, False)
    assert verdict is CohortVerdict.FALLBACK and "b loaded for another membership" in why
    # a member that went, or is leaving, is not waited for
    assert cohort_verdict({"b", "c"}, epoch, [info("a"), info("c", tuple("abc"), leaving=True)], {},
                          True)[0] is CohortVerdict.ENDED


async def settled(me: str, workers: list[WorkerInfo]) -> ShardState:
    shards = ShardState(me, {}, SETTINGS)
    shards.seen(workers, trio.current_time())
    await shards.settle()
    return shards


async def test_workers_starting_together_count_each_other_once_and_each_plans_its_share(
        autojump_clock):
    workers = [info(w) for w in "abcd"]  # registered, none serving yet
    states = {w: await settled(w, workers) for w in "abcd"}
    table = SlotTable.build(list("abcd"), 2, slots=SETTINGS.slots)
    for w, shards in states.items():
        assert [i.worker_id for i in shards.fleet] == list("abcd")
        assert served(shards) == {n for n in NAMES
                                  if w in table.owners[slot_of(n, SETTINGS.slots)]}
        shards.loaded()
    assert all(sum(s.serves(n, {}) for s in states.values()) == 2 for n in NAMES)
    # each says serving the cohort: agreed, the cold start ends, nothing moves
    serving = [info(w, tuple("abcd")) for w in "abcd"]
    assert all(s.proposed(serving, trio.current_time()) is None for s in states.values())
    assert {s.cohort for s in states.values()} == {"ended"}


async def test_the_settle_waits_for_registrations_still_arriving_and_a_lone_one_plans_all(
        autojump_clock):
    shards = ShardState("a", {}, SETTINGS)
    shards.seen([info("a")], trio.current_time())

    async def others_register():
        await trio.sleep(0.3)
        shards.seen([info("a"), info("b")], trio.current_time())
        await trio.sleep(0.4)  # 0.7: still within the quiet half second of b
        shards.seen([info("a"), info("b"), info("c")], trio.current_time())

    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(others_register)
        await shards.settle()
    assert trio.current_time() - t0 == pytest.approx(1.2)
    assert [w.worker_id for w in shards.fleet] == ["a", "b", "c"]
    lone = ShardState("z", {}, SETTINGS)
    t0 = trio.current_time()
    await lone.settle()
    assert trio.current_time() - t0 == pytest.approx(0.5)
    assert served(lone) == set(NAMES) and lone.cohort == "ended"


async def test_registrations_that_never_settle_are_cut_at_two_seconds(autojump_clock):
    shards = ShardState("a", {}, SETTINGS)

    async def churn():
        for i in range(100):
            shards.seen([info("a"), *(info(f"x{j}") for j in range(i))], trio.current_time())
            await trio.sleep(0.2)

    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(churn)
        await shards.settle()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - t0 == pytest.approx(2.0)


async def test_a_member_that_loaded_for_another_membership_makes_it_fall_back(
        autojump_clock):
    """c registered after b settled: b's cohort is {a, b}, a's is {a, b, c}. As soon as
    a sees b serving {a, b}, it counts only the serving workers (and reloads)."""
    a = await settled("a", [info("a"), info("b"), info("c")])
    assert [w.worker_id for w in a.fleet] == ["a", "b", "c"]
    fleet = a.proposed([info("a"), info("b", ("a", "b")), info("c")], trio.current_time())
    assert fleet is not None and [w.worker_id for w in fleet] == ["a", "b"]
    assert a.cohort == "fallback"
    a.adopt(fleet)
    # from now on c counts only once it serves, as before the cohort rule
    assert a.proposed([info("b", ("a", "b")), info("c")], trio.current_time()) is None


async def test_a_member_still_loading_after_the_timeout_makes_it_fall_back(autojump_clock):
    a = await settled("a", [info("a"), info("b"), info("c")])
    waiting = [info("a"), info("b", tuple("abc")), info("c")]
    assert a.proposed(waiting, trio.current_time()) is None and a.cohort == "counting"
    await trio.sleep(COHORT_TIMEOUT_S)
    fleet = a.proposed(waiting, trio.current_time())
    assert fleet is not None and [w.worker_id for w in fleet] == ["a", "b"]
    assert a.cohort == "fallback"


async def test_a_joiner_into_a_serving_fleet_counts_the_servers_and_its_fellow_joiners(
        autojump_clock):
    """The serving workers are in its cohort and do not count the joiners till they
    serve (make before break); a joiner counts its fellow joiners, so plans less."""
    running = [info("a", ("a", "b")), info("b", ("a", "b"))]
    c = await settled("c", [*running, info("c"), info("d")])
    assert [w.worker_id for w in c.fleet] == list("abcd")
    a = state("a", [*running, info("c"), info("d")])
    assert [w.worker_id for w in a.fleet] == ["a", "b"]  # a never waited: no cohort
