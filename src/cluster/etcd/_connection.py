"""The blocking side: endpoints, their gRPC stubs and the fail-over order.

Everything here runs in worker threads (the trio side lives in ``_client.py`` and
``_watch.py``) and is safe to call from many threads at once.

Fail-over. Each endpoint is an ``etcd3.Endpoint`` (the spike's choice: its
``time_retry`` sets an endpoint aside for a short while after a failure, where the
plain client would blacklist it for 300 s). We keep our own order rather than
``MultiEndpointEtcd3Client``'s: that one is not thread-safe (a failure marks
whichever endpoint is current *now*, and clears stubs other threads are using) and
raises ``NoServerAvailableError`` without trying anything once all endpoints
failed recently. Our order: the endpoint that last worked, then the others not set
aside, then the set-aside ones, longest-failed first. A call tries each endpoint at
most once within its deadline; it moves on after a failure only when re-sending is
harmless (a read, or gRPC could not connect at all, so the request never left).

TLS and auth (``_access``): every member's channel carries the same TLS credentials;
every call carries the cluster's auth token as metadata (``attempt`` gets it as its
third argument), and a call etcd refuses for a stale token is sent once more, to the
same member, with a new one.

Dial timeout (``dial_timeout_s``, the seed's ``etcdDialTimeout``): how long one attempt
to connect to a member may take (gRPC's connect timeout; without it, 100 ms, too short
for a TLS handshake over a slow link), and how long a call waits for a member that is
still connecting before it moves on to the next one (nothing was sent): a member that
swallows connections (a dead host, dropped packets) costs that much, and never more than
half of the call's remaining deadline while other members are left to try. A refused
connection still moves on at once.

Channel options: gRPC's default reconnect backoff grows to 120 s, which would keep
a restarted etcd unused for minutes; keepalive pings detect a peer that vanished
without closing the connection (etcd allows a ping every 5 s on an active stream).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence, TypeVar

import etcd3
import grpc
from etcd3 import etcdrpc

from ._access import EtcdAccess, Metadata, Tokens
from ._errors import EtcdUnavailable, is_retryable, is_stale_token, translate, was_unsent

T = TypeVar("T")

GRPC_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    # Despite its name, gRPC's *connect timeout* of one attempt (never below 100 ms):
    # the dial timeout replaces it (``channel_options``).
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),  # a big prefix read
]


def channel_options(dial_timeout_s: float | None) -> list[tuple[str, int]]:
    """GRPC_OPTIONS with gRPC's connect timeout set to the dial timeout, if given."""
    if dial_timeout_s is None:
        return GRPC_OPTIONS
    dial_ms = max(100, round(dial_timeout_s * 1000))
    return [(k, dial_ms if k == "grpc.min_reconnect_backoff_ms" else v) for k, v in GRPC_OPTIONS]


_DIALLING = (grpc.ChannelConnectivity.IDLE, grpc.ChannelConnectivity.CONNECTING)


class ClosedConnection(Exception):
    """Internal: the adapter was closed; the trio side raises ClosedResourceError."""


def parse_endpoint(text: str) -> tuple[str, int]:
    """``host:port`` (or ``http://host:port``, as Go clients accept) → (host, port).
    TLS is chosen by the access (``--etcd-ca``), not by a scheme."""
    address = text.strip().removeprefix("http://").rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        raise ValueError(f"etcd endpoint must be host:port (TLS: set a CA), not {text!r}")
    return host, int(port)


