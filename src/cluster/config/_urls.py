"""The shapes of the addresses we are given: run-store URLs and etcd endpoints.

One parser for each, shared by the config (which checks them at load time), the run
store and the etcd adapter, so a value the config accepted is one they can use.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ._errors import BadDbUrl, BadEndpoint


@dataclass(frozen=True)
class MysqlUrl:
    """`mysql://user:pass@host:port/dbname?ssl-ca=PATH` (or `mariadb://`), user and
    password unquoted; the port defaults to 3306, the password may be absent.

    TLS is on when `ca_file` is set (the `ssl-ca` key): the server's certificate must
    chain to that CA and, unless `verify_identity` is off (`ssl-verify-identity=false`),
    name the host. `cert_file` / `key_file` (`ssl-cert`, `ssl-key`) present a client
    certificate; they need a CA (here or `db_ca_file`), since a client certificate
    sent to an unverified server hands our identity to whoever answers.
    """

    host: str
    port: int
    database: str
    user: str
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_file: str | None = None
    verify_identity: bool = True
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    @property
    def url(self) -> str:
        """The URL with its password: for a process that must be told it, never for
        a log or an error (use `redacted`), nor for a command line (`ps` shows it)."""
        shown = None if self.password is None else urllib.parse.quote(self.password, safe="")
        return self._render(shown)

    def redacted(self) -> str:
        """The URL with the password replaced, for logs and error messages."""
        return self._render(None if self.password is None else "***")

    def _render(self, shown_password: str | None) -> str:
        auth = urllib.parse.quote(self.user, safe="")
        auth += "" if shown_password is None else ":" + shown_password
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(f"{key}={urllib.parse.quote(value, safe='/')}"
                         for key, value in self._tls_query())
        return f"mysql://{auth}@{host}:{self.port}/{self.database}" + (query and "?" + query)

    def _tls_query(self) -> list[tuple[str, str]]:
        pairs = [(key, getattr(self, attr)) for key, attr in _TLS_PATH_KEYS.items()
                 if getattr(self, attr) is not None]
        if not self.verify_identity:
            pairs.append((_VERIFY_IDENTITY, "false"))
        return pairs


# The URL's query keys (MySQL's client option names) and the MysqlUrl field of each.
_TLS_PATH_KEYS = {"ssl-ca": "ca_file", "ssl-cert": "cert_file", "ssl-key": "key_file"}
_VERIFY_IDENTITY = "ssl-verify-identity"
_BOOLS = {"true": True, "1": True, "yes": True, "on": True,
          "false": False, "0": False, "no": False, "off": False}


@dataclass(frozen=True)
class SqliteUrl:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`."""

    path: str  # percent-decoded; relative to the working directory unless it starts with "/"

    @property
    def url(self) -> str:
        return "sqlite:///" + urllib.parse.quote(self.path, safe="/:")

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def resolved_path(self) -> str:
        """What to open: `:memory:` as is, else the path made absolute against the
        working directory now, so a later chdir does not move the database."""
        return self.path if self.in_memory else str(Path(self.path).absolute())

    def redacted(self) -> str:
        return self.url


DbUrl = MysqlUrl | SqliteUrl

_DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")


def parse_db_url(url: str) -> DbUrl:
    """Parse a run-store URL; raise BadDbUrl naming what is wrong (password redacted)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise BadDbUrl(url, "no scheme")
    match scheme.lower():  # schemes are case-insensitive (RFC 3986)
        case "mysql" | "mariadb":
            return _parse_mysql_url(url)
        case "sqlite":
            return _parse_sqlite_url(url)
        case _:
            raise BadDbUrl(url, f"unsupported scheme {scheme!r}")


def _parse_mysql_url(url: str) -> MysqlUrl:
    parts = urllib.parse.urlsplit(url)
    if parts.fragment:
        raise BadDbUrl(url, "fragments are not supported")
    try:
        port = parts.port or 3306
    except ValueError:
        raise BadDbUrl(url, "the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise BadDbUrl(url, "no host")
    if not parts.username:
        raise BadDbUrl(url, "no user name")
    database = parts.path.removeprefix("/")
    if not _DB_NAME.match(database):
        raise BadDbUrl(url, f"the database name {database!r} is missing or not [A-Za-z0-9_$-]")
    unquote = urllib.parse.unquote
    return MysqlUrl(
        host=parts.hostname, port=port, database=database, user=unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        **_tls_options(url, parts.query),
    )


def _tls_options(url: str, query: str) -> dict[str, object]:
    """The MysqlUrl fields the query sets: exactly the keys documented, once each.

    Values are percent-decoded but, unlike a form, `+` stays `+` (it is a path)."""
    known = sorted([*_TLS_PATH_KEYS, _VERIFY_IDENTITY])
    options: dict[str, object] = {}
    for pair in query.split("&") if query else []:
        key, sep, value = pair.partition("=")
        value = urllib.parse.unquote(value)
        if key not in known:
            raise BadDbUrl(url, f"unknown query key {key!r} (known: {', '.join(known)})")
        if not sep or not value:
            raise BadDbUrl(url, f"{key} needs a value: {key}=...")
        attr = _TLS_PATH_KEYS.get(key, "verify_identity")
        if attr in options:
            raise BadDbUrl(url, f"the query gives {key} twice")
        if key == _VERIFY_IDENTITY:
            if value.lower() not in _BOOLS:
                raise BadDbUrl(url, f"{key} must be true or false, not {value!r}")
            options[attr] = _BOOLS[value.lower()]
        else:
            options[attr] = value
    if "key_file" in options and "cert_file" not in options:
        raise BadDbUrl(url, "ssl-key needs ssl-cert")
    return options


def _parse_sqlite_url(url: str) -> SqliteUrl:
    if not url.startswith("sqlite:///"):
        raise BadDbUrl(url, "a SQLite URL has no host: three slashes, then the path")
    path = url.removeprefix("sqlite:///")
    if "?" in path or "#" in path:
        raise BadDbUrl(url, "query strings and fragments are not supported")
    path = urllib.parse.unquote(path)  # as the run store does: "my%20runs.db"
    if not path or path.endswith("/"):
        raise BadDbUrl(url, "no file name")
    return SqliteUrl(path)


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


def parse_endpoint(text: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 as `[::1]:2379`, brackets kept); raise BadEndpoint."""
    host, sep, port_text = text.rpartition(":")
    if not (sep and _HOST.match(host) and port_text.isdigit()
            and 1 <= int(port_text) <= 65535):
        raise BadEndpoint(text)
    return host, int(port_text)
