"""Fixtures of the RunStore tests: the same test on both backends, SQLite in tmp_path and
MariaDB (a fresh database per test, from the ``mysql_url`` fixture)."""

import pytest

from cluster.store import open_store


@pytest.fixture(params=["sqlite", "mysql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"  # tmp_path is absolute: sqlite:////...
    return request.getfixturevalue("mysql_url")


@pytest.fixture
async def store(store_url):
    async with open_store(store_url) as opened:
        yield opened
