"""A prefix watch as an async iterator of ``WatchEvent`` that survives broken streams.

Why our own stream rather than etcd3's ``add_watch_callback``: etcd3 multiplexes
every watch of a client on one gRPC stream served by one callback thread, so a slow
consumer stalls all watches; a stream that ends cleanly hands callbacks ``None``;
and its thread outlives every watch until the client closes. Here each watch owns
one gRPC stream, read by at most one worker thread at a time, and only when the
consumer asks for the next event (pull): nothing is buffered beyond one etcd
response and gRPC's flow-control window, so a slow consumer slows etcd's sending
(etcd queues it server-side and catches up from its history), never our memory.

Guarantees, for the consumer of ``async for event in stream``:

* every change under the prefix from ``start_revision`` on is delivered exactly
  once, in revision order, across any number of broken streams (etcd restarted,
  connection lost, endpoint failed over): the stream is re-created from the
  revision after the last event received, after a bounded backoff (50 ms doubling
  to 2 s, jittered), without the consumer noticing;
* compaction is never silent: when the start or resume revision is older than
  etcd's compaction, the iterator raises ``WatchCompacted`` — on that read and on
  every later one: the stream is finished, re-read the prefix and open a new watch;
* a read cancelled midway (timeout, shutdown) abandons its thread and cancels its
  gRPC stream, so the thread ends at once; the next read re-creates the stream from
  the next revision (no event lost: events count as received only once returned).
  Leaving ``watch_prefix`` cancels the etcd watch and waits for the thread.

Auth: the token goes with the stream's creation (etcd checks it once, when the watch
is created; a live watch outlives its token). A watch refused for a stale token
(``invalid auth token``, or in some versions just "permission denied") is created
again with a new token; a denial is believed only when a fresh token gets it too
(then ``EtcdPermissionDenied``).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Iterator

import grpc
import trio
from etcd3 import etcdrpc

from ..backoff import Backoff

from ._access import Metadata
from ._connection import ClosedConnection, Connection, Member
from ._errors import (
    EtcdError,
    EtcdPermissionDenied,
    EtcdRejected,
    EtcdUnavailable,
    WatchCompacted,
    is_retryable,
    is_stale_token,
    translate,
)
from ._types import WatchEvent

INITIAL_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
CLOSE_WAIT_S = 5.0  # a cancelled gRPC read returns in milliseconds; this is a guard
AUTH_TIMEOUT_S = 5.0  # one Authenticate before a stream is created
_DENIED = "permission denied"


class _StreamBroken(Exception):
    """Internal: the gRPC stream ended or failed in a way a new stream can fix."""


@dataclass(frozen=True, slots=True)
class WatchStatistics:
    next_revision: int  # where a re-created stream would start
    buffered: int  # events received, not yet returned
    reconnects: int  # streams re-created after a failure
    connected: bool  # a stream exists and etcd confirmed it
    last_error: str | None


class _WatchCall:
    """One gRPC watch stream on one endpoint. ``read`` blocks: worker thread only.

    The stream is created by the first ``read`` (in the worker thread: getting a
    token may block); ``metadata`` is the token it was created with.
    """

    def __init__(self, connection: Connection, member: Member,
                 request: etcdrpc.WatchRequest) -> None:
        self._connection = connection
        self.member = member
        self._request = request
        self._release = threading.Event()
        self._cancelled = False
        self._call: grpc.Call | None = None
        self.metadata: Metadata | None = None

    def _requests(self, request: etcdrpc.WatchRequest) -> Iterator[etcdrpc.WatchRequest]:
        yield request
        # Keep our half open: etcd ends the whole stream when the client half-closes.
        self._release.wait()

    def _start(self) -> grpc.Call:
        try:
            self.metadata = self._connection.tokens.metadata(self.member.auth, AUTH_TIMEOUT_S)
        except EtcdUnavailable as exc:  # another thread's Authenticate is slow: later
            raise _StreamBroken(str(exc)) from exc
        # No deadline: the stream lives as long as the watch; keepalive pings
        # detect a peer that vanished silently. Creating the call does not block.
        call = self.member.watch.Watch(self._requests(self._request), metadata=self.metadata)
        self._call = call
        if self._cancelled:  # cancelled while we authenticated
            call.cancel()
        return call

    def read(self) -> etcdrpc.WatchResponse:
        try:
            return next(self._call or self._start())  # type: ignore[call-overload]
        except StopIteration:
            raise _StreamBroken(f"{self.member.name}: etcd ended the stream") from None
        except ValueError as exc:  # gRPC: the channel was closed under us
            raise ClosedConnection() from exc
        except grpc.RpcError as exc:
            if self._connection.closed:
                raise ClosedConnection() from exc
            if self._cancelled:  # by us: says nothing about the endpoint
                raise _StreamBroken("cancelled by the consumer") from exc
            if is_stale_token(exc) and self.metadata is not None:
                self._connection.tokens.renew(self.metadata)
                raise _StreamBroken(f"{self.member.name}: auth token expired") from exc
            if is_retryable(exc):
                self._connection.failed(self.member)
                raise _StreamBroken(f"{self.member.name}: {exc.code().name}: "
                                    f"{exc.details()}") from exc
            raise translate(exc, operation="watch", write=False,
                            user=self._connection.access.user) from exc

    def cancel(self) -> None:
        """Thread-safe and non-blocking: a ``read`` in progress returns at once."""
        self._cancelled = True
        if self._call is not None:
            self._call.cancel()
        self._release.set()


class WatchStream:
    """Events under one prefix, in revision order; see the module docstring."""

    _connection: Connection
    _key: bytes
    _range_end: bytes
    _prev_kv: bool
    _next_revision: int  # the first revision not yet received
    _buffer: collections.deque[WatchEvent]
    _call: _WatchCall | None
    _confirmed: bool
    _renewed: bool  # a denied creation got a new token; denied again, it is believed
    _failure: EtcdError | None
    _closed: bool
    _reading: bool
    _reader: trio.CapacityLimiter
    _backoff: Backoff
    _reconnects: int
    _last_error: str | None

    def __init__(self) -> None:
        raise TypeError("use `async with etcd.watch_prefix(prefix, start_revision=...)`")

    @classmethod
    def _create(cls, connection: Connection, key: bytes, range_end: bytes, *,
                start_revision: int, prev_kv: bool) -> "WatchStream":
        if start_revision < 1:
            raise ValueError(f"start_revision must be at least 1, not {start_revision}")
        self = object.__new__(cls)
        self._connection = connection
        self._key, self._range_end, self._prev_kv = key, range_end, prev_kv
        self._next_revision = start_revision
        self._buffer = collections.deque()
        self._call = None
        self._confirmed = False
        self._renewed = False
        self._failure = None  # sticky: WatchCompacted or a rejection
        self._closed = False
        self._reading = False  # one consumer at a time, as for a trio stream
        self._reader = trio.CapacityLimiter(1)  # at most one thread reads this watch
        self._backoff = Backoff(INITIAL_BACKOFF_S, MAX_BACKOFF_S, jitter=0.5)
        self._reconnects = 0
        self._last_error = None
        return self

    def __aiter__(self) -> "WatchStream":
        return self

    async def __anext__(self) -> WatchEvent:
        if self._reading:
            raise trio.BusyResourceError("another task is already reading this watch")
        self._reading = True
        try:
            if self._buffer:
                await trio.lowlevel.checkpoint()
            else:
                await self._fill()
            # No checkpoint between the last await and here: an event leaves the
            # buffer only when it is returned.
            return self._buffer.popleft()
        finally:
            self._reading = False

    def statistics(self) -> WatchStatistics:
        return WatchStatistics(self._next_revision, len(self._buffer), self._reconnects,
                               self._call is not None and self._confirmed, self._last_error)

    async def aclose(self) -> None:
        """Cancel the etcd watch and wait (bounded) until no thread reads it."""
        self._closed = True
        self._drop_call()
        with trio.move_on_after(CLOSE_WAIT_S, shield=True):
            async with self._reader:
                pass

    async def _fill(self) -> None:
        while not self._buffer:
            if self._closed:
                raise trio.ClosedResourceError("the watch is closed")
            if self._failure is not None:
                raise self._failure.with_traceback(None)
            call = self._call or self._open()
            try:
                response = await trio.to_thread.run_sync(
                    call.read, limiter=self._reader, abandon_on_cancel=True)
            except _StreamBroken as broken:
                self._drop_call()
                await self._pause(str(broken))
                continue
            except ClosedConnection:
                self._drop_call()
                raise trio.ClosedResourceError("the etcd adapter is closed") from None
            except EtcdError as exc:
                self._drop_call()
                self._failure = exc
                raise
            except BaseException:
                # Cancelled: the abandoned thread must not keep reading this stream.
                self._drop_call()
                raise
            if not self._accept(call, response):
                self._drop_call()
                await self._pause(f"etcd cancelled the watch: {response.cancel_reason}")

    def _open(self) -> _WatchCall:
        try:
            member = self._connection.candidates()[0]
            create = etcdrpc.WatchCreateRequest(
                key=self._key, range_end=self._range_end,
                start_revision=self._next_revision, prev_kv=self._prev_kv)
            self._call = _WatchCall(self._connection, member,
                                    etcdrpc.WatchRequest(create_request=create))
        except (ClosedConnection, ValueError):
            raise trio.ClosedResourceError("the etcd adapter is closed") from None
        self._confirmed = False
        return self._call

    def _accept(self, call: _WatchCall, response: etcdrpc.WatchResponse) -> bool:
        """Take one etcd response; False when etcd dropped the watch (re-create it)."""
        if response.compact_revision:
            self._drop_call()
            self._failure = WatchCompacted(self._next_revision, response.compact_revision)
            raise self._failure
        if response.created:
            if response.canceled:
                self._drop_call()
                reason = response.cancel_reason or "watch refused"
                maybe_stale = _DENIED in reason or is_stale_token(reason)
                if maybe_stale and call.metadata is not None and not self._renewed:
                    self._renewed = True  # maybe a stale token (see the module docstring)
                    self._connection.tokens.renew(call.metadata)
                    return False
                self._failure = (
                    EtcdPermissionDenied(f"watch of {self._key.decode(errors='replace')!r}",
                                         self._connection.access.user)
                    if _DENIED in reason else EtcdRejected("watch", "CANCELED", reason))
                raise self._failure
            self._renewed = False
            self._confirmed = True
            self._backoff.succeeded()
            self._connection.succeeded(call.member)
            return True
        if response.canceled:
            return False
        # Defensive: a revision below the resume point was delivered already.
        events = [e for e in map(WatchEvent.from_proto, response.events)
                  if e.revision >= self._next_revision]
        if events:
            self._buffer.extend(events)
            self._next_revision = events[-1].revision + 1
        return True

    async def _pause(self, reason: str) -> None:
        self._reconnects += 1
        self._last_error = reason
        await trio.sleep(self._backoff.failed())  # in [0.5, 1] x the exponential delay

    def _drop_call(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
