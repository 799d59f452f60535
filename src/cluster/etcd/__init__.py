"""trio adapter for etcd (through the blocking ``cslab-etcd3`` gRPC client).

    async with open_etcd(["127.0.0.1:2379"]) as etcd:
        snapshot = await etcd.get_prefix("/cron/jobs/")
        async with etcd.watch_prefix("/cron/jobs/",
                                     start_revision=snapshot.revision + 1) as events:
            async for event in events:   # raises WatchCompacted: re-read, re-watch
                ...

    # TLS and a user: open_etcd(endpoints, access=EtcdAccess(ca_file=..., user=..., ...))
    # then, at start-up: await etcd.check_access("/cron/")

Modules: ``_client`` (the ``Etcd`` calls), ``_watch`` (resuming watch streams),
``_txn`` (compares and operations), ``_types`` (returned records), ``_errors`` (the
error tree, drawn in its docstring), ``_connection`` (threads' side: endpoints and
fail-over), ``_access`` (TLS files, user, auth token), ``_probe`` (why a TLS
handshake fails, for start-up).

Who may import it: everything that talks to etcd (``cluster.mirror``, ``cluster.etcd_access``,
the worker's actors, the master's services); it is the only code that touches the blocking
client. It imports nothing of ours outside ``cluster``.
"""

import os as _os
import sys as _sys

# gRPC's C core writes its own lines to stderr for every failed TLS handshake (several
# per attempt, whatever the log level but NONE); our errors carry the same detail once,
# and a process refused at start-up must say so in one line. gRPC reads this when it
# is imported, so set it only for that import and give the environment back (jobs
# inherit it).
if "grpc" not in _sys.modules and "GRPC_VERBOSITY" not in _os.environ:
    _os.environ["GRPC_VERBOSITY"] = "NONE"
    try:
        import grpc as _grpc  # noqa: F401
    finally:
        del _os.environ["GRPC_VERBOSITY"]

from ._access import EtcdAccess  # noqa: E402
from ._client import Etcd, EtcdStatistics, open_etcd  # noqa: E402
from ._errors import (  # noqa: E402
    EtcdAccessError,
    EtcdAuthFailed,
    EtcdCredentialsUnreadable,
    EtcdError,
    EtcdNoQuorum,
    EtcdOutcomeUnknown,
    EtcdPermissionDenied,
    EtcdRejected,
    EtcdTlsFailed,
    EtcdUnavailable,
    LeaseExpired,
    RangeCompacted,
    WatchCompacted,
)
from ._txn import (  # noqa: E402
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
from ._types import (  # noqa: E402
    EventType, KeyValue, Lease, PrefixPage, PrefixSnapshot, PrefixStamp, WatchEvent,
)
from ._watch import WatchStatistics, WatchStream  # noqa: E402

__all__ = [
    "Compare", "CompareOp", "CompareTarget", "Delete", "DeleteResult", "Etcd",
    "EtcdAccess", "EtcdAccessError", "EtcdAuthFailed", "EtcdCredentialsUnreadable",
    "EtcdError", "EtcdNoQuorum", "EtcdOutcomeUnknown", "EtcdPermissionDenied", "EtcdRejected",
    "EtcdStatistics", "EtcdTlsFailed", "EtcdUnavailable", "EventType", "Get",
    "GetResult", "KeyValue", "Lease", "LeaseExpired", "Op", "OpResult", "PrefixPage",
    "PrefixSnapshot", "RangeCompacted",
    "PrefixStamp", "Put", "PutResult",
    "TxnResult", "WatchCompacted", "WatchEvent", "WatchStatistics", "WatchStream",
    "open_etcd",
]
