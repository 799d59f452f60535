"""Transactions: our own frozen compares and operations, translated to etcd's protobufs.

Why not etcd3's ``transactions`` module: its compares are mutable objects built by
overloading ``==`` (so they cannot be compared or hashed), and its
``transaction()`` drops the response header, i.e. the revision the caller needs.

A compare is built by naming its target::

    Compare.create_revision("/cron/lock/j/1700000000000", "==", 0)   # key absent
    Compare.value("/cron/active/j", "==", b"run-42")
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Sequence

from etcd3 import etcdrpc

from ._types import Key, KeyValue, encode_key, encode_value

CompareOp = Literal["==", "!=", "<", ">"]

_RESULTS = {
    "==": etcdrpc.Compare.EQUAL,
    "!=": etcdrpc.Compare.NOT_EQUAL,
    "<": etcdrpc.Compare.LESS,
    ">": etcdrpc.Compare.GREATER,
}


class CompareTarget(enum.Enum):
    CREATE_REVISION = "create_revision"  # 0 when the key does not exist
    MOD_REVISION = "mod_revision"
    VERSION = "version"  # 0 when the key does not exist
    VALUE = "value"
    LEASE = "lease"  # 0 when the key has no lease (or does not exist)


@dataclass(frozen=True, slots=True)
class Compare:
    """One condition on one key (etcd has no compare over a whole prefix)."""

    key: Key
    target: CompareTarget
    op: CompareOp
    operand: int | bytes

    def __post_init__(self) -> None:
        if self.op not in _RESULTS:
            raise ValueError(f"compare op must be one of {sorted(_RESULTS)}, not {self.op!r}")
        wants_bytes = self.target is CompareTarget.VALUE
        if isinstance(self.operand, bytes) != wants_bytes or isinstance(self.operand, bool):
            kind = "bytes" if wants_bytes else "int"
            raise TypeError(f"{self.target.value} compares against {kind}, not {self.operand!r}")

    @classmethod
    def create_revision(cls, key: Key, op: CompareOp, revision: int) -> "Compare":
        return cls(key, CompareTarget.CREATE_REVISION, op, revision)

    @classmethod
    def mod_revision(cls, key: Key, op: CompareOp, revision: int) -> "Compare":
        return cls(key, CompareTarget.MOD_REVISION, op, revision)

    @classmethod
    def version(cls, key: Key, op: CompareOp, version: int) -> "Compare":
        return cls(key, CompareTarget.VERSION, op, version)

    @classmethod
    def lease(cls, key: Key, op: CompareOp, lease_id: int) -> "Compare":
        return cls(key, CompareTarget.LEASE, op, lease_id)

    @classmethod
    def value(cls, key: Key, op: CompareOp, value: bytes | str) -> "Compare":
        return cls(key, CompareTarget.VALUE, op, encode_value(value))

    @classmethod
    def unchanged(cls, key: Key, read: KeyValue | None) -> "Compare":
        """``key`` is still as ``read`` found it: absent (None), or not modified since:
        the guard of a compare-and-set."""
        if read is None:
            return cls.create_revision(key, "==", 0)
        return cls.mod_revision(key, "==", read.mod_revision)


@dataclass(frozen=True, slots=True)
class Put:
    """Set ``key``; ``lease_id`` 0 means no lease (the key lives until deleted)."""

    key: Key
    value: bytes | str
    lease_id: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: Key


@dataclass(frozen=True, slots=True)
class Get:
    key: Key


Op = Put | Delete | Get


@dataclass(frozen=True, slots=True)
class PutResult:
    pass


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted: int


@dataclass(frozen=True, slots=True)
class GetResult:
    kvs: tuple[KeyValue, ...]  # empty when the key does not exist


OpResult = PutResult | DeleteResult | GetResult


@dataclass(frozen=True, slots=True)
class TxnResult:
    """``responses`` answer the branch that ran: ``success`` ops if ``succeeded``."""

    succeeded: bool
    revision: int
    responses: tuple[OpResult, ...]


def is_read_only(ops: Sequence[Op]) -> bool:
    return all(isinstance(op, Get) for op in ops)


def lease_ids(ops: Sequence[Op]) -> tuple[int, ...]:
    return tuple(op.lease_id for op in ops if isinstance(op, Put) and op.lease_id)


def txn_request(
    compare: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op]
) -> etcdrpc.TxnRequest:
    return etcdrpc.TxnRequest(
        compare=[_compare_proto(c) for c in compare],
        success=[_op_proto(op) for op in success],
        failure=[_op_proto(op) for op in failure],
    )


def txn_result(response: etcdrpc.TxnResponse) -> TxnResult:
    return TxnResult(
        succeeded=response.succeeded,
        revision=response.header.revision,
        responses=tuple(_op_result(r) for r in response.responses),
    )


def _compare_proto(c: Compare) -> etcdrpc.Compare:
    proto = etcdrpc.Compare(key=encode_key(c.key), result=_RESULTS[c.op])
    match c.target:
        case CompareTarget.CREATE_REVISION:
            proto.target, proto.create_revision = etcdrpc.Compare.CREATE, int(c.operand)
        case CompareTarget.MOD_REVISION:
            proto.target, proto.mod_revision = etcdrpc.Compare.MOD, int(c.operand)
        case CompareTarget.VERSION:
            proto.target, proto.version = etcdrpc.Compare.VERSION, int(c.operand)
        case CompareTarget.LEASE:
            proto.target, proto.lease = etcdrpc.Compare.LEASE, int(c.operand)
        case CompareTarget.VALUE:
            assert isinstance(c.operand, bytes)
            proto.target, proto.value = etcdrpc.Compare.VALUE, c.operand
    return proto


def _op_proto(op: Op) -> etcdrpc.RequestOp:
    match op:
        case Put(key, value, lease_id):
            return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                key=encode_key(key), value=encode_value(value), lease=lease_id))
        case Delete(key):
            return etcdrpc.RequestOp(
                request_delete_range=etcdrpc.DeleteRangeRequest(key=encode_key(key)))
        case Get(key):
            return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=encode_key(key)))
    raise TypeError(f"not a transaction operation: {op!r}")


def _op_result(response: etcdrpc.ResponseOp) -> OpResult:
    match response.WhichOneof("response"):
        case "response_put":
            return PutResult()
        case "response_delete_range":
            return DeleteResult(response.response_delete_range.deleted)
        case "response_range":
            return GetResult(tuple(KeyValue.from_proto(kv) for kv in response.response_range.kvs))
    raise TypeError(f"unexpected transaction response: {response!r}")