@dataclass(eq=False)
class Member:
    """One endpoint with its stubs (stubs are cheap wrappers over the channel)."""

    endpoint: etcd3.Endpoint
    kv: etcdrpc.KVStub
    lease: etcdrpc.LeaseStub
    watch: etcdrpc.WatchStub
    auth: etcdrpc.AuthStub
    maintenance: etcdrpc.MaintenanceStub
    # The channel's connectivity, as gRPC reports it (from its own thread).
    state: grpc.ChannelConnectivity = grpc.ChannelConnectivity.IDLE
    changed: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def connect(cls, host: str, port: int, retry_s: float,
                credentials: grpc.ChannelCredentials | None,
                options: list[tuple[str, int]] = GRPC_OPTIONS) -> "Member":
        endpoint = etcd3.Endpoint(host, port, secure=credentials is not None,
                                  creds=credentials, time_retry=retry_s, opts=options)
        channel = endpoint.channel
        member = cls(endpoint, etcdrpc.KVStub(channel), etcdrpc.LeaseStub(channel),
                     etcdrpc.WatchStub(channel), etcdrpc.AuthStub(channel),
                     etcdrpc.MaintenanceStub(channel))
        # try_to_connect=False, here and everywhere: gRPC's polling thread then ends by
        # itself when the channel closes (with a connect request pending it would poll
        # the closed channel and die with a traceback on stderr). The first call dials.
        channel.subscribe(member._observe, try_to_connect=False)
        return member

    def _observe(self, state: grpc.ChannelConnectivity) -> None:
        with self.changed:
            self.state = state
            self.changed.notify_all()

    def dialled(self, timeout_s: float) -> bool:
        """False if the channel is not connected after ``timeout_s`` and still trying
        (an idle channel is asked to connect). A failing one is left to the call: it
        fails fast, and the next member is tried at once."""
        with self.changed:
            if self.state is grpc.ChannelConnectivity.READY:
                return True
            if self.state is grpc.ChannelConnectivity.IDLE:
                _ask_to_connect(self.endpoint.channel)
            return self.changed.wait_for(lambda: self.state not in _DIALLING,
                                         timeout=max(timeout_s, 0))

    @property
    def name(self) -> str:
        return self.endpoint.netloc


