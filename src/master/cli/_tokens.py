"""`schedctl token add|list|remove`: the master's tokens file, edited locally.

The file (`--tokens-file` or $SCHEDULER_TOKENS_FILE, the same setting the master
reads) holds `name role sha256-hex` lines and never a token (format in
`cluster.tokens`). `add` makes a token with `secrets`, appends its hash and prints the
token once, on stdout, and nothing else there: `TOKEN=$(schedctl token add ci --role
operate)` keeps it out of the terminal's scrollback. A new file is created with mode
0600 (by `os.open`, never chmod-ed after). Every command holds an exclusive `flock`
on the file while it reads and writes it, so two `add`s never lose a line. The master
reads the file at start-up and again within a second of each change (no restart).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Final

from cluster.tokens import (NAME_RE, Role, TokenEntry, TokensFileError, format_line,
                            hash_token, parse_tokens)

from ._context import Context
from ._errors import UsageError
from ._format import cell, format_table
from ._settings import PROG, TOKENS_FILE_ENV

TOKEN_BYTES: Final = 32  # 256 bits, about 43 URL-safe characters
# A fixed start: secret scanners can spot a leaked token, and none begins with "-"
# (which `--token -x...` would take for an option).
TOKEN_PREFIX: Final = "sched_"
_OPEN_FLAGS: Final = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_BYTES: Final = 1024 * 1024


def tokens_path(args: argparse.Namespace) -> str:
    path = getattr(args, "tokens_file", None) or os.environ.get(TOKENS_FILE_ENV)
    if not path:
        raise UsageError(f"token: give --tokens-file PATH or set {TOKENS_FILE_ENV} (the "
                         f"master's --tokens-file)")
    return path


@contextmanager
def _locked(path: str, *, create: bool) -> Iterator[int]:
    """The file, open and exclusively locked. `remove` replaces the file by a rename:
    a lock won on the replaced file is dropped and taken again on the new one."""
    flags = _OPEN_FLAGS | (os.O_CREAT if create else 0)
    while True:
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as err:
            raise UsageError(f"cannot open tokens file {path}: {err.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _read(fd: int, path: str) -> str:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
        if offset > _MAX_BYTES:
            raise UsageError(f"tokens file {path} is larger than {_MAX_BYTES} bytes")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"tokens file {path} is not UTF-8 text") from None


def _entries(text: str, path: str) -> tuple[TokenEntry, ...]:
    try:
        return parse_tokens(text.splitlines(), path)
    except TokensFileError as err:
        raise UsageError(f"{err} (fix the file first)") from None


def cmd_token_add(ctx: Context, args: argparse.Namespace) -> None:
    path = tokens_path(args)
    if not NAME_RE.fullmatch(args.name):
        raise UsageError(f"token add: the name must match {NAME_RE.pattern}")
    role = Role(args.role)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    with _locked(path, create=True) as fd:
        text = _read(fd, path)
        if any(e.name == args.name for e in _entries(text, path)):
            raise UsageError(f"token add: {path} already has a token named {args.name!r} "
                             f"(remove it first)")
        line = format_line(args.name, role, hash_token(token))
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, (("\n" if text and not text.endswith("\n") else "") + line).encode())
        os.fsync(fd)
    ctx.print(token)  # the one place the token ever appears
    print(f"{PROG}: token {args.name!r} ({role.value}) added to {path} (a running master "
          f"takes it within a second). It is shown once: keep it now.", file=sys.stderr, flush=True)


def cmd_token_list(ctx: Context, args: argparse.Namespace) -> None:
    path = tokens_path(args)
    with _locked(path, create=False) as fd:
        entries = _entries(_read(fd, path), path)
    data = {"tokens": [{"name": e.name, "role": e.role.value} for e in entries]}
    ctx.emit(data, lambda: format_table(["NAME", "ROLE"], [[cell(e.name), e.role.value]
                                                            for e in entries])
             if entries else "no tokens")


def cmd_token_remove(ctx: Context, args: argparse.Namespace) -> None:
    """Writes the file again without the name's line (comments and order kept) to a
    new 0600 file beside it, then renames it over the old one: a master starting
    meanwhile reads the old file or the new one, never half of one."""
    path = tokens_path(args)
    with _locked(path, create=False) as fd:
        text = _read(fd, path)
        lines = text.splitlines(keepends=True)
        kept = [line for line in lines if _name_of(line) != args.name]
        if len(kept) == len(lines):
            raise UsageError(f"token remove: no token named {args.name!r} in {path}")
        _entries("".join(kept), path)
        _replace(path, "".join(kept).encode())
    ctx.emit({"removed": args.name}, lambda: f"removed token {cell(args.name)} from "
                                             f"{cell(path)} (a running master refuses it within a second)")


def _replace(path: str, data: bytes) -> None:
    temp = f"{path}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _name_of(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    return text.split()[0]
