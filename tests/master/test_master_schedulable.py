"""Jobs no live worker can run: the state the API shows (real etcd, workers' keys
written by the test), and the one event per transition that the ``unschedulable``
alert hangs on (``SchedulableTracker`` on plain milliseconds; ``SchedulableWatch``
against real etcd with a hook)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import trio

from actors import open_mailbox
from cluster.presence import WorkerInfo
from master.metrics import Metrics
from master.schedulable import SchedulableChanged, SchedulableTracker, Spell, no_worker_reason
from master.schedulable_watch import SchedulableWatch

ZONED = {"command": "true", "cronExpr": "* * * * * *", "selector": {"zone": "b"}}


async def register(master, worker_id: str, **labels: str) -> int:
    """A worker's key as its Registrar writes it (on a lease of its own)."""
    lease = await master.etcd.grant_lease(30)
    info = WorkerInfo(worker_id, "h", 1, labels=labels)
    await master.etcd.put(master.keyspace.worker(worker_id), info.to_bytes(), lease_id=lease.id)
    return lease.id


def test_the_reason_names_the_labels_no_live_worker_has():
    fleet = [{"zone": "a"}, {"zone": "a", "disk": "ssd"}]
    assert no_worker_reason({"zone": "b"}, fleet) == "no live worker has zone=b"
    assert no_worker_reason({"zone": "a", "disk": "hdd"}, fleet) == \
        "no live worker has disk=hdd, zone=a"
    assert no_worker_reason({"zone": "a", "disk": "ssd"}, fleet) is None
    assert no_worker_reason({"zone": "b"}, []) == "no live worker has zone=b"
    assert no_worker_reason({}, []) is None  # no selector: a fleet outage, not the job's


def test_each_transition_is_announced_once_after_it_settles():
    t = SchedulableTracker(settle_ms=5_000)
    why = "no live worker has zone=b"
    announced = []
    for now in range(0, 30_000, 1_000):  # seen again every second: one event, not one each
        t.observe("j", why, now)
        announced += t.due(now)
    assert announced == [SchedulableChanged("j", False, why, 0, 5_000)]
    assert t.unschedulable == 1 and t.next_due_ms() is None
    t.observe("j", None, 30_000)  # a zone=b worker joined
    assert t.next_due_ms() == 35_000 and t.due(34_999) == []
    [up] = t.due(35_000)
    assert up == SchedulableChanged("j", True, None, 30_000, 35_000) and t.unschedulable == 0
    for now in range(35_000, 60_000, 1_000):
        t.observe("j", None, now)
        assert t.due(now) == []


def test_a_worker_restart_inside_the_settle_time_announces_nothing():
    t = SchedulableTracker(settle_ms=5_000)
    t.observe("j", None, 0)
    t.observe("j", "no live worker has zone=b", 1_000)  # its only worker restarts...
    t.observe("j", None, 2_500)  # ...and is back
    assert t.next_due_ms() is None and t.due(10_000) == []
    t.observe("j", "no live worker has zone=b", 20_000)
    t.observe("j", "no live worker has zone=b, disk=ssd", 22_000)  # other words, same state
    assert [c.reason for c in t.due(25_000)] == ["no live worker has zone=b, disk=ssd"]
    t.forget("j")  # deleted: nothing more about it
    assert t.unschedulable == 0 and t.due(99_000) == []


def test_a_restored_spell_goes_on_until_the_job_is_seen_schedulable():
    """A spell a master before this one left open (``unschedulable/<name>``)."""
    t = SchedulableTracker(settle_ms=5_000)
    why = "no live worker has zone=b"
    t.restore("j", why)
    t.restore("k", why)
    assert t.unschedulable == 2 and t.announced() == {"j", "k"}
    for now in range(0, 30_000, 1_000):  # still unschedulable: the same spell, no event
        t.observe("j", why, now)
        assert t.due(now) == []
    t.observe("k", None, 1_000)  # schedulable now: its return is announced, once
    assert t.due(5_999) == [] and t.due(6_000) == [SchedulableChanged("k", True, None,
                                                                      1_000, 6_000)]
    assert t.announced() == {"j"} and t.is_announced("j") and not t.is_announced("k")


