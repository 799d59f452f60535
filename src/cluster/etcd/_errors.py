"""Errors of the etcd adapter, and how gRPC failures map onto them.

The tree (catch the narrowest class that changes what you do)::

    EtcdError                  anything the adapter raises on purpose
    ├── EtcdUnavailable        no endpoint answered in time (refused, down, deadline):
    │   │                      retry later; a read or an unsent write had no effect
    │   ├── EtcdOutcomeUnknown a write reached the wire but its answer was lost:
    │   │                      it may or may not have been applied (check, then retry)
    │   └── EtcdNoQuorum       members answer, but none has a leader (a majority is
    │                          down): nothing that needs one can succeed until it is back
    ├── EtcdRejected           the server refused the request (bad argument, too large,
    │                          no space): the same request will fail again
    ├── EtcdAccessError        we may not, or cannot safely, talk to etcd as configured:
    │   │                      fix the settings; retrying will not help
    │   ├── EtcdCredentialsUnreadable  a CA, certificate or key file cannot be read
    │   ├── EtcdAuthFailed     wrong user or password, or etcd wants a user and has none
    │   ├── EtcdPermissionDenied  the user's roles do not cover the keys asked for
    │   └── EtcdTlsFailed      no TLS session: an unknown CA, a client certificate that
    │                          is missing, expired or not trusted, TLS on one side only
    ├── LeaseExpired           the lease is gone (expired, revoked or never granted)
    ├── WatchCompacted         a watch's start or resume revision was compacted away:
    │                          re-read the prefix, then watch again from the new revision
    │                          (also a read at a past revision, ``get_prefix(revision=)``:
    │                          that past is gone)
    └── RangeCompacted         a read at a past revision (a paged read's later page) found
                               it compacted away: read again from the first page

``EtcdTlsFailed`` is raised only by ``Etcd.check_access`` (start-up): to gRPC a
failed handshake is UNAVAILABLE, like an etcd that is down, and later calls treat it
so (a server certificate being rotated must not stop a running worker).
A token etcd no longer knows (``invalid auth token``) never surfaces: the adapter
authenticates again and re-sends the call (``_access``).

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
# etcd's words (rpctypes) for a token to renew, and for credentials that are wrong.
_STALE_TOKEN = ("invalid auth token", "revision of auth store is old")
_AUTH_FAILED = "authentication failed"
_NO_USER = "user name is empty"
_AUTH_NOT_ENABLED = "authentication is not enabled"
_COMPACTED = "required revision has been compacted"  # etcd's ErrCompacted


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


class EtcdNoQuorum(EtcdUnavailable):
    """Members answer, but none knows a leader: a majority of the cluster is down or
    cut off. Reads, writes, leases all wait for a leader; ``Etcd.has_quorum`` tells."""

    def __init__(self, operation: str, answering: int) -> None:
        super().__init__(operation, f"{answering} member(s) answer, none has a leader")

    def _message(self) -> str:
        return "etcd: no quorum"


class EtcdRejected(EtcdError):
    """The server refused ``operation``; sending it again will not help."""

    def __init__(self, operation: str, code: str, detail: str) -> None:
        self.operation = operation
        self.code = code
        self.detail = detail
        super().__init__(f"etcd rejected {operation} ({code}): {detail}")


class EtcdAccessError(EtcdError):
    """etcd refuses us, or we cannot trust it or read our own credentials: a setting
    is wrong. A process meets it at start-up (``Etcd.check_access``) and stops."""


class EtcdCredentialsUnreadable(EtcdAccessError):
    def __init__(self, what: str, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot read the etcd {what} {path}: {reason}")


class EtcdAuthFailed(EtcdAccessError):
    """etcd refused the user and password, or wants a user and we sent none."""

    def __init__(self, user: str | None, detail: str) -> None:
        self.user = user
        if user is None:
            message = (f"etcd requires a user ({detail}): set --etcd-user and its password, "
                       f"or a client certificate whose Common Name is an etcd user")
        else:
            message = f"etcd refused user {user!r}: wrong user or password ({detail})"
        super().__init__(message)


class EtcdPermissionDenied(EtcdAccessError):
    """The user's roles do not allow ``operation``: grant them the keys' prefix."""

    def __init__(self, operation: str, user: str | None) -> None:
        self.operation = operation
        who = f"user {user!r}" if user else "this client (no --etcd-user)"
        super().__init__(f"etcd denied {operation} to {who}: permission denied (its role "
                         f"needs readwrite on the cluster's prefix)")


class EtcdTlsFailed(EtcdAccessError):
    """No TLS session with ``endpoint``; ``reason`` says which side refused and why."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"no TLS session with etcd at {endpoint}: {reason}")


