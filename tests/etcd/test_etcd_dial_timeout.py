"""The dial timeout (the seed's ``etcdDialTimeout``) is gRPC's connect timeout, and how
long a call waits for a member that is still connecting before it tries the next one."""

from __future__ import annotations

import json
import socket
import time

import pytest
import trio

from cluster.config import load_config
from cluster.etcd import EtcdUnavailable, open_etcd
from cluster.etcd._connection import Connection
from cluster.etcd_access import open_cluster_etcd


@pytest.fixture
def silent_endpoint():
    """A TCP port whose connections the kernel takes and nobody answers: gRPC's
    handshake never completes, as with a host that swallows them."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def connect_attempt_s(endpoint: str, dial_timeout_s: float | None) -> float:
    """How long one gRPC connection attempt to ``endpoint`` lasts before it gives up."""
    connection = Connection([endpoint], endpoint_retry_s=1.0, dial_timeout_s=dial_timeout_s)
    [member] = connection._members
    try:
        member.dialled(0)  # a channel dials on its first use: this asks it to
        with member.changed:
            assert member.changed.wait_for(lambda: member.state.name == "CONNECTING",
                                           timeout=5)
            started = time.monotonic()
            member.changed.wait_for(lambda: member.state.name != "CONNECTING", timeout=10)
            return time.monotonic() - started
    finally:
        connection.close()


def test_the_dial_timeout_is_grpcs_connect_timeout(silent_endpoint):
    assert connect_attempt_s(silent_endpoint, None) < 0.5  # gRPC's 100 ms, as before
    assert 1.2 <= connect_attempt_s(silent_endpoint, 1.5) <= 2.5


async def test_a_member_still_connecting_costs_a_call_the_dial_timeout_at_most(
        silent_endpoint, etcd_endpoint, etcd_prefix):
    async with open_etcd([silent_endpoint, etcd_endpoint], timeout_s=3.0,
                         dial_timeout_s=0.5) as etcd:
        started = trio.current_time()
        assert await etcd.get(etcd_prefix + "k") is None
        assert trio.current_time() - started < 1.5
        assert etcd.statistics().preferred_endpoint == etcd_endpoint


async def test_a_write_to_a_member_that_never_connected_is_known_unsent(silent_endpoint):
    async with open_etcd([silent_endpoint], timeout_s=1.0, dial_timeout_s=5.0) as etcd:
        with pytest.raises(EtcdUnavailable, match="dial timeout") as raised:
            await etcd.put("/k", "v")
    assert type(raised.value) is EtcdUnavailable  # not EtcdOutcomeUnknown


async def test_the_seed_config_etcd_dial_timeout_is_the_one_used(
        tmp_path, silent_endpoint, etcd_endpoint, etcd_prefix):
    seed = {"etcdEndpoints": [silent_endpoint, etcd_endpoint], "etcdDialTimeout": 500}
    (tmp_path / "worker.json").write_text(json.dumps(seed))
    config = load_config(path=tmp_path / "worker.json", env={})
    assert config.etcd_dial_timeout_s == 0.5
    async with open_cluster_etcd(config) as etcd:
        assert etcd._connection.dial_timeout_s == 0.5
        assert await etcd.get(etcd_prefix + "k") is None


async def test_a_short_deadline_is_not_all_spent_waiting_on_a_member_still_connecting(
        silent_endpoint, etcd_endpoint, etcd_prefix):
    # A claim's 1 s deadline with the default 5 s dial timeout: half of it at most.
    async with open_etcd([silent_endpoint, etcd_endpoint], timeout_s=1.0,
                         dial_timeout_s=5.0) as etcd:
        assert await etcd.get(etcd_prefix + "k") is None
