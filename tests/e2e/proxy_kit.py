"""Workers behind an ``EtcdProxy``, for the partition and slow-etcd tests.

A worker whose ``--etcd`` is a proxy's endpoint reaches etcd only through it; the
others (and the test itself) go direct. ``Timeline`` is the log of what happened when;
``LeaseWatch`` polls one worker's key directly, so the test knows when etcd let its
lease go and when it came back on a new one.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import trio

from cluster.etcd import Etcd
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, open_store
from e2e_harness import Cluster, ServiceProcess, Timeline, all_records, check_fires

POLL_S = 0.02


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


@dataclass
class LeaseWatch:
    """The lease of ``workers/<id>`` as etcd holds it, polled every POLL_S: when the
    key went (the lease expired or was revoked), and each lease it was seen on."""

    etcd: Etcd
    ks: Keyspace
    worker_id: str
    leases: list[tuple[float, int]] = field(default_factory=list)  # (first seen, id)
    gone_at: list[float] = field(default_factory=list)

    async def run(self) -> None:
        present = True
        while True:
            kv = await self.etcd.get(self.ks.worker(self.worker_id))
            now = trio.current_time()
            if kv is None and present:
                self.gone_at.append(now)
            elif kv is not None and (not self.leases or self.leases[-1][1] != kv.lease_id):
                self.leases.append((now, kv.lease_id))
            present = kv is not None
            await trio.sleep(POLL_S)

    async def wait_new_lease(self, after: int, timeout_s: float) -> float:
        with trio.fail_after(timeout_s):
            while len(self.leases) <= after:
                await trio.sleep(POLL_S)
        return self.leases[-1][0]
