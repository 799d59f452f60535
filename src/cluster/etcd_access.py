"""How a master or a worker reaches etcd from its settings, and its start-up check.

One place for both processes: the same endpoints, timeouts, TLS files and user, so
the master and the workers can never disagree on how they connect.

The start-up check (``check_etcd``) runs before a process starts anything: a setting
that cannot work (a wrong password, an unknown CA, a missing or expired client
certificate, a role that does not cover the prefix) raises ``EtcdAccessError``, which
``python -m master|worker`` turns into one line and exit code 2, rather than a crash
in every actor and a restart loop. An etcd that does not answer is not a setting:
the process starts as it always did and waits for it (a transient outage must never
stop a fleet); the check then says so, for a warning.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from cluster.config import Config
from cluster.etcd import Etcd, EtcdAccess, EtcdUnavailable, open_etcd
from cluster.keyspace import Keyspace
from cluster.shard_settings import local_shards, shards_at_start

__all__ = ["check_etcd", "etcd_access", "open_cluster_etcd"]


def etcd_access(config: Config) -> EtcdAccess:
    return EtcdAccess(ca_file=config.etcd_ca_file, cert_file=config.etcd_cert_file,
                      key_file=config.etcd_key_file, user=config.etcd_user,
                      password=config.etcd_password if config.etcd_user else None)


def open_cluster_etcd(config: Config) -> AbstractAsyncContextManager[Etcd]:
    """``open_etcd`` with this process's endpoints, timeouts, TLS and credentials."""
    return open_etcd(config.etcd_endpoints, timeout_s=config.etcd_request_timeout_s,
                     access=etcd_access(config), dial_timeout_s=config.etcd_dial_timeout_s)


async def check_etcd(config: Config, *, shards: bool = False,
                     initialise: bool = False) -> str | None:
    """Read the prefix once as this process will. None: etcd let us in; a note: etcd
    did not answer (start anyway). Raises EtcdAccessError for a wrong setting.

    ``shards``: then, on the same client, check the cluster's shard settings against
    this process's own (DESIGN §6b), ``initialise`` (the master) writing them if the
    cluster has none: ``ShardSettingsError`` (one line) on a conflict. Not checked when
    etcd does not answer (a worker reads them again when it starts its actors)."""
    async with open_cluster_etcd(config) as etcd:
        try:
            await etcd.check_access(config.prefix)
            if shards:
                local = local_shards(config.shard_slots, config.shard_replicas)
                await shards_at_start(etcd, Keyspace(config.prefix), local,
                                      initialise=initialise)
        except EtcdUnavailable as exc:
            return f"{exc}; starting anyway, and waiting for it"
    return None
