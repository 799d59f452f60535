"""Fixtures for the etcd adapter's tests (helpers live in ``etcd_testkit``)."""

from __future__ import annotations

import pytest

from cluster.etcd import open_etcd


@pytest.fixture
async def etcd(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint], timeout_s=5.0) as client:
        yield client
        await client.delete_prefix(etcd_prefix)

