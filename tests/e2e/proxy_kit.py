"""Workers behind an ``EtcdProxy``, for the partition and slow-etcd tests.

A worker whose ``--etcd`` is a proxy's endpoint reaches etcd only through it; the
others (and the test itself) go direct. ``Timeline`` is the log of what happened when;
``LeaseWatch`` (``scripts/lease_watch.py``, shared with the benchmarks) polls one
worker's key directly, so the test knows when etcd let its lease go and when it came
back on a new one.
"""

from __future__ import annotations

import urllib.parse

import trio

from cluster.store import RunRecord, open_store
from e2e_harness import Cluster, ServiceProcess, Timeline, all_records, check_fires
from lease_watch import LeaseWatch

__all__ = ["LeaseWatch", "Timeline", "add_worker_via", "db_target", "db_url_via",
           "records_and_ticks", "stop_workers_cleanly"]


def stop_workers_cleanly(cluster: Cluster, timeline: Timeline) -> None:
    """Every worker lived through the fault, then stops on SIGTERM with status 0."""
    for worker in cluster.workers:
        assert worker.alive(), cluster.logs()
    cluster.stop_all()
    timeline.note("workers stopped (SIGTERM)")
    assert all(w.process.returncode == 0 for w in cluster.workers), cluster.logs()


async def records_and_ticks(db_url: str, names: list[str], start_ms: int, end_ms: int):
    """Every record in the store, those of ``names`` planned in [start, end), and the
    check of those fires (doubled, missed)."""
    async with open_store(db_url) as store:
        everything: list[RunRecord] = await all_records(store)
    ticks = [r for r in everything if r.job_name in names and start_ms <= r.plan_time < end_ms]
    return everything, ticks, check_fires(ticks, names, start_ms, end_ms)


def add_worker_via(cluster: Cluster, endpoint: str, worker_id: str,
                   *more_args: str, db_url: str | None = None) -> ServiceProcess:
    """A worker of ``cluster`` whose only way to etcd is ``endpoint`` (a proxy), and to
    the store ``db_url`` if given (another proxy)."""
    behind = Cluster(endpoint, cluster.prefix, db_url or cluster.db_url, cluster.base_dir,
                     cluster.extra_args)
    worker = behind.add_worker(worker_id, *more_args)
    cluster.workers.append(worker)  # stopped with the others
    return worker


def db_target(db_url: str) -> str:
    """``host:port`` of a ``mysql://`` URL."""
    u = urllib.parse.urlsplit(db_url)
    return f"{u.hostname}:{u.port or 3306}"


def db_url_via(db_url: str, endpoint: str) -> str:
    """``db_url`` with its host and port replaced by ``endpoint`` (a proxy's)."""
    u = urllib.parse.urlsplit(db_url)
    userinfo = u.netloc.rpartition("@")[0]
    return urllib.parse.urlunsplit(u._replace(netloc=f"{userinfo}@{endpoint}"))
