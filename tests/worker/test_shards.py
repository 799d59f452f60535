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
