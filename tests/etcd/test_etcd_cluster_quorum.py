"""The adapter tells a cluster without quorum from one that is down: two of three
members stopped leave one that answers Status but knows no leader."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import EtcdNoQuorum, EtcdUnavailable, open_etcd



async def wait_quorum(etcd, want: bool, timeout_s: float) -> float:
    started = trio.current_time()
    with trio.fail_after(timeout_s):
        while await etcd.has_quorum() != want:
            await trio.sleep(0.05)
    return trio.current_time() - started


async def test_no_quorum_seen_then_back(etcd_cluster_factory):
    cluster = etcd_cluster_factory()
    async with open_etcd(cluster.endpoints, timeout_s=1.0) as etcd:
        assert await etcd.has_quorum()
        await etcd.check_quorum()
        leader = await trio.to_thread.run_sync(cluster.wait_leader)
        victims = [m for m in cluster.members if m is not leader]
        for victim in victims:
            cluster.kill(victim)
        lost_s = await wait_quorum(etcd, False, 5.0)  # the leader steps down (check quorum)
        with pytest.raises(EtcdNoQuorum, match="no quorum"):
            await etcd.check_quorum()
        with pytest.raises(EtcdUnavailable):  # and a write gets no answer
            await etcd.put("quorum-probe", "x")
        for victim in victims:
            await trio.to_thread.run_sync(cluster.restart, victim)
        back_s = await wait_quorum(etcd, True, 10.0)
        await etcd.put("quorum-probe", "y")
        cluster.kill(leader)
        cluster.kill(victims[0])
        cluster.kill(victims[1])
        with pytest.raises(EtcdUnavailable) as down:  # none answers: down, not no quorum
            await etcd.check_quorum()
        assert not isinstance(down.value, EtcdNoQuorum)
    print(f"no quorum seen {lost_s:.2f} s after the kill; back {back_s:.2f} s after restart")
