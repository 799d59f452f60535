"""`main`: one schedctl command, from argv to an exit code, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

import httpx

from ._client import Api, ClientFactory
from ._context import Context
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError, UsageError
from ._parser import build_parser, glue_negative_values
from ._settings import DEFAULT_URL, PROG, TOKEN_ENV, URL_ENV

MAX_TOKEN_FILE_BYTES = 4096


def main(argv: Sequence[str] | None = None, *, make_client: ClientFactory = httpx.Client,
         now_s: Callable[[], float] = time.time,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Run one schedctl command; returns the exit code (never raises, never a traceback).

    `make_client(base_url=, headers=, timeout=)` builds the httpx client: tests pass one
    with an `httpx.MockTransport`.
    """
    try:
        args = build_parser().parse_args(glue_negative_values(
            sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return _run(args, make_client, now_s, sleep)
    except CliError as err:
        print(f"{PROG}: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `schedctl runs | head`: the reader left, nothing to say
        _silence_stdout()
        return EXIT_OK


def _run(args: argparse.Namespace, make_client: ClientFactory, now_s: Callable[[], float],
         sleep: Callable[[float], None]) -> int:
    url = (getattr(args, "url", None) or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    token = _token(args)
    headers = {"Accept": "application/json", "User-Agent": f"{PROG}/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout_s: float = args.http_timeout_s
    try:
        client = make_client(base_url=url, headers=headers, timeout=httpx.Timeout(timeout_s))
    except (httpx.InvalidURL, ValueError, TypeError) as err:
        raise UsageError(f"--url {url!r} is invalid: {err}") from None
    with client:
        ctx = Context(Api(client, url, timeout_s), sys.stdout,
                      bool(getattr(args, "json", False)), now_s, sleep)
        args.handler(ctx, args)
    return EXIT_OK


def _token(args: argparse.Namespace) -> str | None:
    """--token (warned: ps shows it), else --token-file, else $SCHEDULER_API_TOKEN."""
    flag = getattr(args, "token", None)
    path = getattr(args, "token_file", None)
    if flag and path:
        raise UsageError("give --token or --token-file, not both")
    if flag:
        print(f"{PROG}: warning: --token shows in the process list (ps) to every local "
              f"user: use {TOKEN_ENV} or --token-file", file=sys.stderr, flush=True)
        return str(flag)
    if path:
        return read_token_file(path)
    return os.environ.get(TOKEN_ENV) or None


def read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read(MAX_TOKEN_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read --token-file {path}: {reason or err}") from None
    token = text.strip()
    if not token or len(text) > MAX_TOKEN_FILE_BYTES or any(c.isspace() for c in token):
        raise UsageError(f"--token-file {path} must hold one token on one line")
    return token


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
