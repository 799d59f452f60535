"""Who is calling: bearer tokens with names and roles, and the rule that keeps an open
API on loopback.

Tokens come from two places: the single ``--token`` / ``--token-file`` /
``SCHEDULER_API_TOKEN``, which is an ``admin`` token named ``admin``, and the tokens
file (``--tokens-file``, see ``cluster.tokens``), which holds only SHA-256 hashes. The
file is read at start-up (a bad one stops the master), then again whenever it changes
(``TokensReloader``: checked at most every RELOAD_CHECK_S, by the requests
themselves), so ``schedctl token add`` and ``remove`` take effect without a restart; a
file that turns bad is ignored, with a warning, and the previous tokens stay. A presented token is hashed and
its digest compared with every entry's by ``hmac.compare_digest``, all of them, without
stopping at a match: the time taken says nothing about which token, or how much of
one, was right. A missing and a wrong token get the same answer (no oracle). With no
token configured at all the API is open, every caller being the admin ``anonymous``,
so the master refuses to listen anywhere but loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

from cluster.config import Config
from cluster.tokens import Role, TokenEntry, TokensFileError, hash_token, read_tokens_file

__all__ = ["ANONYMOUS", "ExposureRefused", "Identity", "RELOAD_CHECK_S", "SINGLE_TOKEN_NAME",
           "TokenAuth", "TokensReloader", "check_exposure", "is_loopback", "load_auth"]

log = logging.getLogger(__name__)

SINGLE_TOKEN_NAME: Final = "admin"  # the name --token's admin token has in the audit trail
RELOAD_CHECK_S: Final = 1.0  # how stale the tokens may be after the file changed


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller of one request: the token's name and its role."""

    name: str
    role: Role


ANONYMOUS: Final = Identity("anonymous", Role.ADMIN)  # no token configured (loopback only)


class ExposureRefused(Exception):
    """The config would serve an unauthenticated API beyond this machine."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to listen on non-loopback host {host!r} without an API token: "
            f"set SCHEDULER_API_TOKEN, --token-file or --tokens-file, or listen on "
            f"127.0.0.1")


class TokenAuth:
    """Maps an ``Authorization`` header to the Identity of its token, or None."""

    __slots__ = ("_entries",)

    def __init__(self, entries: tuple[TokenEntry, ...] | None) -> None:
        """``entries`` None: no auth configured (everyone is ANONYMOUS)."""
        self._entries = entries

    @property
    def enabled(self) -> bool:
        return self._entries is not None

    @property
    def names(self) -> tuple[str, ...]:
        return () if self._entries is None else tuple(e.name for e in self._entries)

    def identify(self, authorization: str | None) -> Identity | None:
        entries = self._entries
        if entries is None:
            return ANONYMOUS
        if not authorization:
            return None
        scheme, _, credentials = authorization.strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hash_token(token)
        found: TokenEntry | None = None
        for entry in entries:  # every entry, always: no early exit on a match
            if hmac.compare_digest(digest, entry.digest):
                found = entry
        return None if found is None else Identity(found.name, found.role)

    def __repr__(self) -> str:
        return f"TokenAuth(enabled={self.enabled}, tokens={len(self.names)})"  # no digests


def load_auth(config: Config) -> TokenAuth:
    """The master's tokens: the single admin token, then the tokens file's entries.

    Raises TokensFileError (a one-line start-up error) for a bad file, including a
    file entry named like the single token.
    """
    entries: list[TokenEntry] = []
    if config.api_token is not None:
        entries.append(TokenEntry(SINGLE_TOKEN_NAME, Role.ADMIN, hash_token(config.api_token)))
    if config.tokens_file is not None:
        path = config.tokens_file
        for entry in read_tokens_file(path):
            if entries and entry.name == SINGLE_TOKEN_NAME and config.api_token is not None:
                raise TokensFileError(path, f"the name {SINGLE_TOKEN_NAME!r} is the single "
                                            f"API token's (--token): rename this entry")
            if config.api_token is not None and entry.digest == entries[0].digest:
                raise TokensFileError(path, f"entry {entry.name!r} is the single API "
                                            f"token (--token) itself")
            entries.append(entry)
    if config.api_token is None and config.tokens_file is None:
        return TokenAuth(None)
    return TokenAuth(tuple(entries))


FileStamp = tuple[int, int, int] | None  # inode, mtime (ns), size; None: cannot stat


def _stamp(path: str) -> FileStamp:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class TokensReloader:
    """The master's current TokenAuth: re-read when the tokens file changes.

    ``current()`` stats the file at most every RELOAD_CHECK_S (in a thread, as it
    reads it); requests meanwhile use the tokens they have. Invariant: a file that
    cannot be read or parsed never replaces a good table (it is logged once per
    change); the single admin token is part of every table.
    """

    def __init__(self, config: Config, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._stamp = None if config.tokens_file is None else _stamp(config.tokens_file)
        self._auth = load_auth(config)  # TokensFileError at start: main() reports it
        self._next_check = clock() + RELOAD_CHECK_S
        self._checking = False

    async def current(self) -> TokenAuth:
        path = self._config.tokens_file
        if path is None or self._checking or self._clock() < self._next_check:
            return self._auth
        self._checking = True
        try:
            stamp = await trio.to_thread.run_sync(_stamp, path)
            if stamp != self._stamp:
                self._stamp = stamp
                await self._reload()
        finally:
            self._next_check = self._clock() + RELOAD_CHECK_S
            self._checking = False
        return self._auth

    async def _reload(self) -> None:
        try:
            auth = await trio.to_thread.run_sync(load_auth, self._config)
        except TokensFileError as exc:
            log.warning("%s; keeping the %d tokens read before", exc, len(self._auth.names))
            return
        self._auth = auth
        log.info("tokens file %s reloaded: %d tokens (%s)", self._config.tokens_file,
                 len(auth.names), ", ".join(auth.names))


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1); names other
    than localhost count as exposed, whatever they resolve to today."""
    text = host.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_exposure(config: Config) -> None:
    """A tokens file counts as auth (even one without entries: then nobody gets in)."""
    if config.api_token is None and config.tokens_file is None \
            and not is_loopback(config.api_host):
        raise ExposureRefused(config.api_host)
