"""Fixtures of the master's tests: a running master on a fresh etcd prefix and SQLite."""

from __future__ import annotations

import pytest

from master_testkit import make_config, running_master


@pytest.fixture
def config(tmp_path, etcd_endpoint, etcd_prefix):
    return make_config(tmp_path, etcd_endpoint, etcd_prefix)


@pytest.fixture
async def master(config):
    async with running_master(config) as m:
        yield m
        await m.etcd.delete_prefix(config.prefix)
