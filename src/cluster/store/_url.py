"""Parse the ``--db`` URL (DESIGN §9) into a typed target, and redact it for messages.

Accepted forms::

    mysql://user:pass@host:port/dbname      (``mariadb://`` is the same)
    sqlite:///relative/path.db              relative to the working directory
    sqlite:////absolute/path.db
    sqlite:///:memory:                      tests only: gone when the store closes
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from ._errors import StoreConfigError

MYSQL_DEFAULT_PORT = 3306
_SQLITE_PREFIX = "sqlite:///"


@dataclass(frozen=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    @property
    def display(self) -> str:
        """The URL without its password, safe for logs and error messages."""
        return f"mysql://{self.user}:***@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class SQLiteTarget:
    path: str  # as given: relative paths resolve against the working directory

    @property
    def display(self) -> str:
        return f"sqlite:///{self.path}"


def parse_store_url(url: str) -> MySQLTarget | SQLiteTarget:
    """Raise StoreConfigError (with the URL redacted) unless ``url`` is usable."""
    if url.startswith(_SQLITE_PREFIX):
        return _parse_sqlite(url)
    scheme = url.partition("://")[0].lower()
    if scheme in ("mysql", "mariadb"):
        return _parse_mysql(url)
    raise StoreConfigError(redact(url), "scheme must be mysql:// or sqlite:///")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _parse_sqlite(url: str) -> SQLiteTarget:
    path = urllib.parse.unquote(url[len(_SQLITE_PREFIX):])
    if not path or "?" in path or "#" in path:
        raise StoreConfigError(url, "expected sqlite:///relative.db or sqlite:////absolute.db")
    return SQLiteTarget(path)


def _parse_mysql(url: str) -> MySQLTarget:
    shown = redact(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or MYSQL_DEFAULT_PORT
    except ValueError as exc:
        raise StoreConfigError(shown, f"malformed URL ({exc})") from None
    database = urllib.parse.unquote(parts.path.lstrip("/"))
    if not parts.hostname or not parts.username:
        raise StoreConfigError(shown, "expected mysql://user:pass@host:port/dbname")
    if not database or "/" in database or parts.query or parts.fragment:
        raise StoreConfigError(shown, "expected exactly one database name after the host")
    return MySQLTarget(
        host=parts.hostname,
        port=port,
        user=urllib.parse.unquote(parts.username),
        password=urllib.parse.unquote(parts.password or ""),
        database=database,
    )
