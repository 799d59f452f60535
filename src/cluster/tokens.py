"""Named API tokens with roles: the tokens file, shared by the master and schedctl.

One token per line, ``name role hash``; blank lines and ``#`` comments are ignored::

    # name     role     sha256 of the token, 64 lowercase hex digits
    ci         operate  4f1c...e2a9
    dashboard  read     09ab...77c3

The hash is the SHA-256 of the token's UTF-8 bytes in hex (what
``printf %s "$TOKEN" | sha256sum`` prints): the file never holds a token, so reading
it gives nobody access. ``schedctl token add`` writes lines; the master reads the
file once, at start-up.

Roles are ordered, each one allowing what the ones below it allow:
``read`` (reads only) < ``operate`` (+ run now, kill, pause, resume) < ``admin``
(everything: create, replace and delete jobs).

This module imports only the standard library: schedctl uses it too.

Errors:
    ValueError
     └── TokensFileError   the file cannot be read, or a line is not a valid token line
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "HASH_RE", "NAME_RE", "ROLE_NAMES", "Role", "TokenEntry", "TokensFileError", "format_line",
    "hash_token", "parse_tokens", "read_tokens_file",
]

#: A token name: one word, shown in the audit trail and in logs.
NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", re.ASCII)
HASH_RE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_MAX_FILE_BYTES: Final = 1024 * 1024  # ~10,000 tokens: anything bigger is not a tokens file


class Role(enum.Enum):
    """What a token may do; each role includes the ones before it."""

    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


_RANKS: Final = {Role.READ: 0, Role.OPERATE: 1, Role.ADMIN: 2}
ROLE_NAMES: Final = tuple(r.value for r in Role)


class TokensFileError(ValueError):
    """The tokens file is unreadable, or one of its lines is wrong (one line to show)."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = path if line is None else f"{path}, line {line}"
        super().__init__(f"tokens file {where}: {reason}")


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One line of the file. ``digest`` is the token's SHA-256 (32 bytes), never the token."""

    name: str
    role: Role
    digest: bytes

    def __repr__(self) -> str:
        return f"TokenEntry({self.name!r}, {self.role.value})"  # no digest in logs


def hash_token(token: str) -> bytes:
    """The SHA-256 of a token's UTF-8 bytes (what the file stores, in hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def format_line(name: str, role: Role, digest: bytes) -> str:
    return f"{name} {role.value} {digest.hex()}\n"


def parse_tokens(lines: Iterable[str], path: str) -> tuple[TokenEntry, ...]:
    """Every entry of the file's ``lines``; TokensFileError names the first bad line.

    Refused: a line that is not three words, a name or hash of the wrong shape, an
    unknown role, a name used twice, and a hash used twice (one token, two names:
    which one would the audit trail show?).
    """
    entries: list[TokenEntry] = []
    names: dict[str, int] = {}
    digests: dict[bytes, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        entry = _parse_line(text, path, number)
        if entry.name in names:
            raise TokensFileError(path, f"duplicate name {entry.name!r} (first on line "
                                        f"{names[entry.name]})", number)
        if entry.digest in digests:
            raise TokensFileError(path, f"same token hash as line {digests[entry.digest]}",
                                  number)
        names[entry.name] = digests[entry.digest] = number
        entries.append(entry)
    return tuple(entries)


def _parse_line(text: str, path: str, number: int) -> TokenEntry:
    words = text.split()
    if len(words) != 3:
        raise TokensFileError(path, f"expected 'name role sha256-hex', got {len(words)} "
                                    f"word(s)", number)
    name, role, digest = words
    if not NAME_RE.fullmatch(name):
        raise TokensFileError(path, f"name {name[:70]!r} must match {NAME_RE.pattern}", number)
    if role not in ROLE_NAMES:
        raise TokensFileError(path, f"unknown role {role[:20]!r} (known: "
                                    f"{', '.join(ROLE_NAMES)})", number)
    if not HASH_RE.fullmatch(digest):
        # Never echo the word: it may be a token pasted by mistake.
        raise TokensFileError(path, "the hash must be 64 lowercase hex digits (the "
                                    "token's SHA-256), not the token itself", number)
    return TokenEntry(name, Role(role), bytes.fromhex(digest))


def read_tokens_file(path: str) -> tuple[TokenEntry, ...]:
    """Read and parse the file (no symlink followed); TokensFileError if it cannot be."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise TokensFileError(path, f"cannot read it: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        data = file.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise TokensFileError(path, f"larger than {_MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokensFileError(path, "not UTF-8 text") from None
    return parse_tokens(text.splitlines(), path)
