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
    """`mysql://user:pass@host:port/dbname` (or `mariadb://`), user and password
    unquoted; the port defaults to 3306, the password may be absent."""

    host: str
    port: int
    database: str
    user: str
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def url(self) -> str:
        shown = None if self.password is None else urllib.parse.quote(self.password, safe="")
        return self._render(shown)

    def redacted(self) -> str:
        """The URL with the password replaced, for logs and error messages."""
        return self._render(None if self.password is None else "***")

    def _render(self, shown_password: str | None) -> str:
        auth = urllib.parse.quote(self.user, safe="")
        auth += "" if shown_password is None else ":" + shown_password
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{auth}@{host}:{self.port}/{self.database}"


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
    if parts.query or parts.fragment:
        raise BadDbUrl(url, "query strings and fragments are not supported")
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
    )


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
