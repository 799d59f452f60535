"""A ``cluster`` fixture: worker processes on the test's own prefix and database."""

from __future__ import annotations

import pytest

from e2e_harness import Cluster


@pytest.fixture
def make_cluster(etcd_endpoint, etcd_prefix, tmp_path, request):
    clusters: list[Cluster] = []

    def make(db_url: str, *extra_args: str) -> Cluster:
        cluster = Cluster(etcd_endpoint, etcd_prefix, db_url, tmp_path, list(extra_args))
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop_all()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for cluster in clusters:
            print(cluster.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
