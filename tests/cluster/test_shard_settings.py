"""The cluster's shard settings in etcd (cluster.shard_settings, issue 14): written once,
the same for every process that starts, absent meaning "shards off", and a process
whose own setting contradicts the stored one refused with one line."""

from __future__ import annotations

import pytest
import trio

from cluster.keyspace import Keyspace
from cluster.shard_settings import (ShardSettings, ShardSettingsConflict, ShardSettingsError,
                                    ShardSettingsInvalid, initialise_shards, read_shards,
                                    shards_at_start)
from cluster.slots import DEFAULT_REPLICAS, DEFAULT_SLOTS, MAX_SLOTS


@pytest.fixture
def ks(etcd_prefix) -> Keyspace:
    return Keyspace(etcd_prefix)


# ---------------------------------------------------------------- the value


def test_defaults_are_the_slot_table_s() -> None:
    assert ShardSettings() == ShardSettings(DEFAULT_SLOTS, DEFAULT_REPLICAS)


@pytest.mark.parametrize("slots, replicas", [
    (0, 2), (-1, 2), (MAX_SLOTS + 1, 2), (256, 0), (True, 2), (256, True), ("256", 2),
    (256.0, 2), (None, 2),
])
def test_invalid_values_are_refused_with_one_line(slots, replicas) -> None:
    with pytest.raises(ShardSettingsInvalid, match=r"^shards: invalid ") as caught:
        ShardSettings(slots, replicas)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ShardSettingsError) and isinstance(caught.value, ValueError)


def test_the_bounds_themselves_are_accepted() -> None:
    assert ShardSettings(1, 1).slots == 1
    assert ShardSettings(MAX_SLOTS, 7).slots == MAX_SLOTS


def test_a_single_replica_is_refused_outside_tests() -> None:
    single = ShardSettings(256, 1)
    with pytest.raises(ShardSettingsInvalid, match="1 replica leaves a slot with no cover"):
        single.check_replicas()
    assert single.check_replicas(allow_single_replica=True) is single
    assert ShardSettings(256, 2).check_replicas() == ShardSettings(256, 2)


def test_the_stored_json_round_trips_and_is_stable() -> None:
    value = ShardSettings(1024, 3)
    assert value.to_bytes() == b'{"replicas":3,"slots":1024}'
    assert ShardSettings.from_bytes(value.to_bytes()) == value
    # A later release may add fields: they are ignored, not refused.
    assert ShardSettings.from_bytes('{"slots":1024,"replicas":3,"v":2}') == value


@pytest.mark.parametrize("stored, why", [
    (b"", "not JSON"), (b"{", "not JSON"), (b"\xff", "not JSON"), (b"[256, 2]", "JSON object"),
    (b'{"slots": 256}', "JSON object"), (b'{"replicas": 2}', "JSON object"),
    (b'{"slots": 0, "replicas": 2}', "invalid slot count"),
    (b'{"slots": 256, "replicas": "2"}', "invalid replication factor"),
])
def test_a_stored_value_that_is_not_ours_is_refused(stored, why) -> None:
    with pytest.raises(ShardSettingsInvalid, match=why) as caught:
        ShardSettings.from_bytes(stored)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- in etcd


async def test_an_absent_key_reads_as_shards_off_and_reading_creates_nothing(etcd, ks) -> None:
    assert await read_shards(etcd, ks) is None
    assert await shards_at_start(etcd, ks, None) is None
    # A worker's own setting never turns shards on for the cluster.
    assert await shards_at_start(etcd, ks, ShardSettings(512, 3)) is None
    assert await etcd.get(ks.shards) is None


async def test_the_first_initialiser_writes_and_later_ones_get_its_value(etcd, ks) -> None:
    assert await initialise_shards(etcd, ks, ShardSettings(512, 3)) == ShardSettings(512, 3)
    assert await initialise_shards(etcd, ks, ShardSettings(256, 2)) == ShardSettings(512, 3)
    assert await read_shards(etcd, ks) == ShardSettings(512, 3)
    kv = await etcd.get(ks.shards)
    assert kv is not None and kv.value == b'{"replicas":3,"slots":512}'


async def test_concurrent_initialisers_agree_on_one_value(etcd, ks) -> None:
    """Twenty processes start together, each wanting its own settings: one write wins,
    and all of them come back with that one value, which is what etcd holds."""
    wanted = [ShardSettings(2 ** (4 + i % 8), 2 + i % 3) for i in range(20)]
    got: list[ShardSettings | None] = [None] * len(wanted)

    async def start(i: int) -> None:
        got[i] = await initialise_shards(etcd, ks, wanted[i])

    async with trio.open_nursery() as nursery:
        for i in range(len(wanted)):
            nursery.start_soon(start, i)
    stored = await read_shards(etcd, ks)
    assert stored in wanted
    assert got == [stored] * len(wanted)
    kv = await etcd.get(ks.shards)
    assert kv is not None and kv.version == 1  # written once, never overwritten


async def test_a_contradicting_local_setting_is_refused(etcd, ks) -> None:
    await initialise_shards(etcd, ks, ShardSettings(256, 2))
    for local in (ShardSettings(512, 2), ShardSettings(256, 3)):
        for initialise in (False, True):
            with pytest.raises(ShardSettingsConflict) as caught:
                await shards_at_start(etcd, ks, local, initialise=initialise)
            message = str(caught.value)
            assert "\n" not in message
            assert f"set to {local}" in message and "says 256 slots, 2 replicas" in message
            assert ks.shards in message
    assert await read_shards(etcd, ks) == ShardSettings(256, 2)  # unchanged by the refusals


async def test_an_agreeing_or_absent_local_setting_follows_the_cluster(etcd, ks) -> None:
    assert await shards_at_start(etcd, ks, ShardSettings(1024, 3), initialise=True) \
        == ShardSettings(1024, 3)
    assert await shards_at_start(etcd, ks, ShardSettings(1024, 3)) == ShardSettings(1024, 3)
    assert await shards_at_start(etcd, ks, None) == ShardSettings(1024, 3)
    assert await shards_at_start(etcd, ks, None, initialise=True) == ShardSettings(1024, 3)


async def test_a_single_replica_is_neither_written_nor_followed_outside_tests(etcd, ks) -> None:
    with pytest.raises(ShardSettingsInvalid, match="no cover"):
        await shards_at_start(etcd, ks, ShardSettings(256, 1), initialise=True)
    assert await etcd.get(ks.shards) is None  # refused before anything was written
    # A test's cluster may have one; a process outside tests still refuses to follow it.
    assert await shards_at_start(etcd, ks, ShardSettings(256, 1), initialise=True,
                                 allow_single_replica=True) == ShardSettings(256, 1)
    with pytest.raises(ShardSettingsInvalid, match="no cover"):
        await shards_at_start(etcd, ks, None)
    assert await shards_at_start(etcd, ks, None, allow_single_replica=True) \
        == ShardSettings(256, 1)


async def test_a_stored_value_not_ours_stops_the_start(etcd, ks) -> None:
    await etcd.put(ks.shards, b"256")
    with pytest.raises(ShardSettingsInvalid, match="JSON object"):
        await read_shards(etcd, ks)
    with pytest.raises(ShardSettingsInvalid, match="JSON object"):
        await shards_at_start(etcd, ks, ShardSettings(), initialise=True)
    assert (await etcd.get(ks.shards)).value == b"256"  # never overwritten


def test_the_key_is_one_no_other_part_of_the_keyspace_claims(ks) -> None:
    assert ks.shards == f"{ks.prefix}shards"
    assert ks.parse(ks.shards) is None