class Connection:
    """All endpoints of one cluster and the order in which calls try them."""

    def __init__(self, endpoints: Sequence[str], *, endpoint_retry_s: float,
                 access: EtcdAccess = EtcdAccess(), dial_timeout_s: float | None = None) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.access = access
        self.dial_timeout_s = dial_timeout_s
        self.tokens = Tokens(access.user, access.password)
        credentials = access.channel_credentials()  # reads the files: fails here
        options = channel_options(dial_timeout_s)
        self._members = [Member.connect(*parse_endpoint(e), endpoint_retry_s, credentials,
                                        options) for e in endpoints]
        self._lock = threading.Lock()
        self._preferred = 0  # index of the member that last answered
        self._closed = False

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(m.name for m in self._members)

    def preferred(self) -> str:
        return self._members[self._preferred].name

    def set_aside_now(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(m.name for m in self._members if m.endpoint.is_failed())

    def candidates(self) -> list[Member]:
        """Members in the order a call should try them (see the module docstring)."""
        if self._closed:
            raise ClosedConnection()
        with self._lock:
            n = len(self._members)
            ring = [self._members[(self._preferred + i) % n] for i in range(n)]
            healthy = [m for m in ring if not m.endpoint.is_failed()]
            failed = sorted((m for m in ring if m.endpoint.is_failed()),
                            key=lambda m: m.endpoint.last_failed)
        return healthy + failed

    def succeeded(self, member: Member) -> None:
        with self._lock:
            self._preferred = self._members.index(member)

    def failed(self, member: Member) -> None:
        with self._lock:
            member.endpoint.fail()

    def call(
        self,
        attempt: Callable[[Member, float, Metadata | None], T],
        *,
        operation: str,
        timeout_s: float,
        write: bool,
        lease_id: int = 0,
    ) -> T:
        """Run ``attempt(member, remaining_s, metadata)`` on the members in order, within
        ``timeout_s``; ``metadata`` carries the auth token (None without auth).

        Blocking: call it from a worker thread. ``write``: never re-send after the
        request may have reached a server (see ``EtcdOutcomeUnknown``).
        """
        deadline = time.monotonic() + timeout_s
        last = "no endpoint tried"
        candidates = self.candidates()
        for index, member in enumerate(candidates, 1):
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                last = f"the {timeout_s:g} s deadline passed; {last}"
                break
            # A member still connecting may hold at most half of what is left when others
            # could answer: a short claim deadline is not all spent on a dead host.
            dial_s = remaining_s / 2 if index < len(candidates) else remaining_s
            if self.dial_timeout_s is not None and \
                    not member.dialled(min(self.dial_timeout_s, dial_s)):
                self.failed(member)  # nothing was sent: the next member may have it
                last = (f"{member.name}: not connected within the {self.dial_timeout_s:g} s "
                        "dial timeout")
                continue
            try:
                metadata = self.tokens.metadata(member.auth, remaining_s)
            except (grpc.RpcError, ValueError) as exc:
                rpc_error = self._rpc_error(exc)
                if not is_retryable(rpc_error):
                    raise translate(rpc_error, operation="authenticate", write=False,
                                    user=self.access.user) from exc
                self.failed(member)  # the request itself was never sent
                last = f"{member.name}: authenticate: {_describe(rpc_error)}"
                continue
            try:
                result = self._send(attempt, member, deadline, metadata)
            except (grpc.RpcError, ValueError) as exc:
                rpc_error = self._rpc_error(exc)
                error = translate(rpc_error, operation=operation, write=write,
                                  lease_id=lease_id, user=self.access.user)
                if not is_retryable(rpc_error):
                    raise error from exc
                self.failed(member)
                if write and not was_unsent(rpc_error):
                    raise error from exc
                last = f"{member.name}: {_describe(rpc_error)}"
                continue
            self.succeeded(member)
            return result
        raise EtcdUnavailable(operation, f"no endpoint answered; last: {last}")

    def _send(self, attempt: Callable[[Member, float, Metadata | None], T], member: Member,
              deadline: float, metadata: Metadata | None) -> T:
        """``attempt`` once, and once more with a new token if etcd found ours stale
        (a call refused for its token was not applied: re-sending a write is safe)."""
        try:
            return attempt(member, deadline - time.monotonic(), metadata)
        except grpc.RpcError as exc:
            if metadata is None or not is_stale_token(exc):
                raise
        self.tokens.renew(metadata)
        fresh = self.tokens.metadata(member.auth, deadline - time.monotonic())
        return attempt(member, deadline - time.monotonic(), fresh)

    def _rpc_error(self, exc: Exception) -> grpc.RpcError:
        """``exc`` if it is gRPC's; a closed adapter's calls end in ClosedConnection, and
        any other error goes up as it is."""
        if self._closed:  # gRPC: "Cannot invoke RPC on closed channel!"
            raise ClosedConnection() from exc
        if not isinstance(exc, grpc.RpcError):
            raise exc
        return exc

    def unary(
        self, method: Callable[[Member], Callable[..., T]], request: object, **kwargs
    ) -> T:
        """``call`` for a unary RPC, e.g. ``unary(lambda m: m.kv.Range, request, ...)``."""
        return self.call(lambda m, t, md: method(m)(request, timeout=t, metadata=md), **kwargs)

    def leaders(self, timeout_s: float) -> list[int]:
        """The leader each answering member knows (0: none), asking every member in
        turn within ``timeout_s`` each. Status is served by the member itself, without
        its leader, so it answers while the cluster has no quorum. Blocking."""
        if self._closed:
            raise ClosedConnection()
        seen = []
        for member in self._members:
            try:
                metadata = self.tokens.metadata(member.auth, timeout_s)
                status = member.maintenance.Status(etcdrpc.StatusRequest(), timeout=timeout_s,
                                                   metadata=metadata)
            except (grpc.RpcError, ValueError):
                if self._closed:
                    raise ClosedConnection() from None
                continue
            seen.append(status.leader)
        return seen

    def close(self) -> None:
        """Close every channel; gRPC cancels the calls in flight, so their threads end."""
        self._closed = True
        for member in self._members:
            member.endpoint.close()

    @property
    def closed(self) -> bool:
        return self._closed


def _ask_to_connect(channel: grpc.Channel) -> None:
    """Start connecting an idle channel, in this thread. Not ``channel_ready_future``
    (nor ``subscribe(try_to_connect=True)``): that leaves a connect request to gRPC's
    polling thread, which dies with a traceback on stderr when the channel closes
    before it has made it."""
    try:
        channel._channel.check_connectivity_state(True)  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # another gRPC, or closed: the call will dial
        pass


def _describe(exc: grpc.RpcError) -> str:
    return f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]


def first_response(stream: Iterator[T]) -> T:
    """The first message of a response stream, then cancel the stream (no leftovers)."""
    try:
        return next(stream)
    except StopIteration:
        raise EtcdUnavailable("stream", "the server ended the stream without answering")
    finally:
        stream.cancel()  # type: ignore[attr-defined]
