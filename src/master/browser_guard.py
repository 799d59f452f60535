"""The browser guard: what a web page can make a browser send is refused, token or not.

A browser is a client the attacker can drive from any page its user opens, and two
attacks reach an API on loopback or on a trusted network whatever its token:

- **DNS rebinding.** ``evil.example`` is made to resolve to the master's address; the
  page then reads and writes the API as if it were its own origin. The browser still
  sends ``Host: evil.example``: the *Host rule* refuses any name the master does not
  serve (421 ``misdirected_request``).
- **Cross-site writes (CSRF).** Any page can send a form POST (the seed's ``/job/save``
  takes forms) or a ``no-cors`` fetch without a CORS preflight; the page cannot read the
  answer, but the job would be saved. The browser says where such a request comes from
  (``Origin``, ``Sec-Fetch-Site``): the *Origin rule* refuses a state-changing request
  (any method but GET, HEAD, OPTIONS) from anywhere but the master's own origin (403
  ``cross_origin``).

Host rule. A ``Host`` (its port is ignored: a rebinding attack is told by the *name*, a
proxy may forward its own port, and ``--port 0`` picks one at start) is served when it is

- the bind address (``--host``), unless that is a wildcard (``0.0.0.0``, ``::``);
- ``localhost``, ``127.0.0.1`` or ``[::1]``, when bound to loopback or to a wildcard;
- when bound to a wildcard, the address the connection actually reached (an IP
  literal: a page can only make a browser send a *name* it controls, never another
  IP than the one in its own URL);
- a name in ``--allowed-hosts`` (``.example.com`` = that name and every subdomain);
- the host of ``--public-url``.

A request without ``Host`` (HTTP/1.0; every browser sends one) passes.

Origin rule. For a state-changing request: ``Sec-Fetch-Site`` other than
``same-origin`` or ``none`` (so ``cross-site`` and also ``same-site``: a sibling
subdomain, or another port of the same host, is another origin) is refused; an
``Origin`` that is ``null``, malformed, or neither the origin the request reached
(``scheme://Host``) nor ``--public-url``'s is refused. A request with neither header
(curl, schedctl, httpx) passes: that is not a browser, and it cannot be made by a page.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from quart import Request, request

from cluster.config import Config

from .auth import is_loopback
from .errors import CrossOriginRefused, MisdirectedRequest

__all__ = ["BrowserGuard", "SAFE_METHODS", "guard_hook", "parse_authority"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # never change state here
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::"})
ACCEPTED_FETCH_SITES = frozenset({"same-origin", "none"})  # "none": the user's own doing
DEFAULT_PORTS = {"http": 80, "https": 443}

# A DNS name (letters, digits, '-', '.') or a bracketed IPv6 literal, then an optional port.
_AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
                        r"(?::(?P<port>[0-9]{1,5}))?", re.ASCII)


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, IP addresses in canonical form (IPv4-mapped IPv6
    as IPv4), brackets off: the form names are compared in."""
    text = host.strip().strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def parse_authority(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` as ``(normalized host, port or None)``; None if malformed."""
    match = _AUTHORITY.fullmatch(value.strip())
    if match is None:
        return None
    port = None if match["port"] is None else int(match["port"])
    if port is not None and not 0 < port < 65536:
        return None
    return normalize_host(match["host"]), port


Origin = tuple[str, str, int]  # scheme, normalized host, port (the default made explicit)


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` (nothing after it) as an Origin; None if malformed."""
    scheme, sep, authority = value.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        return None
    parsed = parse_authority(authority)
    if parsed is None:
        return None
    host, port = parsed
    return scheme, host, DEFAULT_PORTS[scheme] if port is None else port


@dataclass(frozen=True, slots=True)
class BrowserGuard:
    """The two rules, fixed from the config at start-up."""

    names: frozenset[str]  # exact, normalized
    suffixes: tuple[str, ...]  # "example.com" for ".example.com": it and its subdomains
    wildcard: bool  # bound to 0.0.0.0 / ::: the connection's own address is served too
    public_origin: Origin | None

    @classmethod
    def from_config(cls, config: Config) -> BrowserGuard:
        bind = normalize_host(config.api_host)
        wildcard = bind in WILDCARDS
        names = set() if wildcard else {bind}
        if wildcard or is_loopback(bind):
            names |= LOOPBACK_NAMES
        suffixes = []
        for name in config.allowed_hosts:
            if name.startswith("."):
                suffixes.append(normalize_host(name[1:]))
            else:
                names.add(normalize_host(name))
        public_origin = None
        if config.public_url is not None:
            public_origin = parse_origin(_origin_of(config.public_url))
            if public_origin is not None:
                names.add(public_origin[1])
        return cls(frozenset(names), tuple(suffixes), wildcard, public_origin)

    def serves(self, host: str, local_address: str | None = None) -> bool:
        """Whether ``host`` (normalized, no port) is a name this master answers to."""
        if host in self.names or any(host == s or host.endswith("." + s)
                                     for s in self.suffixes):
            return True
        return self.wildcard and local_address is not None \
            and host == normalize_host(local_address)

    def check_host(self, req: Request) -> None:
        raw = req.headers.get("Host")
        if raw is None:
            return
        parsed = parse_authority(raw)
        if parsed is None or not self.serves(parsed[0], _local_address(req.scope)):
            raise MisdirectedRequest(raw)

    def check_origin(self, req: Request) -> None:
        if req.method in SAFE_METHODS:
            return
        site = req.headers.get("Sec-Fetch-Site")
        if site is not None and site.strip().lower() not in ACCEPTED_FETCH_SITES:
            raise CrossOriginRefused(req.method, f"Sec-Fetch-Site: {site}")
        origin = req.headers.get("Origin")
        if origin is not None and not self._is_own(parse_origin(origin), req):
            raise CrossOriginRefused(req.method, f"Origin: {origin}")

    def _is_own(self, origin: Origin | None, req: Request) -> bool:
        if origin is None:  # "null" (sandboxed frames, file: pages, ...) or malformed
            return False
        return origin == self.public_origin or origin == _reached_origin(req)

    def check(self, req: Request) -> None:
        self.check_host(req)
        self.check_origin(req)


def _origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reached_origin(req: Request) -> Origin | None:
    """The origin the request was sent to: its scheme and its Host header."""
    host = req.headers.get("Host")
    return None if host is None else parse_origin(f"{req.scheme}://{host}")


def _local_address(scope: Any) -> str | None:
    server = scope.get("server") if isinstance(scope, dict) else None
    return server[0] if server else None


def guard_hook(config: Config) -> Callable[[], Awaitable[None]]:
    """The app's first ``before_request``: it runs for every request, routed or not,
    before authentication (a rebinding page must not even learn whether it is needed)."""
    guard = BrowserGuard.from_config(config)

    async def browser_guard() -> None:
        guard.check(request)

    return browser_guard
