"""The trio face of etcd: one ``Etcd`` per process, made only by ``open_etcd``.

Every blocking call runs in ``trio.to_thread.run_sync`` under the adapter's own
``CapacityLimiter`` with ``abandon_on_cancel=True``: a cancelled caller returns at
once, and the abandoned thread ends by itself because every RPC carries a deadline
(``timeout_s``, shared by the endpoints a call tries). Closing the adapter closes
the gRPC channels, which ends calls in flight, then waits (bounded) until every
thread it started has returned: nothing is left running behind ``open_etcd``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Sequence, TypeVar

import trio
from etcd3 import etcdrpc

from ._access import EtcdAccess, Metadata
from ._connection import ClosedConnection, Connection, Member, first_response
from ._errors import (EtcdNoQuorum, EtcdRejected, EtcdUnavailable, LeaseExpired, RangeCompacted,
                      WatchCompacted)
from ._probe import diagnose_tls
from ._txn import Compare, Op, TxnResult, is_read_only, lease_ids, txn_request, txn_result
from ._types import (
    Key,
    KeyValue,
    Lease,
    PrefixPage,
    PrefixSnapshot,
    PrefixStamp,
    encode_key,
    encode_value,
    prefix_range_end,
)
from ._watch import WatchStream

T = TypeVar("T")

QUORUM_PROBE_S = 0.5  # each member's Status: a local answer, fast when it comes at all


@dataclass(frozen=True, slots=True)
class EtcdStatistics:
    endpoints: tuple[str, ...]
    preferred_endpoint: str  # the one that answered last
    set_aside: tuple[str, ...]  # failed within the last endpoint_retry_s
    threads_busy: int  # includes abandoned calls still finishing
    max_threads: int
    authentications: int = 0  # auth tokens obtained (the first, then each renewal)


@asynccontextmanager
async def open_etcd(
    endpoints: Sequence[str],
    *,
    timeout_s: float = 5.0,
    max_threads: int = 16,
    endpoint_retry_s: float = 2.0,
    access: EtcdAccess = EtcdAccess(),
    dial_timeout_s: float | None = None,
) -> AsyncIterator["Etcd"]:
    """Connect to an etcd cluster (``"host:port"`` endpoints; nothing is dialled yet).

    ``timeout_s`` bounds each call, fail-over included; ``max_threads`` bounds the
    unary calls in flight (each watch has one more thread of its own);
    ``endpoint_retry_s`` is how long a failed endpoint goes to the back of the order;
    ``access``: TLS and credentials (its files are read here: EtcdCredentialsUnreadable);
    ``dial_timeout_s``: how long a call waits for a member to connect before it tries
    the next one (None: the call's deadline is the only bound).
    """
    connection = Connection(endpoints, endpoint_retry_s=endpoint_retry_s, access=access,
                            dial_timeout_s=dial_timeout_s)
    etcd = Etcd._create(connection, trio.CapacityLimiter(max_threads), timeout_s)
    try:
        yield etcd
    finally:
        await etcd._aclose()


class Etcd:
    """Key-value, transaction, lease and watch calls on one etcd cluster."""

    _connection: Connection
    _limiter: trio.CapacityLimiter  # bounds our worker threads (unary calls)
    _timeout_s: float
    _closed: bool
    _leader_answered_at: float | None

    def __init__(self) -> None:
        raise TypeError("use `async with open_etcd(endpoints) as etcd`")

    @classmethod
    def _create(cls, connection: Connection, limiter: trio.CapacityLimiter,
                timeout_s: float) -> "Etcd":
        self = object.__new__(cls)
        self._connection = connection
        self._limiter = limiter
        self._timeout_s = timeout_s
        self._closed = False
        self._leader_answered_at = None
        return self

    # --- keys -----------------------------------------------------------------

    async def get(self, key: Key, *, timeout_s: float | None = None) -> KeyValue | None:
        """``timeout_s``: this call's deadline instead of the adapter's (see ``txn``)."""
        request = etcdrpc.RangeRequest(key=encode_key(key))
        response = await self._unary(lambda m: m.kv.Range, request, f"get {key!r}",
                                     timeout_s=timeout_s)
        return KeyValue.from_proto(response.kvs[0]) if response.kvs else None

    async def get_prefix(self, prefix: Key, *, revision: int = 0) -> PrefixSnapshot:
        """Every key under ``prefix`` (sorted) and the revision of this read.

        ``revision``: the keys as they were at that past revision (etcd's MVCC), e.g.
        just before a deletion, to learn what it took; the snapshot's ``revision`` is
        still the store's current one. Raises WatchCompacted when that revision's
        history is compacted away (0, the default: now).
        """
        start = encode_key(prefix)
        request = etcdrpc.RangeRequest(key=start, range_end=prefix_range_end(start),
                                       revision=revision)
        operation = f"get prefix {prefix!r}" + (f" at revision {revision}" if revision else "")
        try:
            response = await self._unary(lambda m: m.kv.Range, request, operation)
        except RangeCompacted:  # one class for a watch's past and a read's: that past is gone
            raise WatchCompacted(revision, None) from None
        kvs = tuple(KeyValue.from_proto(kv) for kv in response.kvs)
        return PrefixSnapshot(kvs, response.header.revision)

    async def get_prefix_page(self, prefix: Key, *, limit: int, after: Key | None = None,
                              revision: int = 0) -> PrefixPage:
        """Up to ``limit`` keys under ``prefix`` that sort after ``after`` (None: from the
        first), as of ``revision`` (0: now). A large range read in pages, each at the
        first page's revision, is one consistent read whose memory is one page's, not
        the whole range's (``cluster.mirror.fold_prefix``). Raises RangeCompacted when
        ``revision`` was compacted away meanwhile (read again from the first page)."""
        if limit < 1:
            raise ValueError(f"a page needs a limit of at least 1, not {limit}")
        start = encode_key(prefix)
        first = start if after is None else encode_key(after) + b"\0"
        request = etcdrpc.RangeRequest(key=first, range_end=prefix_range_end(start),
                                       limit=limit, revision=revision)
        response = await self._unary(lambda m: m.kv.Range, request,
                                     f"get prefix {prefix!r} page")
        kvs = tuple(KeyValue.from_proto(kv) for kv in response.kvs)
        return PrefixPage(kvs, revision or response.header.revision, response.more)

    async def stamp_prefix(self, prefix: Key) -> PrefixStamp:
        """The count and newest ``mod_revision`` of the keys under ``prefix``: one key
        comes back (no value), so a mirror can tell whether it is current (``PrefixStamp``)
        without reading the range."""
        start = encode_key(prefix)
        request = etcdrpc.RangeRequest(
            key=start, range_end=prefix_range_end(start), limit=1, keys_only=True,
            sort_order=etcdrpc.RangeRequest.DESCEND, sort_target=etcdrpc.RangeRequest.MOD)
        response = await self._unary(lambda m: m.kv.Range, request, f"stamp prefix {prefix!r}")
        newest = response.kvs[0].mod_revision if response.kvs else 0
        return PrefixStamp(response.count, newest, response.header.revision)

    async def put(self, key: Key, value: bytes | str, *, lease_id: int = 0) -> int:
        """Set ``key``; returns the revision of the write. Raises LeaseExpired."""
        request = etcdrpc.PutRequest(key=encode_key(key), value=encode_value(value),
                                     lease=lease_id)
        response = await self._unary(lambda m: m.kv.Put, request, f"put {key!r}",
                                     write=True, lease_id=lease_id)
        return response.header.revision

    async def delete(self, key: Key) -> bool:
        """Delete ``key``; True if it existed."""
        request = etcdrpc.DeleteRangeRequest(key=encode_key(key))
        response = await self._unary(lambda m: m.kv.DeleteRange, request,
                                     f"delete {key!r}", write=True)
        return response.deleted > 0

    async def delete_prefix(self, prefix: Key) -> int:
        """Delete every key under ``prefix``; returns how many there were."""
        start = encode_key(prefix)
        if not start:
            raise ValueError("refusing to delete the whole keyspace (empty prefix)")
        request = etcdrpc.DeleteRangeRequest(key=start, range_end=prefix_range_end(start))
        response = await self._unary(lambda m: m.kv.DeleteRange, request,
                                     f"delete prefix {prefix!r}", write=True)
        return response.deleted

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[Op] = (),
        failure: Sequence[Op] = (),
        *,
        timeout_s: float | None = None,
    ) -> TxnResult:
        """If every compare holds, run ``success``, else ``failure``; atomically.

        Raises LeaseExpired when a Put names a lease that is gone (nothing applied),
        EtcdOutcomeUnknown when a writing transaction's answer was lost.
        ``timeout_s``: this call's deadline instead of the adapter's, for a caller that
        reads a lost answer back and tries again (the Locker): a request forwarded to
        a leader that died is never answered, so only a deadline ends it.
        """
        request = txn_request(compare, success, failure)
        leases = lease_ids([*success, *failure])
        response = await self._unary(
            lambda m: m.kv.Txn, request, "txn",
            write=not (is_read_only(success) and is_read_only(failure)),
            lease_id=leases[0] if leases else 0, timeout_s=timeout_s,
        )
        return txn_result(response)

    # --- leases ---------------------------------------------------------------

    async def grant_lease(self, ttl_s: int, *, timeout_s: float | None = None) -> Lease:
        """``timeout_s``: this call's deadline instead of the adapter's (see ``txn``)."""
        if ttl_s < 1:
            raise ValueError(f"lease ttl_s must be at least 1, not {ttl_s}")
        request = etcdrpc.LeaseGrantRequest(TTL=ttl_s)
        response = await self._unary(lambda m: m.lease.LeaseGrant, request, "grant lease",
                                     write=True, timeout_s=timeout_s)
        if response.error:
            raise EtcdRejected("grant lease", "LEASE", response.error)
        return Lease(response.ID, response.TTL)

    async def keepalive_once(self, lease_id: int) -> int:
        """Renew the lease once; returns its TTL in seconds. Raises LeaseExpired."""
        request = etcdrpc.LeaseKeepAliveRequest(ID=lease_id)

        def attempt(member: Member, remaining_s: float,
                    metadata: Metadata | None) -> etcdrpc.LeaseKeepAliveResponse:
            return first_response(member.lease.LeaseKeepAlive(
                iter([request]), timeout=remaining_s, metadata=metadata))

        response = await self._run(lambda: self._connection.call(
            attempt, operation="lease keepalive", timeout_s=self._timeout_s, write=False,
            lease_id=lease_id))
        if response.TTL <= 0:
            raise LeaseExpired(lease_id)
        return response.TTL

    async def lease_ttl(self, lease_id: int) -> int:
        """Seconds the lease has left (without renewing it). Raises LeaseExpired."""
        request = etcdrpc.LeaseTimeToLiveRequest(ID=lease_id)
        # A leader answers it alone, without its quorum: no proof of one.
        response = await self._unary(lambda m: m.lease.LeaseTimeToLive, request,
                                     "lease ttl", lease_id=lease_id, proves_leader=False)
        if response.TTL < 0:  # etcd answers -1 for a lease it does not know
            raise LeaseExpired(lease_id)
        return response.TTL

    async def revoke_lease(self, lease_id: int) -> bool:
        """Revoke the lease, deleting its keys; False if it was already gone."""
        request = etcdrpc.LeaseRevokeRequest(ID=lease_id)
        try:
            await self._unary(lambda m: m.lease.LeaseRevoke, request, "revoke lease",
                              write=True, lease_id=lease_id)
        except LeaseExpired:
            return False
        return True

    # --- the cluster ------------------------------------------------------------

    async def has_quorum(self, *, timeout_s: float = QUORUM_PROBE_S) -> bool:
        """True when a member that answers knows a leader; False when members answer
        but none does (no quorum: ``EtcdNoQuorum``). Raises EtcdUnavailable when no
        member answers at all (down, or unreachable: not the same fault)."""
        try:
            await self.check_quorum(timeout_s=timeout_s)
        except EtcdNoQuorum:
            return False
        return True

    async def check_quorum(self, *, timeout_s: float = QUORUM_PROBE_S) -> None:
        """Raises EtcdNoQuorum when members answer but none knows a leader, and
        EtcdUnavailable when none answers."""
        leaders = await self._run(lambda: self._connection.leaders(timeout_s))
        if not leaders:
            raise EtcdUnavailable("status", "no member answered")
        if not any(leaders):
            raise EtcdNoQuorum("status", len(leaders))

    # --- start-up -------------------------------------------------------------

    async def check_access(self, prefix: Key) -> None:
        """Read one key under ``prefix`` as this process will: TLS, user and role.

        For a process's start-up, so that a wrong setting stops it with one line
        rather than failing every call later. Raises EtcdAuthFailed,
        EtcdPermissionDenied, or EtcdTlsFailed when the TLS handshake with the
        endpoints is what fails (``_probe`` says why); EtcdUnavailable when etcd is
        merely not answering (retry later, as for any call).
        """
        start = encode_key(prefix)
        request = etcdrpc.RangeRequest(key=start, range_end=prefix_range_end(start),
                                       limit=1, keys_only=True)
        try:
            await self._unary(lambda m: m.kv.Range, request, f"read of {prefix!r}")
        except EtcdUnavailable:
            failure = await self._run(lambda: diagnose_tls(
                self._connection.endpoints, self._connection.access, self._timeout_s))
            if failure is not None:
                raise failure from None
            raise

    # --- watch ----------------------------------------------------------------

    @asynccontextmanager
    async def watch_prefix(
        self, prefix: Key, *, start_revision: int, prev_kv: bool = False
    ) -> AsyncIterator[WatchStream]:
        """Watch every key under ``prefix`` from ``start_revision`` (inclusive).

        Yields an async iterator of ``WatchEvent`` that survives broken streams
        (see ``WatchStream``); leaving the block cancels the etcd watch and waits
        for its thread.
        """
        if self._closed:
            raise trio.ClosedResourceError("the etcd adapter is closed")
        start = encode_key(prefix)
        stream = WatchStream._create(self._connection, start, prefix_range_end(start),
                                     start_revision=start_revision, prev_kv=prev_kv)
        try:
            yield stream
        finally:
            await stream.aclose()

    # --- plumbing -------------------------------------------------------------

    @property
    def leader_answered_at(self) -> float | None:
        """The trio time at which the latest answered call that only a leader with its
        quorum answers (a read, a write, a lease grant or revoke) was sent; None: none
        yet. The call went out at that time, so a quorum was there after it: a busy
        worker's own calls say so, and ``QuorumWatch`` asks Status only when they stop."""
        return self._leader_answered_at

    def statistics(self) -> EtcdStatistics:
        return EtcdStatistics(
            endpoints=self._connection.endpoints,
            preferred_endpoint=self._connection.preferred(),
            set_aside=self._connection.set_aside_now(),
            threads_busy=self._limiter.borrowed_tokens,
            max_threads=int(self._limiter.total_tokens),
            authentications=self._connection.tokens.authentications,
        )

    async def _unary(
        self,
        method: Callable[[Member], Callable[..., T]],
        request: object,
        operation: str,
        *,
        write: bool = False,
        lease_id: int = 0,
        timeout_s: float | None = None,
        proves_leader: bool = True,
    ) -> T:
        timeout_s = self._timeout_s if timeout_s is None else timeout_s
        sent = trio.current_time()
        response = await self._run(lambda: self._connection.unary(
            method, request, operation=operation, timeout_s=timeout_s,
            write=write, lease_id=lease_id))
        # A serializable read is answered by any member, leader or not: no proof.
        if proves_leader and not getattr(request, "serializable", False):
            latest = self._leader_answered_at  # calls may be answered out of order
            self._leader_answered_at = sent if latest is None else max(latest, sent)
        return response

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise trio.ClosedResourceError("the etcd adapter is closed")
        try:
            return await trio.to_thread.run_sync(fn, limiter=self._limiter,
                                                 abandon_on_cancel=True)
        except ClosedConnection:
            raise trio.ClosedResourceError("the etcd adapter is closed") from None

    async def _aclose(self) -> None:
        self._closed = True
        # Closing channels is quick (no network wait) and makes every call in
        # flight fail at once, so the wait below is short.
        self._connection.close()
        acquired: list[object] = []
        try:
            with trio.move_on_after(self._timeout_s, shield=True):
                for _ in range(int(self._limiter.total_tokens)):
                    token = object()  # all tokens ours ⇔ no thread of ours is running
                    await self._limiter.acquire_on_behalf_of(token)
                    acquired.append(token)
        finally:
            for token in acquired:
                self._limiter.release_on_behalf_of(token)
