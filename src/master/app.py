"""The master's supervision tree, and the function that runs one master to the end.

Start order is dependency order; shutdown runs it backwards (DESIGN §2)::

    master (one_for_one)
    ├── store         StoreKeeper: opens the LogManager's run store, checks it, closes it
    ├── stats         StatsBuilder: builds older runs into the statistics' rollup (MySQL)
    ├── workers       WorkerManager: the live worker list (watch on workers/)
    ├── schedulable   SchedulableWatch: jobs no live worker can run, once per change;
    │                 its jobs/ watch keeps the JobManager's JobCache (the jobs list)
    ├── retention     prunes old run records every few minutes
    ├── audit         AuditMover: moves audit entries from etcd to the run store
    ├── alerts        publishes the alert settings, then delivers alerts (MasterAlerts)
    ├── events        EventFeeds: etcd and run-store changes into the EventHub (/api/v1/events)
    ├── http          hypercorn serving the app (API, seed endpoints, UI)
    └── metrics-http  /metrics alone on metrics_port (only when configured)

So a SIGTERM first stops accepting connections and lets in-flight requests finish,
then stops the actors, and closes the store last. The event and output streams, which
may not end by themselves, are ended as the HTTP child is asked to stop (``on_stop``): their
clients reconnect to the next master instead of holding up the grace period. The JobManager and LogManager are
services (``services``), not children: their requests run in the HTTP handlers' tasks
(and Retention's and the AuditMover's), so they stop with those.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import trio

from actors import ChildSpec, Strategy, Supervisor, run_until_signalled
from cluster.config import Config
from cluster.etcd import Etcd
from cluster.etcd_access import open_cluster_etcd

from .alerts import MasterAlerts, load_alerts_file, unschedulable_hook
from .audit_mover import AuditMover
from .event_feeds import EventFeeds
from .context import Clock, Inboxes, MasterContext, open_mailboxes, wall_ms
from .retention import Retention
from .schedulable_watch import SETTLE_S, OnSchedulableChanged, SchedulableWatch
from .runs import StoreKeeper
from .stats_builder import StatsBuilder
from .server import HTTP_GRACE_S, HttpServer, hypercorn_config
from .services import Services
from .web import create_app, create_metrics_app
from .workers import WorkerManager

__all__ = ["build_tree", "run_master", "total_grace_s"]

log = logging.getLogger("master")

ACTOR_GRACE_S = 5.0
HTTP_CHILD_GRACE_S = 2 * HTTP_GRACE_S + 1.0  # requests' grace, then the lifespan's


def build_tree(ctx: MasterContext, inboxes: Inboxes, etcd: Etcd, services: Services, *,
               serve_http: bool = True,
               on_schedulable_changed: OnSchedulableChanged | None = None,
               schedulable_settle_s: float = SETTLE_S) -> Supervisor:
    """The master's supervisor; without ``serve_http`` (tests) only the actors run.
    ``on_schedulable_changed``: awaited once per job that becomes unschedulable or
    schedulable again (``schedulable_watch``), after the ``unschedulable`` alert is
    queued (``alerts.unschedulable_hook``); ``schedulable_settle_s``: how long such a
    change must hold to be announced (tests shorten it).

    ``services`` must be built on the same ``ctx`` and ``etcd``; an app made apart
    (tests) with the same ``services`` sees the store this tree opens.
    """
    config = ctx.config
    runs = services.runs
    alerts_file = None if config.alerts_file is None else load_alerts_file(config.alerts_file)
    children = [
        ChildSpec("store", lambda: StoreKeeper(runs)),
        ChildSpec("stats", lambda: StatsBuilder(runs)),
        ChildSpec("workers", lambda: WorkerManager(inboxes.workers, ctx, etcd)),
        ChildSpec("schedulable", lambda: SchedulableWatch(
            inboxes.schedulable, ctx, etcd,
            on_change=unschedulable_hook(services.alerts, then=on_schedulable_changed),
            settle_s=schedulable_settle_s, jobs_cache=services.jobs.cache)),
        ChildSpec("retention", lambda: Retention(inboxes.retention, ctx, runs)),
        ChildSpec("audit", lambda: AuditMover(inboxes.audit, ctx, etcd, runs)),
        ChildSpec("alerts", MasterAlerts(services.alerts, ctx, etcd, alerts_file)),
        ChildSpec("events", lambda: EventFeeds(services.events, ctx, etcd, runs)),
    ]
    if serve_http:
        app = create_app(ctx, services)
        api = hypercorn_config(config.api_host, config.api_port,
                               read_timeout_s=config.api_read_timeout_s)
        children.append(ChildSpec("http", lambda: HttpServer(app, api,
                                                             on_stop=services.close_streams),
                                  grace_s=HTTP_CHILD_GRACE_S))
        if config.metrics_port is not None:
            metrics_app = create_metrics_app(ctx)
            scrape = hypercorn_config(config.api_host, config.metrics_port,
                                      read_timeout_s=config.api_read_timeout_s)
            children.append(ChildSpec("metrics-http", lambda: HttpServer(metrics_app, scrape),
                                      grace_s=HTTP_CHILD_GRACE_S))
    return Supervisor(children, name="master", strategy=Strategy.ONE_FOR_ONE,
                      max_restarts=5, max_seconds=30, grace_s=ACTOR_GRACE_S)


def total_grace_s(config: Config) -> float:
    """Covers every child's grace, in the order they stop."""
    http = HTTP_CHILD_GRACE_S * (2 if config.metrics_port is not None else 1)
    return http + 5 * ACTOR_GRACE_S + 5.0


async def run_master(config: Config, *, clock: Clock = wall_ms,
                     on_schedulable_changed: OnSchedulableChanged | None = None,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Run one master until SIGINT/SIGTERM, then shut down gracefully.

    Reports the API's base URL (with the real port when ``api_port`` is 0).
    ``on_schedulable_changed``: see ``build_tree``.
    """
    addresses, inboxes = open_mailboxes(config)
    ctx = MasterContext.create(config, clock=clock)
    async with open_cluster_etcd(config) as etcd:
        root = build_tree(ctx, inboxes, etcd, Services.create(ctx, etcd, addresses.workers),
                          on_schedulable_changed=on_schedulable_changed)
        started = _Announce(task_status)
        report = await run_until_signalled(root, grace_s=total_grace_s(config),
                                           task_status=started)
    log.info("master stopped (%s)", report)


class _Announce:
    """Turns the tree's start-up report into the API's URL for our caller, and logs."""

    def __init__(self, task_status: trio.TaskStatus[str]) -> None:
        self._task_status = task_status

    def started(self, value: object = None) -> None:
        assert isinstance(value, Mapping)
        url = value["http"][0]
        log.info("master serving on %s", url)
        if "metrics-http" in value:
            log.info("metrics also on %s/metrics", value["metrics-http"][0])
        self._task_status.started(url)
