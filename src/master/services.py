"""The master's two request services, built once and shared by the app and the tree.

``jobs`` (JobManager) speaks to etcd; ``runs`` (LogManager) to the run store, which the
tree's StoreKeeper child keeps open. Neither is an actor: a request runs in its
caller's task under its caller's deadline (``ask``), and each service bounds how many
requests reach its dependency at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.etcd import Etcd

from .context import MasterContext
from .jobs import JobManager
from .runs import LogManager

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    jobs: JobManager
    runs: LogManager

    @classmethod
    def create(cls, ctx: MasterContext, etcd: Etcd) -> Services:
        return cls(JobManager(ctx, etcd), LogManager(ctx))
