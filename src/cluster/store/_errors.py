"""Errors of the run-record store.

Callers branch on one question: is it worth trying again? ``StoreUnavailable`` is
the only retryable error (the LogSink backs off and retries on it); every other
error means retrying the same call cannot help.

    StoreError                      base of everything the store raises
    ├── StoreUnavailable            retryable: refused, lost, gone away, timed out, locked
    ├── StoreConfigError            bad URL or scheme, unknown database, no access to it
    │   ├── StoreAccessDenied       wrong user or password (or, MariaDB, TLS required)
    │   └── StoreTlsError           TLS failed: CA/certificate files unusable, the server
    │       │                       has no TLS, or requires it and we have none
    │       └── StoreCertificateError  the server's certificate did not verify: not
    │                               signed by our CA, expired, or not naming the host
    ├── StoreSchemaError            job_log or audit_log cannot be created or lacks what we need
    ├── StoreQueryError             the backend rejected a statement (a bug or bad data)
    ├── StoreClosedError            used after its ``open_store`` block ended
    ├── InvalidQuery (ValueError)   a bad limit, offset, batch size or status filter
    │   └── InvalidCursor           a page cursor this store did not issue
    ├── InvalidRunRecord (ValueError)  a RunRecord with impossible field values
    └── InvalidAuditEntry (ValueError) bytes or JSON that are not an audit entry

Messages never contain a password: URLs are shown redacted. A configuration error
is not cured by retrying, but it is found only when the server answers, and the
server (or the certificate it serves) may be fixed while we run: the worker's sink
keeps records and retries on it as on an outage, saying why once.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class: something went wrong in the run-record store."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached now; the same call may succeed later."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"run store {backend} unavailable: {reason}")


class StoreConfigError(StoreError):
    """The store was given something it can never work with."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what  # the redacted URL, or what else was wrong
        self.reason = reason
        super().__init__(self._message())

    def _message(self) -> str:
        return f"run store configuration {self.what!r}: {self.reason}"


class StoreAccessDenied(StoreConfigError):
    """The server refused our user name and password. The message carries the
    server's words (user and host, whether a password was sent), never the password."""

    def _message(self) -> str:
        return (f"run store {self.what}: access denied ({self.reason}); check the user "
                f"and the password (SCHEDULER_DB_PASSWORD or --db-password-file)")


class StoreTlsError(StoreConfigError):
    """TLS to the server could not be set up: our CA or certificate files cannot be
    loaded, the server does not speak TLS, or it requires TLS and we were given none."""

    def _message(self) -> str:
        return f"run store {self.what}: TLS failed: {self.reason}"


class StoreCertificateError(StoreTlsError):
    """The server's certificate was refused: it does not chain to our CA, has
    expired, or (identity checked) does not name the host we dialled."""

    def _message(self) -> str:
        return f"run store {self.what}: the server's TLS certificate was refused: {self.reason}"


class StoreSchemaError(StoreError):
    """The job_log or audit_log table cannot be created, or exists in an unusable shape."""

    def __init__(self, backend: str, reason: str, table: str = "job_log") -> None:
        self.backend = backend
        self.reason = reason
        self.table = table
        super().__init__(f"run store {backend}: {table} schema problem: {reason}")


class StoreQueryError(StoreError):
    """The backend rejected a statement; retrying it unchanged cannot help."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"run store {backend} rejected a statement: {reason}")


class StoreClosedError(StoreError):
    """The store's ``open_store`` block has ended; open a new one."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        super().__init__(f"run store {backend} is closed")


class InvalidQuery(StoreError, ValueError):
    """A query argument out of its range; the caller's mistake, never retryable."""

    def __init__(self, argument: str, value: object, expected: str) -> None:
        self.argument = argument
        self.value = value
        super().__init__(f"query argument {argument}={value!r:.80}: expected {expected}")


class InvalidCursor(InvalidQuery):
    """A page cursor (``cursor``) or follow cursor (``after``) that is malformed or was
    not issued by ``RunStore.query`` / ``RunStore.follow``."""

    def __init__(self, cursor: str, argument: str = "cursor") -> None:
        super().__init__(argument, cursor, f"a {argument} the run store issued")


class InvalidRunRecord(StoreError, ValueError):
    """A run record whose fields cannot describe a real run."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"run record field {field}={value!r:.80}: expected {expected}")


class InvalidAuditEntry(StoreError, ValueError):
    """A value that is not an audit entry (under ``audit/`` in etcd, say)."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        super().__init__(f"not an audit entry ({reason}): {value!r:.80}")