class LeaseExpired(EtcdError):
    """The lease does not exist any more (expired, revoked or never granted)."""

    def __init__(self, lease_id: int) -> None:
        self.lease_id = lease_id
        super().__init__(f"etcd lease {lease_id:#x} has expired or was revoked")


class WatchCompacted(EtcdError):
    """The revision a watch had to (re)start from is older than the compaction.

    Events between ``requested_revision`` and ``compact_revision`` are gone: the
    consumer must re-read the prefix and watch again from that read's revision + 1.
    A read at a past revision (``Etcd.get_prefix(revision=)``) raises it too, with
    ``compact_revision`` None: etcd's refusal does not say where history starts.
    One class for both, because both mean the same to the caller: that past is gone,
    only the present can be read.
    """

    def __init__(self, requested_revision: int, compact_revision: int | None) -> None:
        self.requested_revision = requested_revision
        self.compact_revision = compact_revision
        if compact_revision is None:
            message = (f"etcd read at revision {requested_revision}: that revision is "
                       f"compacted")
        else:
            message = (f"etcd watch from revision {requested_revision} is compacted "
                       f"(history starts at {compact_revision}): re-read and watch again")
        super().__init__(message)


class RangeCompacted(EtcdError):
    """A read asked for a revision older than the compaction (``Etcd.get_prefix_page``
    past its first page): the pages read so far are of a state etcd no longer has."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        super().__init__(f"etcd {operation}: {detail}: read again from the first page")


def was_unsent(exc: grpc.RpcError) -> bool:
    """True when gRPC could not connect at all, so the request never reached a server."""
    return _UNSENT_MARKER in (_details(exc) or "")


def is_retryable(exc: grpc.RpcError) -> bool:
    return _code(exc) in RETRYABLE_CODES


def is_auth_not_enabled(exc: grpc.RpcError) -> bool:
    """etcd's answer to Authenticate when its auth is off."""
    return _AUTH_NOT_ENABLED in (_details(exc) or "")


def is_stale_token(exc: grpc.RpcError | str) -> bool:
    """etcd no longer knows the token the call carried: authenticate again, re-send.
    (Also for a watch's cancel reason, which is text.)"""
    detail = exc if isinstance(exc, str) else _details(exc) or ""
    return any(words in detail for words in _STALE_TOKEN)


def translate(
    exc: grpc.RpcError, *, operation: str, write: bool, lease_id: int = 0,
    user: str | None = None,
) -> EtcdError:
    """The adapter's error for a failed gRPC call.

    ``write``: the request changes state, so a lost answer is ``EtcdOutcomeUnknown``
    unless gRPC says it never connected. ``user``: the etcd user we are (messages).
    """
    code, detail = _code(exc), _details(exc) or str(exc)
    if code == grpc.StatusCode.NOT_FOUND and _LEASE_NOT_FOUND in detail:
        return LeaseExpired(lease_id)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return EtcdPermissionDenied(operation, user)
    if code == grpc.StatusCode.OUT_OF_RANGE and _COMPACTED in detail:
        return RangeCompacted(operation, detail.removeprefix("etcdserver: "))
    if _AUTH_FAILED in detail:
        return EtcdAuthFailed(user, detail.removeprefix("etcdserver: "))
    if _NO_USER in detail or is_stale_token(exc):  # stale again right after a renewal
        return EtcdAuthFailed(None if _NO_USER in detail else user,
                              detail.removeprefix("etcdserver: "))
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
