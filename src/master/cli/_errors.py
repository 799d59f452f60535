"""schedctl's exit codes, and the errors that carry them.

Every failure becomes one line on stderr and an exit code a script can branch on:

    0  success                      1  the API answered an error (404, 400, 403, 409, 503...)
    2  usage error (bad arguments)  3  cannot reach the master (down, wrong --url, timeout)
    4  unauthorized (401: missing or wrong token)

Errors:
    Exception
     └── CliError              one line for stderr + an exit code
          ├── UsageError       (2) an argument argparse could not check (a time, a file)
          ├── ConnectError     (3) the master could not be reached
          └── ApiError         (1) an error answer: status, code, message, field
               └── AuthError   (4) 401
"""

from __future__ import annotations

from typing import Final

from ._settings import TOKEN_ENV

EXIT_OK: Final = 0
EXIT_API: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONNECT: Final = 3
EXIT_AUTH: Final = 4
EXIT_INTERRUPTED: Final = 130


class CliError(Exception):
    """A failure the operator sees as one line on stderr; `exit_code` says which kind."""

    exit_code: int = EXIT_API


class UsageError(CliError):
    """An argument argparse could not check: a bad time, an unreadable --file."""

    exit_code = EXIT_USAGE


class ConnectError(CliError):
    """The master could not be reached at `url` (refused, DNS, timeout, broken reply)."""

    exit_code = EXIT_CONNECT

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot connect to {url}: {reason} (is the master running?)")


class ApiError(CliError):
    """The API answered an error envelope `{"error": {code, message, field?}}`."""

    exit_code = EXIT_API

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        detail = message
        if field and not message.startswith(f"{field}:"):
            detail = f"{field}: {message}"
        super().__init__(f"{status} {code}: {detail}")


class AuthError(ApiError):
    """401: the token is missing or wrong (the API does not say which)."""

    exit_code = EXIT_AUTH

    def __str__(self) -> str:
        return f"{super().__str__()} (set {TOKEN_ENV} or give --token-file)"
