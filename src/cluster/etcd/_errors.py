"""Errors of the etcd adapter, and how gRPC failures map onto them.

The tree (catch the narrowest class that changes what you do)::

    EtcdError                  anything the adapter raises on purpose
    ├── EtcdUnavailable        no endpoint answered in time (refused, down, deadline):
    │   │                      retry later; a read or an unsent write had no effect
    │   └── EtcdOutcomeUnknown a write reached the wire but its answer was lost:
    │                          it may or may not have been applied (check, then retry)
    ├── EtcdRejected           the server refused the request (bad argument, too large,
    │                          no space): the same request will fail again
    ├── LeaseExpired           the lease is gone (expired, revoked or never granted)
    └── WatchCompacted         a watch's start or resume revision was compacted away:
                               re-read the prefix, then watch again from the new revision

Why ``EtcdOutcomeUnknown`` exists: a claim transaction (``create_revision == 0`` →
put) that was applied but whose answer was lost looks, on a blind retry, like a
claim someone else won. Callers that care (the Locker) catch it and read the key;
everybody else treats it as ``EtcdUnavailable``.
"""

from __future__ import annotations

import grpc

# Failures of the path to the server rather than of the request: worth another
# endpoint or a later retry.
RETRYABLE_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
})

# gRPC core's wording when no connection could be made: the request never left.
_UNSENT_MARKER = "failed to connect to all addresses"
_LEASE_NOT_FOUND = "requested lease not found"


class EtcdError(Exception):
    """Base of every error the etcd adapter raises on purpose."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered ``operation`` in time; retrying later may succeed."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        return f"etcd unavailable for {self.operation}: {self.detail}"


class EtcdOutcomeUnknown(EtcdUnavailable):
    """A write was sent but its answer was lost: it may or may not have been applied."""

    def _message(self) -> str:
        return f"etcd {self.operation} may or may not have been applied: {self.detail}"


class EtcdRejected(EtcdError):
    """The server refused ``operation``; sending it again will not help."""

    def __init__(self, operation: str, code: str, detail: str) -> None:
        self.operation = operation
        self.code = code
        self.detail = detail
        super().__init__(f"etcd rejected {operation} ({code}): {detail}")


class LeaseExpired(EtcdError):
    """The lease does not exist any more (expired, revoked or never granted)."""

    def __init__(self, lease_id: int) -> None:
        self.lease_id = lease_id
        super().__init__(f"etcd lease {lease_id:#x} has expired or was revoked")


class WatchCompacted(EtcdError):
    """The revision a watch had to (re)start from is older than the compaction.

    Events between ``requested_revision`` and ``compact_revision`` are gone: the
    consumer must re-read the prefix and watch again from that read's revision + 1.
    """

    def __init__(self, requested_revision: int, compact_revision: int) -> None:
        self.requested_revision = requested_revision
        self.compact_revision = compact_revision
        super().__init__(
            f"etcd watch from revision {requested_revision} is compacted "
            f"(history starts at {compact_revision}): re-read and watch again"
        )


def was_unsent(exc: grpc.RpcError) -> bool:
    """True when gRPC could not connect at all, so the request never reached a server."""
    return _UNSENT_MARKER in (_details(exc) or "")


def is_retryable(exc: grpc.RpcError) -> bool:
    return _code(exc) in RETRYABLE_CODES


def translate(
    exc: grpc.RpcError, *, operation: str, write: bool, lease_id: int = 0
) -> EtcdError:
    """The adapter's error for a failed gRPC call.

    ``write``: the request changes state, so a lost answer is ``EtcdOutcomeUnknown``
    unless gRPC says it never connected.
    """
    code, detail = _code(exc), _details(exc) or str(exc)
    if code == grpc.StatusCode.NOT_FOUND and _LEASE_NOT_FOUND in detail:
        return LeaseExpired(lease_id)
    if code in RETRYABLE_CODES:
        if write and not was_unsent(exc):
            return EtcdOutcomeUnknown(operation, f"{code.name}: {detail}")
        return EtcdUnavailable(operation, f"{code.name}: {detail}")
    return EtcdRejected(operation, code.name if code else "UNKNOWN", detail)


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def _details(exc: grpc.RpcError) -> str | None:
    details = getattr(exc, "details", None)
    return details() if callable(details) else None
