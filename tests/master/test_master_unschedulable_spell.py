"""An unschedulable spell outlives the master that announced it (issue 12, "Semantics"
4: the ``unschedulable`` alert is raised once, not once per fire, nor once per master
restart). Real masters (their whole tree: SchedulableWatch, ``unschedulable_hook``,
the AlertManager) on the shared etcd, the outbox in the shared MariaDB; a master restart
is one ``running_master`` stopped and another started on the same config."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
import trio

from actors import open_mailbox
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from cluster.store import open_store
from master import MasterContext
from master.schedulable import SchedulableChanged, Spell
from master.schedulable_watch import SchedulableWatch

from master_testkit import make_config, running_master

SETTLE_S = 0.3
QUIET_S = 6 * SETTLE_S  # long enough for a change to have been announced, had it been
ZONED = {"command": "true", "cronExpr": "@every 1h", "selector": {"zone": "b"}}
WHY = "no live worker has zone=b"


@pytest.fixture
def config(tmp_path, etcd_endpoint, etcd_prefix, mysql_url):
    return make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=mysql_url)


async def register(etcd, ks: Keyspace, worker_id: str, **labels: str) -> int:
    """A worker's key as its Registrar writes it (on a lease of its own)."""
    lease = await etcd.grant_lease(30)
    info = WorkerInfo(worker_id, "h", 1, labels=labels)
    await etcd.put(ks.worker(worker_id), info.to_bytes(), lease_id=lease.id)
    return lease.id


async def spell(etcd, ks: Keyspace, job: str) -> dict[str, Any] | None:
    """The job's open spell as kept in etcd (None: closed)."""
    kv = await etcd.get(ks.unschedulable(job))
    return None if kv is None else json.loads(kv.value)


