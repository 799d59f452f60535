"""Endpoints that are dead or silent: fail-over, deadlines, cancellation."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import trio

from cluster.etcd import Compare, EtcdOutcomeUnknown, EtcdUnavailable, Put, open_etcd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from services import free_port  # noqa: E402


def dead_endpoint() -> str:
    return f"127.0.0.1:{free_port()}"  # nobody listens: connections are refused


@pytest.fixture
def hung_etcd(etcd_factory):
    """A private etcd that is connected to, then frozen (SIGSTOP): it never answers."""
    server = etcd_factory()

    def freeze() -> None:
        os.kill(server.process.pid, signal.SIGSTOP)

    yield server, freeze
    os.kill(server.process.pid, signal.SIGCONT)  # let the factory stop it


@pytest.mark.parametrize("order", ["dead-first", "live-first"])
async def test_calls_succeed_through_the_live_endpoint(etcd_endpoint, etcd_prefix, order):
    dead = dead_endpoint()
    endpoints = [dead, etcd_endpoint] if order == "dead-first" else [etcd_endpoint, dead]
    async with open_etcd(endpoints, timeout_s=5.0) as etcd:
        with trio.fail_after(10):
            revision = await etcd.put(etcd_prefix + "k", "v")  # unsent to the dead one
            claim = await etcd.txn([Compare.create_revision(etcd_prefix + "lock", "==", 0)],
                                   [Put(etcd_prefix + "lock", "me")])
            assert claim.succeeded
            assert (await etcd.get(etcd_prefix + "k")).mod_revision == revision
            async with etcd.watch_prefix(etcd_prefix, start_revision=revision) as events:
                assert (await anext(events)).key == etcd_prefix + "k"
        stats = etcd.statistics()
        await etcd.delete_prefix(etcd_prefix)
    assert stats.preferred_endpoint == etcd_endpoint
    assert stats.set_aside == ((dead,) if order == "dead-first" else ())


async def test_all_endpoints_dead_fails_fast_and_says_the_write_was_not_applied():
    async with open_etcd([dead_endpoint(), dead_endpoint()], timeout_s=5.0) as etcd:
        with trio.fail_after(4):
            with pytest.raises(EtcdUnavailable, match="Connection refused") as raised:
                await etcd.put("/k", "v")
    assert not isinstance(raised.value, EtcdOutcomeUnknown)  # never reached a server


async def test_a_hung_etcd_costs_one_deadline(hung_etcd):
    server, freeze = hung_etcd
    async with open_etcd([server.endpoint], timeout_s=0.5) as etcd:
        await etcd.get("/k")  # connected
        freeze()
        started = trio.current_time()
        with pytest.raises(EtcdUnavailable, match="DEADLINE_EXCEEDED") as raised:
            await etcd.get("/k")
        assert not isinstance(raised.value, EtcdOutcomeUnknown)  # a read: nothing to apply
        with pytest.raises(EtcdOutcomeUnknown):  # sent, maybe applied: say so
            await etcd.put("/k", "v")
        assert trio.current_time() - started < 3.0


async def test_a_cancelled_call_returns_at_once_and_close_waits_for_its_thread(hung_etcd):
    server, freeze = hung_etcd
    async with open_etcd([server.endpoint], timeout_s=30.0) as etcd:
        await etcd.get("/k")
        freeze()
        started = trio.current_time()
        with trio.move_on_after(0.2) as waited:
            await etcd.get("/k")
        assert waited.cancelled_caught
        assert trio.current_time() - started < 1.0
        assert etcd.statistics().threads_busy == 1  # abandoned, still in its RPC
    # Closing cancelled the RPC, so the 30 s deadline was not waited for.
    assert trio.current_time() - started < 5.0
    assert etcd.statistics().threads_busy == 0


async def test_a_watch_opened_first_fails_over_to_the_live_endpoint(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint], timeout_s=5.0) as writer:
        revision = await writer.put(etcd_prefix + "k", "v")
        await writer.delete(etcd_prefix + "k")
    async with open_etcd([dead_endpoint(), etcd_endpoint], timeout_s=5.0) as etcd:
        async with etcd.watch_prefix(etcd_prefix, start_revision=revision) as events:
            with trio.fail_after(10):
                assert (await anext(events)).key == etcd_prefix + "k"
            assert events.statistics().reconnects == 1  # the dead endpoint, once
