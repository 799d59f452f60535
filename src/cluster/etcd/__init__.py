"""trio adapter for etcd (through the blocking ``cslab-etcd3`` gRPC client).

    async with open_etcd(["127.0.0.1:2379"]) as etcd:
        snapshot = await etcd.get_prefix("/cron/jobs/")
        async with etcd.watch_prefix("/cron/jobs/",
                                     start_revision=snapshot.revision + 1) as events:
            async for event in events:   # raises WatchCompacted: re-read, re-watch
                ...

Modules: ``_client`` (the ``Etcd`` calls), ``_watch`` (resuming watch streams),
``_txn`` (compares and operations), ``_types`` (returned records), ``_errors`` (the
error tree, drawn in its docstring), ``_connection`` (threads' side: endpoints and
fail-over).
"""

from ._client import Etcd, EtcdStatistics, open_etcd
from ._errors import (
    EtcdError,
    EtcdOutcomeUnknown,
    EtcdRejected,
    EtcdUnavailable,
    LeaseExpired,
    WatchCompacted,
)
from ._txn import (
    Compare,
    CompareOp,
    CompareTarget,
    Delete,
    DeleteResult,
    Get,
    GetResult,
    Op,
    OpResult,
    Put,
    PutResult,
    TxnResult,
)
from ._types import EventType, KeyValue, Lease, PrefixSnapshot, WatchEvent
from ._watch import WatchStatistics, WatchStream

__all__ = [
    "Compare", "CompareOp", "CompareTarget", "Delete", "DeleteResult", "Etcd",
    "EtcdError", "EtcdOutcomeUnknown", "EtcdRejected", "EtcdStatistics",
    "EtcdUnavailable", "EventType", "Get", "GetResult", "KeyValue", "Lease",
    "LeaseExpired", "Op", "OpResult", "PrefixSnapshot", "Put", "PutResult",
    "TxnResult", "WatchCompacted", "WatchEvent", "WatchStatistics", "WatchStream",
    "open_etcd",
]
