"""``open_store``: the one way to get a RunStore, for either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cluster.config import BadDbUrl, DbUrl, MysqlUrl, parse_db_url

from ._errors import StoreConfigError
from ._settings import StoreSettings
from ._store import RunStore


@asynccontextmanager
async def open_store(url: str | DbUrl,
                     settings: StoreSettings | None = None) -> AsyncIterator[RunStore]:
    """Yield a RunStore for ``url``, closed on exit: a parsed ``DbUrl`` (what the
    processes pass: ``Config.db``, with the password and TLS settings applied, so no
    password is ever written into a string), or the text of one
    (``mysql://user:pass@host:port/db?ssl-ca=...``, ``sqlite:///relative.db``,
    ``sqlite:////absolute.db``).

    Raises StoreConfigError at once for a bad URL, StoreTlsError for TLS files that
    cannot be loaded. Opening never needs the server: the table is created by the
    first call that reaches it, and until then calls raise StoreUnavailable (or, if
    the server refuses us, StoreAccessDenied / StoreCertificateError), so a worker
    starts (and spills its runs) while MySQL is down. Call ``ping()`` to insist on a
    reachable store.
    """
    target = parse_store_url(url) if isinstance(url, str) else url
    settings = settings or StoreSettings()
    if isinstance(target, MysqlUrl):
        from ._mysql import open_mysql  # asyncio stays out of SQLite-only processes

        async with open_mysql(target, settings) as mysql:
            yield RunStore(mysql)
    else:
        from ._sqlite import open_sqlite

        async with open_sqlite(target, settings) as sqlite:
            yield RunStore(sqlite)


def parse_store_url(url: str) -> DbUrl:
    """``url`` read by the config's parser (the project has one); a bad URL is the
    store's StoreConfigError, its password redacted. ``sqlite:///:memory:`` is
    accepted, for tests: that database is gone when the store closes."""
    try:
        return parse_db_url(url)
    except BadDbUrl as exc:
        raise StoreConfigError(exc.url, exc.reason) from None
