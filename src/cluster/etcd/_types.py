"""Frozen records the adapter returns, decoupled from etcd3's protobuf objects.

Keys are ``str`` (our keyspace is UTF-8 paths) and values ``bytes`` (the caller
owns the encoding). Keys that are not valid UTF-8 decode with ``surrogateescape``
so that they round-trip instead of crashing a prefix read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from etcd3.etcdrpc import kv_pb2

Key = str | bytes


def encode_key(key: Key) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")


def encode_value(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def prefix_range_end(prefix: bytes) -> bytes:
    """The smallest key after every key that starts with ``prefix`` (etcd's range end)."""
    end = bytearray(prefix)
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"  # prefix of only 0xff bytes (or empty): to the end of the keyspace


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as etcd stores it. ``lease_id`` 0 means no lease."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease_id: int

    @classmethod
    def from_proto(cls, kv: kv_pb2.KeyValue) -> "KeyValue":
        return cls(
            key=kv.key.decode("utf-8", "surrogateescape"),
            value=kv.value,
            create_revision=kv.create_revision,
            mod_revision=kv.mod_revision,
            version=kv.version,
            lease_id=kv.lease,
        )


class PrefixStamp(NamedTuple):
    """What changes under a prefix whenever anything under it changes: the number of
    keys and the newest ``mod_revision`` among them (a put raises it, a deletion alone
    lowers the count). A mirror of the range that shows the same two figures is as
    current as this read, whose ``revision`` it also carries."""

    count: int
    newest: int  # 0 when the range is empty
    revision: int


class PrefixSnapshot(NamedTuple):
    """A consistent read of a prefix: watch from ``revision + 1`` to miss nothing."""

    kvs: tuple[KeyValue, ...]
    revision: int


class PrefixPage(NamedTuple):
    """One page of a paged read (``Etcd.get_prefix_page``): up to ``limit`` keys in key
    order at ``revision``; ``more``: keys after the last one are left for the next page."""

    kvs: tuple[KeyValue, ...]
    revision: int
    more: bool


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease; ``ttl_s`` is what the server granted (it may round up)."""

    id: int
    ttl_s: int


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change under a watched prefix.

    For ``DELETE``, ``kv`` carries only the key and the deletion's revision
    (``mod_revision``); ``prev`` is the value before the change when the watch
    asked for it (``prev_kv=True``), else None.
    """

    type: EventType
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def key(self) -> str:
        return self.kv.key

    @property
    def value(self) -> bytes:
        return self.kv.value

    @property
    def revision(self) -> int:
        """The revision of this change; events arrive in increasing revision order."""
        return self.kv.mod_revision

    @classmethod
    def from_proto(cls, event: kv_pb2.Event) -> "WatchEvent":
        kind = EventType.DELETE if event.type == kv_pb2.Event.DELETE else EventType.PUT
        prev = KeyValue.from_proto(event.prev_kv) if event.HasField("prev_kv") else None
        return cls(kind, KeyValue.from_proto(event.kv), prev)
