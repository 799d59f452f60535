"""Why no TLS session with etcd could be made, in words (start-up only).

To gRPC a failed handshake is UNAVAILABLE, the same as an etcd that is down, and its
words are poor: when etcd refuses our client certificate it says only "Unwrap failed
(TSI_DATA_CORRUPTED)". A process starting with a wrong setting must stop with one
clear line, and one starting while etcd is down must wait as always, so when the
start-up check finds etcd unavailable, this module makes one handshake per endpoint
with Python's ``ssl`` and the same files, and tells the two apart:

- the server's certificate does not verify (an unknown CA, a wrong host name);
- the server refused our certificate (none given, expired, from a CA it does not
  trust: etcd answers all three with the alert "bad certificate", so we look at the
  certificate's dates ourselves to say which);
- TLS on one side only (we speak TLS to a plain etcd, or plain to a TLS one);
- anything else (refused, timed out, reset): not a TLS problem, None.

Blocking: run it in a thread.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Sequence

from ._access import EtcdAccess
from ._errors import EtcdTlsFailed

_READ_AFTER_HANDSHAKE_S = 0.5  # TLS 1.3: the server's verdict on our certificate comes after
_PLAIN = "it speaks plain TCP, not TLS: give etcd --cert-file or drop --etcd-ca"


def diagnose_tls(endpoints: Sequence[str], access: EtcdAccess,
                 timeout_s: float) -> EtcdTlsFailed | None:
    """A TLS failure shared by the endpoints that answered, or None when one of them
    made a session or none could be reached at all (then it is no TLS problem)."""
    failures: list[EtcdTlsFailed] = []
    for endpoint in endpoints:
        host, _, port_text = endpoint.rpartition(":")
        port = int(port_text)
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as raw:
                reason = (_handshake(raw, host, port, access) if access.tls
                          else _speaks_tls(raw, host))
        except OSError:
            continue  # unreachable: no verdict from this one
        if reason is None:
            return None
        failures.append(EtcdTlsFailed(endpoint, reason))
    return failures[0] if failures else None


def _handshake(raw: socket.socket, host: str, port: int, access: EtcdAccess) -> str | None:
    context = ssl.create_default_context(cafile=access.ca_file)
    if access.cert_file and access.key_file:
        try:
            context.load_cert_chain(access.cert_file, access.key_file)
        except (OSError, ssl.SSLError) as exc:
            return f"cannot use the client certificate {access.cert_file}: {exc}"
    context.set_alpn_protocols(["h2"])
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(_READ_AFTER_HANDSHAKE_S)
            try:
                tls.recv(1)
            except TimeoutError:
                pass
    except ssl.SSLCertVerificationError as exc:
        trust = access.ca_file or "the system's CAs"
        return f"its certificate does not verify against {trust}: {exc.verify_message}"
    except ssl.SSLError as exc:
        if "ALERT" in (exc.reason or ""):
            return _refused_ours(access, exc.reason or "")
        if _plain_http(host, port):
            return _PLAIN
        return None
    except ConnectionError:
        # A plain etcd answers a ClientHello with a close: seen as an EOF (an SSLError,
        # above) or, as timing has it, as a reset. Either way, ask it in plain words.
        if _plain_http(host, port):
            return _PLAIN
        raise  # reset, and not plain HTTP either: no verdict from this endpoint
    return None


def _refused_ours(access: EtcdAccess, alert: str) -> str:
    words = alert.rpartition("ALERT_")[2].replace("_", " ").lower()
    if not access.cert_file:
        return (f"it requires a client certificate ({words}): set --etcd-cert and "
                f"--etcd-key")
    expired_on = _expired_on(access.cert_file)
    if expired_on:
        return f"it refused the client certificate {access.cert_file}: expired on {expired_on}"
    return (f"it refused the client certificate {access.cert_file} ({words}): is it "
            f"signed by a CA etcd trusts (its --trusted-ca-file)?")


def _expired_on(path: str) -> str | None:
    """The certificate's end date if it has passed (None if valid or unreadable)."""
    try:
        not_after = ssl._ssl._test_decode_cert(path)["notAfter"]  # type: ignore[attr-defined]
        if ssl.cert_time_to_seconds(not_after) < time.time():
            return not_after
    except (OSError, ValueError, KeyError, ssl.SSLError):
        pass
    return None


def _speaks_tls(raw: socket.socket, host: str) -> str | None:
    """We dial plain: does the server want TLS? (A handshake it completes or answers
    with an alert says yes.)"""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(raw, server_hostname=host):
            pass
    except ssl.SSLError as exc:
        if "ALERT" not in (exc.reason or ""):
            return None
    return "it speaks TLS: set --etcd-ca (and --etcd-cert/--etcd-key if it asks for one)"


def _plain_http(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0) as raw:
            raw.sendall(b"GET /version HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
            return raw.recv(5) == b"HTTP/"
    except OSError:
        return False