async def eventually(probe: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """The probe's first truthy answer (awaited if it is awaitable); fails after
    ``timeout_s``."""
    with trio.fail_after(timeout_s):
        while True:
            answer = probe()
            if inspect.isawaitable(answer):
                answer = await answer
            if answer:
                return answer
            await trio.sleep(0.05)


async def closed(etcd, ks: Keyspace, job: str) -> bool:
    """No spell of the job's is kept (its key is gone, whatever it held)."""
    return await etcd.get(ks.unschedulable(job)) is None


async def alerts_of(store, job: str) -> list[str]:
    """The ids of the ``unschedulable`` events queued for the job (the row each has
    before it is resolved into its channels' rows)."""
    return [r["event_id"] for r in await store.alerts.rows(job)
            if r["kind"] == "unschedulable" and r["channel"] == ""]


def gauge(master) -> float:
    return master.ctx.metrics.value("jobs_unschedulable")


def changes(master, to: str) -> float:
    """Changes announced by this master (a label never counted has no sample yet)."""
    return master.ctx.metrics.value("schedulable_changes_total", to=to) or 0


async def test_a_restarted_master_goes_on_with_the_spell_and_alerts_once(config, etcd):
    ks = Keyspace(config.prefix)
    async with open_store(config.db_url) as store:
        async with running_master(config, schedulable_settle_s=SETTLE_S) as first:
            await register(etcd, ks, "wa", zone="a")
            assert (await first.put("/api/v1/jobs/zoned", json=ZONED)).status == 201
            opened = await eventually(lambda: spell(etcd, ks, "zoned"))
            assert opened["reason"] == WHY and changes(first, "unschedulable") == 1
            first_alert = f"unschedulable:zoned:{opened['since']}"
            assert await alerts_of(store, "zoned") == [first_alert]
        # The master restarts while the job is still unschedulable: the same spell.
        async with running_master(config, schedulable_settle_s=SETTLE_S) as second:
            await eventually(lambda: gauge(second) == 1)
            await trio.sleep(QUIET_S)
            assert changes(second, "unschedulable") == 0  # nothing announced again
            assert await spell(etcd, ks, "zoned") == opened
            assert await alerts_of(store, "zoned") == [first_alert]
            job = (await second.get("/api/v1/jobs/zoned")).json["job"]
            assert (job["schedulable"], job["reason"]) == (False, WHY)
            # A matching worker joins: the spell closes.
            lease = await register(etcd, ks, "wb", zone="b")
            await eventually(lambda: changes(second, "schedulable") == 1)
            assert await closed(etcd, ks, "zoned") and gauge(second) == 0
            # It leaves again: a new spell, a second alert.
            await etcd.revoke_lease(lease)
            reopened = await eventually(lambda: spell(etcd, ks, "zoned"))
            assert reopened["since"] > opened["since"] and reopened["reason"] == WHY
            assert await alerts_of(store, "zoned") == [
                first_alert, f"unschedulable:zoned:{reopened['since']}"]
            assert changes(second, "unschedulable") == 1 and gauge(second) == 1


async def test_a_deleted_job_or_one_back_while_the_master_was_down_closes_its_spell(
        config, etcd):
    ks = Keyspace(config.prefix)
    names = ("gone", "back", "kept", "deleted")
    async with open_store(config.db_url) as store:
        async with running_master(config, schedulable_settle_s=SETTLE_S) as first:
            await register(etcd, ks, "wa", zone="a")
            for name in names:
                assert (await first.put(f"/api/v1/jobs/{name}", json=ZONED)).status == 201
            for name in names:
                await eventually(lambda: spell(etcd, ks, name))
            # Deleted while its master runs: the spell closes with it.
            assert (await first.delete("/api/v1/jobs/deleted")).status == 200
            await eventually(lambda: closed(etcd, ks, "deleted"))
            await eventually(lambda: gauge(first) == 3)
        # While no master runs, one job is deleted and another's selector now matches.
        await etcd.delete(ks.job("gone"))
        await etcd.put(ks.job("back"), json.dumps({"name": "back", **ZONED,
                                                   "selector": {"zone": "a"}}))
        async with running_master(config, schedulable_settle_s=SETTLE_S) as second:
            await eventually(lambda: closed(etcd, ks, "gone"))
            await eventually(lambda: closed(etcd, ks, "back"))
            await trio.sleep(QUIET_S)
            assert (await spell(etcd, ks, "kept"))["reason"] == WHY
            assert gauge(second) == 1 and changes(second, "unschedulable") == 0
            assert changes(second, "schedulable") == 1  # "back" is announced back
        # One alert per job, each raised once, whatever the restarts.
        for name in names:
            assert len(await alerts_of(store, name)) == 1, name


async def test_a_spell_whose_alert_was_not_queued_is_announced_again_after_a_restart(
        config, etcd):
    """The hook failed (the store down): no spell is kept, so the next master announces
    the job again and its alert gets another chance, rather than none."""
    ks = Keyspace(config.prefix)
    await register(etcd, ks, "wa", zone="a")
    await etcd.put(ks.job("zoned"), json.dumps({"name": "zoned", **ZONED}))
    seen: list[SchedulableChanged] = []

    async def failing(change: SchedulableChanged) -> None:
        seen.append(change)
        raise RuntimeError("the run store is down")

    async def queued(change: SchedulableChanged) -> None:
        seen.append(change)

    for hook in (failing, queued, queued):  # three masters, one after the other
        _, inbox = open_mailbox(1, name="schedulable-test")
        watch = SchedulableWatch(inbox, MasterContext.create(config), etcd, on_change=hook,
                                 settle_s=SETTLE_S)
        async with trio.open_nursery() as nursery:
            await nursery.start(watch.run)
            await trio.sleep(QUIET_S)
            nursery.cancel_scope.cancel()
        if hook is failing:
            assert await closed(etcd, ks, "zoned")
    assert [(c.job, c.schedulable) for c in seen] == [("zoned", False), ("zoned", False)]
    assert seen[1].since_ms > seen[0].since_ms
    assert (await spell(etcd, ks, "zoned")) == {"since": seen[1].since_ms, "reason": WHY}


async def test_a_value_that_is_not_a_spell_is_closed_at_start(config, etcd):
    ks = Keyspace(config.prefix)
    await etcd.put(ks.unschedulable("ghost"), b"not json")
    await etcd.put(ks.unschedulable("stale"), Spell(5, WHY).to_bytes())  # no such job
    _, inbox = open_mailbox(1, name="schedulable-test")
    watch = SchedulableWatch(inbox, MasterContext.create(config), etcd, settle_s=SETTLE_S)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        await eventually(lambda: closed(etcd, ks, "ghost"))
        await eventually(lambda: closed(etcd, ks, "stale"))
        nursery.cancel_scope.cancel()
