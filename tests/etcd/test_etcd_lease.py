"""Leases against the shared etcd. Wall-clock: etcd expires leases on its own clock."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import EventType, LeaseExpired, Put


async def test_a_lease_not_kept_alive_expires_and_its_keys_vanish(etcd, etcd_prefix):
    key = etcd_prefix + "workers/w1"
    lease = await etcd.grant_lease(2)
    assert lease.ttl_s >= 2
    revision = await etcd.put(key, "alive", lease_id=lease.id)
    assert (await etcd.get(key)).lease_id == lease.id
    started = trio.current_time()
    async with etcd.watch_prefix(key, start_revision=revision + 1) as events:
        with trio.fail_after(20):  # TTL 2 s; etcd checks expiry every 500 ms
            event = await anext(events)
    assert (event.type, event.key) == (EventType.DELETE, key)
    assert trio.current_time() - started >= 1.0  # it did not vanish at once
    assert await etcd.get(key) is None
    with pytest.raises(LeaseExpired, match=f"{lease.id:#x}"):
        await etcd.keepalive_once(lease.id)
    with pytest.raises(LeaseExpired):
        await etcd.lease_ttl(lease.id)


async def test_keepalive_holds_a_lease_past_its_ttl(etcd, etcd_prefix):
    key = etcd_prefix + "held"
    lease = await etcd.grant_lease(2)
    await etcd.put(key, "v", lease_id=lease.id)
    for _ in range(8):  # 4 s, twice the TTL
        assert await etcd.keepalive_once(lease.id) >= 2
        await trio.sleep(0.5)
    assert await etcd.get(key) is not None
    await etcd.keepalive_once(lease.id)  # etcd truncates the TTL left to whole seconds
    assert 0 < await etcd.lease_ttl(lease.id) <= 2


async def test_revoke_deletes_the_keys_and_is_idempotent(etcd, etcd_prefix):
    lease = await etcd.grant_lease(60)
    await etcd.put(etcd_prefix + "a", "v", lease_id=lease.id)
    assert await etcd.revoke_lease(lease.id) is True
    assert await etcd.get(etcd_prefix + "a") is None
    assert await etcd.revoke_lease(lease.id) is False


async def test_writing_on_a_dead_lease_raises_lease_expired_and_applies_nothing(
        etcd, etcd_prefix):
    lease = await etcd.grant_lease(60)
    await etcd.revoke_lease(lease.id)
    with pytest.raises(LeaseExpired):
        await etcd.put(etcd_prefix + "a", "v", lease_id=lease.id)
    with pytest.raises(LeaseExpired):
        await etcd.txn([], [Put(etcd_prefix + "b", "v"), Put(etcd_prefix + "c", "v",
                                                               lease_id=lease.id)])
    assert (await etcd.get_prefix(etcd_prefix)).kvs == ()


async def test_grant_lease_rejects_a_ttl_below_one_second(etcd):
    with pytest.raises(ValueError, match="at least 1"):
        await etcd.grant_lease(0)
