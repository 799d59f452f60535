"""What the HTTP handlers ask, built once and shared by the app and the tree.

``jobs`` (JobManager) speaks to etcd; ``runs`` (LogManager) to the run store, which the
tree's StoreKeeper child keeps open; ``workers`` is the address of the WorkerManager
actor (the live worker list, from memory): the only actor the handlers call;
``alerts`` (AlertManager) the alert channels in etcd and test events; ``events``
(EventHub) the numbered events the streams of /api/v1/events read (fed by the tree's
EventFeeds child); ``outputs`` (OutputStreams) the open streams of a run's live output. The
services are not actors: a request runs in its
caller's task under its caller's deadline (``ask``), and each service bounds how many
requests reach its dependency at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors import Address
from cluster.etcd import Etcd

from .alerts import AlertManager
from .context import MasterContext
from .events import EventHub
from .jobs import JobManager
from .messages import WorkerManagerMsg
from .output_api import OutputStreams
from .runs import LogManager

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    jobs: JobManager
    runs: LogManager
    workers: Address[WorkerManagerMsg]
    alerts: AlertManager
    events: EventHub
    outputs: OutputStreams

    @classmethod
    def create(cls, ctx: MasterContext, etcd: Etcd,
               workers: Address[WorkerManagerMsg]) -> Services:
        runs = LogManager(ctx)
        return cls(JobManager(ctx, etcd), runs, workers, AlertManager(ctx, etcd, runs),
                   EventHub(ctx.metrics), OutputStreams(ctx))

    def close_streams(self) -> None:
        """The master stops: the streams that never end by themselves end now."""
        self.events.close_all()
        self.outputs.close_all()
