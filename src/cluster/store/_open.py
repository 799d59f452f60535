"""``open_store``: the one way to get a RunStore, for either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._settings import StoreSettings
from ._store import RunStore
from ._url import MySQLTarget, parse_store_url


@asynccontextmanager
async def open_store(url: str, settings: StoreSettings | None = None) -> AsyncIterator[RunStore]:
    """Yield a RunStore for ``url`` (``mysql://user:pass@host:port/db``,
    ``sqlite:///relative.db`` or ``sqlite:////absolute.db``), closed on exit.

    Raises StoreConfigError at once for a bad URL. Opening never needs the server:
    the table is created by the first call that reaches it, and until then calls
    raise StoreUnavailable, so a worker starts (and spills its runs) while MySQL is
    down. Call ``ping()`` to insist on a reachable store.
    """
    target = parse_store_url(url)
    settings = settings or StoreSettings()
    if isinstance(target, MySQLTarget):
        from ._mysql import open_mysql  # asyncio stays out of SQLite-only processes

        async with open_mysql(target, settings) as mysql:
            yield RunStore(mysql)
    else:
        from ._sqlite import open_sqlite

        async with open_sqlite(target, settings) as sqlite:
            yield RunStore(sqlite)
