"""TLS to MySQL: the client context built from a URL, and telling a TLS failure apart.

The context is built once, when the store opens, so a CA file that cannot be read is
one clear error then, not a puzzle on every connect. It always requires a certificate
that chains to the CA we were given (never the system's store, never "encrypt but
trust anyone"); ``verify_identity`` only decides whether that certificate must also
name the host we dial. asyncmy upgrades the connection with it after the server's
greeting and never falls back to plain text, so a server without TLS is an error.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from cluster.config import DbUrl, MysqlUrl

from ._errors import StoreCertificateError, StoreTlsError

# Errors of a TLS connection that ended, not of one that could not be set up: a server
# that restarts mid-session raises these, and that is an outage, not a setting.
_CONNECTION_ENDED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def check_tls_files(target: DbUrl) -> None:
    """Raise StoreTlsError now if ``target``'s CA or certificate files cannot be
    loaded: the command lines call it before starting, so a typo in ``--db-ca`` is
    one line and exit code 2, not a worker that never writes a record."""
    if isinstance(target, MysqlUrl):
        client_context(target, target.redacted())


def client_context(target: MysqlUrl, display: str) -> ssl.SSLContext | None:
    """The context for ``target``, or None for plain TCP (no CA). Raises StoreTlsError
    naming the file that cannot be used."""
    if not target.tls:
        if target.cert_file:
            raise StoreTlsError(display, "ssl-cert needs a CA (ssl-ca or --db-ca) to "
                                         "verify the server with")
        return None
    assert target.ca_file is not None
    # PROTOCOL_TLS_CLIENT: CERT_REQUIRED and check_hostname on, TLS 1.2 at least.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = target.verify_identity
    _load(display, "CA file", target.ca_file, "not a PEM certificate",
          lambda: context.load_verify_locations(cafile=target.ca_file))
    if target.cert_file:
        # A passphrase is refused (empty), never prompted for on a terminal.
        _load(display, "client certificate", target.cert_file,
              "not PEM, a key that does not match it, or a key with a passphrase",
              lambda: context.load_cert_chain(target.cert_file, target.key_file,
                                              password=lambda: b""))
    return context


def _load(display: str, what: str, path: str, likely: str,
          load: Callable[[], None]) -> None:
    try:
        load()
    except ssl.SSLError as exc:  # before OSError: it is one
        raise StoreTlsError(display, f"cannot use the {what} {path}: "
                                     f"{exc.reason or exc} ({likely})") from None
    except OSError as exc:
        raise StoreTlsError(display, f"cannot read the {what} {path}: "
                                     f"{exc.strerror or exc}") from None


def tls_failure(exc: BaseException, display: str) -> StoreTlsError | None:
    """The TLS error behind a failed connect, or None if TLS was not what failed.

    asyncmy reports a failed connect as OperationalError 2003 raised from the ssl
    error; a bare ssl error is looked at too. Only the direct cause counts: an error
    merely raised while handling an old ssl error is not a TLS failure."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            said = (candidate.verify_message or str(candidate)).rstrip(".")
            return StoreCertificateError(display, f"{said} ({_hint(said)})")
        if isinstance(candidate, ssl.SSLError) and not isinstance(candidate,
                                                                   _CONNECTION_ENDED):
            return StoreTlsError(display, f"the handshake failed "
                                          f"({candidate.reason or candidate}): does the "
                                          f"server serve TLS on this port?")
    return None


def _hint(verify_message: str) -> str:
    if "mismatch" in verify_message:
        return ("it does not name the host dialled: use a name it holds, or turn the "
                "check off with --db-verify-identity=false or ssl-verify-identity=false")
    if "expired" in verify_message or "not yet valid" in verify_message:
        return "the server needs a certificate valid now"
    return "is --db-ca (or ssl-ca) the CA that signed the server's certificate?"
