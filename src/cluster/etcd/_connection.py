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

Channel options: gRPC's default reconnect backoff grows to 120 s, which would keep
a restarted etcd unused for minutes; keepalive pings detect a peer that vanished
without closing the connection (etcd allows a ping every 5 s on an active stream).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

import etcd3
import grpc
from etcd3 import etcdrpc

from ._errors import EtcdUnavailable, is_retryable, translate, was_unsent

T = TypeVar("T")

GRPC_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),  # a big prefix read
]


class ClosedConnection(Exception):
    """Internal: the adapter was closed; the trio side raises ClosedResourceError."""


def parse_endpoint(text: str) -> tuple[str, int]:
    """``host:port`` (or ``http://host:port``, as Go clients accept) → (host, port)."""
    address = text.strip().removeprefix("http://").rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        raise ValueError(f"etcd endpoint must be host:port (plain http), not {text!r}")
    return host, int(port)


@dataclass(eq=False)
class Member:
    """One endpoint with its stubs (stubs are cheap wrappers over the channel)."""

    endpoint: etcd3.Endpoint
    kv: etcdrpc.KVStub
    lease: etcdrpc.LeaseStub
    watch: etcdrpc.WatchStub

    @classmethod
    def connect(cls, host: str, port: int, retry_s: float) -> "Member":
        endpoint = etcd3.Endpoint(host, port, secure=False, time_retry=retry_s,
                                  opts=GRPC_OPTIONS)
        channel = endpoint.channel
        return cls(endpoint, etcdrpc.KVStub(channel), etcdrpc.LeaseStub(channel),
                   etcdrpc.WatchStub(channel))

    @property
    def name(self) -> str:
        return self.endpoint.netloc


class Connection:
    """All endpoints of one cluster and the order in which calls try them."""

    def __init__(self, endpoints: Sequence[str], *, endpoint_retry_s: float) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self._members = [Member.connect(*parse_endpoint(e), endpoint_retry_s)
                         for e in endpoints]
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
        attempt: Callable[[Member, float], T],
        *,
        operation: str,
        timeout_s: float,
        write: bool,
        lease_id: int = 0,
    ) -> T:
        """Run ``attempt(member, remaining_s)`` on the members in order, within ``timeout_s``.

        Blocking: call it from a worker thread. ``write``: never re-send after the
        request may have reached a server (see ``EtcdOutcomeUnknown``).
        """
        deadline = time.monotonic() + timeout_s
        last = "no endpoint tried"
        for member in self.candidates():
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                last = f"the {timeout_s:g} s deadline passed; {last}"
                break
            try:
                result = attempt(member, remaining_s)
            except (grpc.RpcError, ValueError) as exc:
                if self._closed:  # gRPC: "Cannot invoke RPC on closed channel!"
                    raise ClosedConnection() from exc
                if not isinstance(exc, grpc.RpcError):
                    raise
                error = translate(exc, operation=operation, write=write, lease_id=lease_id)
                if not is_retryable(exc):
                    raise error from exc
                self.failed(member)
                if write and not was_unsent(exc):
                    raise error from exc
                last = f"{member.name}: {exc.code().name}: {exc.details()}"
                continue
            self.succeeded(member)
            return result
        raise EtcdUnavailable(operation, f"no endpoint answered; last: {last}")

    def unary(
        self, method: Callable[[Member], Callable[..., T]], request: object, **kwargs
    ) -> T:
        """``call`` for a unary RPC, e.g. ``unary(lambda m: m.kv.Range, request, ...)``."""
        return self.call(lambda m, t: method(m)(request, timeout=t), **kwargs)

    def close(self) -> None:
        """Close every channel; gRPC cancels the calls in flight, so their threads end."""
        self._closed = True
        for member in self._members:
            member.endpoint.close()

    @property
    def closed(self) -> bool:
        return self._closed


def first_response(stream: Iterator[T]) -> T:
    """The first message of a response stream, then cancel the stream (no leftovers)."""
    try:
        return next(stream)
    except StopIteration:
        raise EtcdUnavailable("stream", "the server ended the stream without answering")
    finally:
        stream.cancel()  # type: ignore[attr-defined]
