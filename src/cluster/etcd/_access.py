"""Who we are to etcd: TLS files and a user, and the token that proves the user.

TLS. ``ca_file`` set (or a client certificate) means every endpoint is dialled with
``grpc.ssl_channel_credentials``: the server's certificate must chain to the CA (the
system's roots without one) and name the host we dial. ``cert_file`` + ``key_file``
are presented to an etcd started with ``--client-cert-auth``. The files are read once,
when the adapter opens, so a missing or unreadable one stops a process at start-up.

User and password. etcd's auth is a token: ``Authenticate(user, password)`` answers
one, and every call carries it as ``token`` metadata. cslab-etcd3's client does the
same once, at construction (``EtcdTokenCallCredentials``), and never again; but a
simple token dies when idle for ``--auth-token-ttl`` (300 s by default), when the
member that issued it restarts, and when the auth store changes (a user or role
edited), and etcd then answers ``invalid auth token`` (or ``revision of auth store is
old``). So ``Tokens`` authenticates lazily, and a call refused that way asks for a new
token (``renew``) and is sent once more: refused that way, it was not applied. We send
the token as explicit metadata rather than gRPC call credentials, which gRPC allows
only on TLS channels: user/password over plain TCP works too (on a trusted network).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import grpc
from etcd3 import etcdrpc

from ._errors import EtcdCredentialsUnreadable, EtcdUnavailable, is_auth_not_enabled

Metadata = tuple[tuple[str, str], ...]

log = logging.getLogger("cluster.etcd")


@dataclass(frozen=True)
class EtcdAccess:
    """TLS files and credentials for one etcd cluster; the default is plain and anonymous."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("an etcd client certificate needs both its cert and key files")
        if (self.user is None) != (self.password is None):
            raise ValueError("etcd authentication needs both a user and a password")

    @property
    def tls(self) -> bool:
        return self.ca_file is not None or self.cert_file is not None

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """gRPC's TLS credentials from the files (None: plain TCP). Reads the files."""
        if not self.tls:
            return None
        root = _read(self.ca_file, "CA certificate") if self.ca_file else None
        key = _read(self.key_file, "client key") if self.key_file else None
        cert = _read(self.cert_file, "client certificate") if self.cert_file else None
        return grpc.ssl_channel_credentials(root, key, cert)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise EtcdCredentialsUnreadable(what, path, exc.strerror or str(exc)) from None
    if b"-----BEGIN " not in data:
        raise EtcdCredentialsUnreadable(what, path, "not a PEM file")
    return data


class Tokens:
    """The current auth token of one cluster, shared by every thread (thread-safe).

    Invariant: ``_token`` is None until the first successful ``Authenticate`` and
    after ``renew``; ``renew`` forgets only the token a refused call carried, so that
    of many threads refused with the same stale token only the first authenticates
    again.
    """

    def __init__(self, user: str | None, password: str | None) -> None:
        self._user, self._password = user, password
        self._lock = threading.Lock()
        self._token: str | None = None
        self._auth_off = False  # etcd said auth is not enabled: send no token
        self.authentications = 0  # tokens obtained (statistics)

    @property
    def enabled(self) -> bool:
        return self._user is not None

    def metadata(self, auth: etcdrpc.AuthStub, timeout_s: float) -> Metadata | None:
        """The metadata a call carries; authenticates first if there is no token.

        Blocking (one Authenticate RPC, under the lock: one at a time). Raises the
        gRPC error of Authenticate, for the caller to translate, or EtcdUnavailable
        when another thread's Authenticate holds the lock past ``timeout_s``.
        """
        if self._user is None or self._auth_off:
            return None
        # Bounded: a call never waits past its own deadline behind another's Authenticate.
        if not self._lock.acquire(timeout=max(timeout_s, 0.0)):
            raise EtcdUnavailable("authenticate", "another call's authentication is "
                                  "still waiting for etcd")
        try:
            if self._token is None:
                self._token = self._authenticate(auth, timeout_s)
            token = self._token
        finally:
            self._lock.release()
        return None if token is None else (("token", token),)

    def renew(self, stale: Metadata | None) -> None:
        """Forget ``stale`` (the metadata a refused call carried), unless a newer token
        already replaced it; the next ``metadata`` authenticates again."""
        with self._lock:
            if stale is not None and self._token == dict(stale).get("token"):
                self._token = None

    def _authenticate(self, auth: etcdrpc.AuthStub, timeout_s: float) -> str | None:
        request = etcdrpc.AuthenticateRequest(name=self._user, password=self._password)
        try:
            token = auth.Authenticate(request, timeout=timeout_s).token
        except grpc.RpcError as exc:
            if is_auth_not_enabled(exc):
                # Nothing to prove: calls go without a token (as etcd's own client does).
                log.warning("etcd has authentication off: user %r is not used", self._user)
                self._auth_off = True
                return None
            raise
        self.authentications += 1
        return token
