"""The cluster's shard settings: S slots and R replicas, kept once in etcd (issue 14).

Why in etcd and not in each process's settings: every process must compute the same
slot table (``cluster.slots``), so S and R are properties of the cluster. Two workers
that disagree on S place every job differently; on R, they disagree on who backs up a
fire. So the first process that turns shards on writes ``<p>shards`` once, in a
create-if-absent transaction (two processes starting together both end up with the
first one's value), and every process checks its own setting against it at start-up,
refusing with one line when they contradict (DESIGN §6b). Changing S is a migration of
a stopped cluster, never an upgrade: nothing here rewrites the key.

An absent key means "shards off": the cluster places every job on every worker, as
before issue 14. Reading never creates it; only ``initialise_shards`` does.

R = 1 leaves a slot with no cover when its one owner dies (its fires are missed until
another worker has loaded it), so it is refused unless the caller says it is a test
(``allow_single_replica``).

Errors::

    ValueError
     └── ShardSettingsError        anything wrong with shard settings
         ├── ShardSettingsInvalid  a bad S or R, a single replica outside tests, or a
         │                         stored value that is not ours
         └── ShardSettingsConflict this process's setting contradicts the cluster's
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .etcd import Compare, Etcd, Get, GetResult, Put
from .keyspace import Keyspace
from .slots import DEFAULT_REPLICAS, DEFAULT_SLOTS, MAX_SLOTS, SlotError, check_count

__all__ = [
    "ShardSettings", "ShardSettingsConflict", "ShardSettingsError", "ShardSettingsInvalid",
    "initialise_shards", "local_shards", "read_shards", "shards_at_start",
]

MIN_REPLICAS: Final = 2  # outside tests: one owner's death must not leave a slot bare


class ShardSettingsError(ValueError):
    """Anything wrong with the shard settings; the message is one line."""


class ShardSettingsInvalid(ShardSettingsError):
    """A bad slot count or replication factor, or a stored value that is not ours."""


class ShardSettingsConflict(ShardSettingsError):
    """This process's setting contradicts the one the cluster stored."""

    def __init__(self, key: str, local: ShardSettings, stored: ShardSettings) -> None:
        self.key = key
        self.local = local
        self.stored = stored
        super().__init__(
            f"shards: this process is set to {local}, but the cluster's {key} says "
            f"{stored}; a cluster's shards change only by a migration with the fleet "
            "stopped (DESIGN §6b)")


@dataclass(frozen=True, slots=True)
class ShardSettings:
    """S (``slots``) and R (``replicas``): validated when made, whoever makes them."""

    slots: int = DEFAULT_SLOTS
    replicas: int = DEFAULT_REPLICAS

    def __post_init__(self) -> None:
        try:
            check_count("slot count", self.slots, MAX_SLOTS)
            check_count("replication factor", self.replicas)
        except SlotError as exc:
            raise ShardSettingsInvalid(f"shards: {exc}") from None

    def __str__(self) -> str:
        return f"{self.slots} slots, {self.replicas} replicas"

    def check_replicas(self, *, allow_single_replica: bool = False) -> ShardSettings:
        """Refuse R = 1 unless a test asks for it: a slot's one owner dying would leave
        its fires unclaimed until another worker has loaded the slot."""
        if self.replicas < MIN_REPLICAS and not allow_single_replica:
            raise ShardSettingsInvalid(
                f"shards: {self.replicas} replica leaves a slot with no cover when its "
                f"worker dies; use at least {MIN_REPLICAS}")
        return self

    def to_bytes(self) -> bytes:
        return json.dumps({"replicas": self.replicas, "slots": self.slots},
                          separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> ShardSettings:
        """The stored value: ``{"slots": S, "replicas": R}``; unknown fields are kept for
        a later release and ignored."""
        try:
            value: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ShardSettingsInvalid(f"shards: stored value is not JSON ({exc})") from None
        if not isinstance(value, dict) or "slots" not in value or "replicas" not in value:
            raise ShardSettingsInvalid(
                'shards: stored value must be a JSON object {"slots": S, "replicas": R}')
        return cls(slots=value["slots"], replicas=value["replicas"])


def local_shards(slots: int, replicas: int) -> ShardSettings | None:
    """A process's own setting from its config (``shard_slots``, ``shard_replicas``):
    None when it has none (``slots`` 0)."""
    return ShardSettings(slots, replicas) if slots else None


async def read_shards(etcd: Etcd, keyspace: Keyspace) -> ShardSettings | None:
    """The cluster's settings, or None when shards are off (the key is absent)."""
    kv = await etcd.get(keyspace.shards)
    return None if kv is None else ShardSettings.from_bytes(kv.value)


async def initialise_shards(etcd: Etcd, keyspace: Keyspace,
                            wanted: ShardSettings) -> ShardSettings:
    """Write ``wanted`` unless the cluster has settings already; return what is stored.

    One transaction (create if absent, else read), so that processes starting together
    agree: each gets the first one's value, which may not be its own (the caller checks,
    as ``shards_at_start`` does)."""
    key = keyspace.shards
    result = await etcd.txn([Compare.create_revision(key, "==", 0)],
                            success=[Put(key, wanted.to_bytes())], failure=[Get(key)])
    if result.succeeded:
        return wanted
    got = result.responses[0]
    assert isinstance(got, GetResult) and got.kvs, "the failure branch read an existing key"
    return ShardSettings.from_bytes(got.kvs[0].value)


async def shards_at_start(etcd: Etcd, keyspace: Keyspace, local: ShardSettings | None, *,
                          initialise: bool = False,
                          allow_single_replica: bool = False) -> ShardSettings | None:
    """The settings this process runs with, checked at its start; None: shards off.

    ``local``: this process's own setting, None when it has none (it follows the
    cluster). ``initialise``: write ``local`` when the cluster has none (the master);
    a worker only reads, so its setting alone never turns shards on for the cluster.
    Raises ``ShardSettingsConflict`` when ``local`` contradicts the stored value, and
    ``ShardSettingsInvalid`` for a single replica outside tests or a stored value that
    is not ours; both are one line for the process to print before it exits.

    A worker with a setting in a cluster that has none runs with shards off, as the
    cluster does (a worker that plans every job is safe beside sharded ones: the claim
    is exactly once either way); it learns of settings written later at its next start."""
    if initialise and local is not None:
        stored: ShardSettings | None = await initialise_shards(
            etcd, keyspace, local.check_replicas(allow_single_replica=allow_single_replica))
    else:
        stored = await read_shards(etcd, keyspace)
    if stored is None:
        return None
    if local is not None and local != stored:
        raise ShardSettingsConflict(keyspace.shards, local, stored)
    return stored.check_replicas(allow_single_replica=allow_single_replica)