@pytest.mark.parametrize("value", [b"", b"[]", b"{}", b'{"since": "1", "reason": "x"}',
                                   b'{"since": -1, "reason": "x"}',
                                   b'{"since": true, "reason": "x"}',
                                   b'{"since": 1}', b"\xff"])
def test_a_spell_that_does_not_decode_is_none(value):
    assert Spell.from_bytes(value) is None


def test_a_spell_round_trips():
    spell = Spell(1_700_000_000_000, "no live worker has zone=b")
    assert Spell.from_bytes(spell.to_bytes()) == spell
    assert json.loads(spell.to_bytes()) == {"since": 1_700_000_000_000,
                                            "reason": "no live worker has zone=b"}


async def test_the_api_shows_a_job_no_live_worker_can_run_and_when_one_joins(master):
    await register(master, "wa", zone="a")
    saved = await master.put("/api/v1/jobs/zoned", json=ZONED)
    assert saved.status == 201 and saved.json["warnings"] == []
    job = (await master.get("/api/v1/jobs/zoned")).json["job"]
    assert (job["schedulable"], job["reason"]) == (False, "no live worker has zone=b")
    assert isinstance(job["nextFire"], int)
    [listed] = (await master.get("/api/v1/jobs")).json["jobs"]
    assert (listed["schedulable"], listed["reason"]) == (False, "no live worker has zone=b")
    await master.post("/api/v1/jobs/zoned/pause")
    paused = (await master.get("/api/v1/jobs/zoned")).json["job"]
    assert (paused["schedulable"], paused["reason"]) == (True, "paused")
    await master.post("/api/v1/jobs/zoned/resume")
    await register(master, "wb", zone="b")
    job = (await master.get("/api/v1/jobs/zoned")).json["job"]
    assert (job["schedulable"], job["reason"]) == (True, None)


async def test_the_watch_announces_each_change_once_to_its_hook(master):
    changes: list[SchedulableChanged] = []

    async def hook(change: SchedulableChanged) -> None:
        changes.append(change)

    ctx = dataclasses.replace(master.ctx, metrics=Metrics())  # apart from the master's own
    _, inbox = open_mailbox(1, name="schedulable-test")
    watch = SchedulableWatch(inbox, ctx, master.etcd, on_change=hook, settle_s=0.3)
    metrics = ctx.metrics
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        await register(master, "wa", zone="a")
        await master.put("/api/v1/jobs/zoned", json=ZONED)
        await master.put("/api/v1/jobs/free", json={**ZONED, "selector": {}})
        for i in range(10):  # workers republish: nothing changes for the job
            await register(master, "wa", zone="a")
            await trio.sleep(0.1)
        assert [(c.job, c.schedulable, c.reason) for c in changes] == [
            ("zoned", False, "no live worker has zone=b")]
        assert metrics.value("jobs_unschedulable") == 1
        lease = await register(master, "wb", zone="b")
        await trio.sleep(0.8)
        assert [(c.job, c.schedulable) for c in changes[1:]] == [("zoned", True)]
        await master.etcd.revoke_lease(lease)  # it leaves: unschedulable again
        await trio.sleep(0.8)
        assert metrics.value("jobs_unschedulable") == 1
        await master.delete("/api/v1/jobs/zoned")  # gone: nothing more about it
        await trio.sleep(0.8)
        assert metrics.value("jobs_unschedulable") == 0
        nursery.cancel_scope.cancel()
    assert [(c.job, c.schedulable) for c in changes] == [
        ("zoned", False), ("zoned", True), ("zoned", False)]
    assert metrics.value("schedulable_changes_total", to="unschedulable") == 2
    assert metrics.value("schedulable_changes_total", to="schedulable") == 1
