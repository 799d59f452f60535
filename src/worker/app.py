"""The worker's supervision tree, and the function that runs one worker to the end.

Start order is dependency order, and shutdown runs it backwards (DESIGN §2)::

    worker (one_for_one)
    ├── metrics-http GET /metrics and /healthz on 127.0.0.1:<metrics_port>, if set;
    │                up first and down last, so start-up and shutdown can be watched
    ├── log-sink     first actor up, last down: every record is flushed or spilled;
    │                after each batch it applies the alert rule (the run store's outbox)
    ├── alerts       sends alerts from the outbox (cluster.alert_delivery): a store
    │                connection and an HTTP client of its own, apart from scheduling
    ├── live-output  writes what running commands print to the run store every 250 ms
    │                (worker.live_output_flusher; a store connection of its own); stops
    │                after the executor, so the last runs' ends are written too
    ├── registrar    the session lease; revoked on the way down, after the runs end
    ├── executor     drains: running jobs get shutdown_grace_s, then are killed
    └── pipeline (one_for_all: they share the plan and its claims in flight)
        ├── locker
        ├── scheduler    stops firing
        └── job-watcher  stops watching

So a SIGTERM stops new fires first, lets running jobs finish (up to the grace), flushes
their records (a run's ``running`` key goes only once its record is durable), revokes
the lease, then stops the sink. Every grace, and the deadline of the whole stop, come
from one ``ShutdownBudget`` (``worker.shutdown_budget``).

Wiring: each actor is given, by name, the addresses of the actors it sends to, and no
others; ``python -m worker.flow`` draws the resulting flow (DESIGN §0).

Shared state: one ``LiveOutput`` per tree (``worker.live_output``): the Executor's
pipe readers hand it what runs print, the live-output child takes it from there.
One ``SpillRoom`` per tree (``worker.spill_room``), changed by the LogSink
alone, read by the Locker (no new claim while the spill is full), the Registrar (the
registration's ``problems``) and ``/healthz``; it outlives every incarnation. One
``ClaimLead`` (``worker.claim_lead``): the Locker and the Executor note how long fires
took from hand-over to their start mark, the Scheduler hands fires over that far ahead.

Metrics: every actor factory below passes its new incarnation to that actor's
``metrics.<actor>.track`` (see ``worker.metrics``), which reads its statistics at scrape
time; the metrics server renders them.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import signal
import socket

import trio

from actors import ChildSpec, Strategy, Supervisor, run_until_signalled, unless_signalled
from cluster.alert_delivery import AlertMetrics, AlertService, EtcdAlertSource
from cluster.config import Config
from cluster.backoff import Backoff
from cluster.etcd import Etcd, EtcdUnavailable
from cluster.etcd_access import open_cluster_etcd
from cluster.keyspace import Keyspace
from cluster.shard_settings import ShardSettings, local_shards, shards_at_start

from . import chains, claims
from .claim_lead import ClaimLead
from .clock import SystemClock, WallClock
from .context import WorkerContext
from .mailboxes import Inboxes, open_mailboxes
from .executor.actor import Executor
from .executor.run_as import JobUsers
from .executor.start_marks import StartMarks
from .job_watcher.actor import JobWatcher
from .locker.actor import Locker
from .log_sink.actor import LogSink
from .log_sink.store_writer import store_settings
from .live_output import LiveOutput
from .run_load import RunLoad
from .live_output_flusher import LiveOutputFlusher, LiveOutputMetrics
from .metrics import WorkerMetrics
from .metrics_http import MetricsServer
from .registrar.actor import Registrar
from .scheduler.actor import Scheduler
from .shards import ShardMetrics, ShardState
from .shutdown_budget import ShutdownBudget
from .spill_room import SpillRoom

log = logging.getLogger("worker")


def default_worker_id() -> str:
    """Unique per process: two workers on one host never collide (the seed keyed by IP)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def build_tree(ctx: WorkerContext, inboxes: Inboxes, etcd: Etcd,
               users: JobUsers | None = None, shards: ShardSettings | None = None,
               ) -> Supervisor:
    """``shards``: the cluster's settings as read at start-up; None: shards off."""
    config = ctx.config
    metrics = WorkerMetrics()
    budget = ShutdownBudget.from_config(config)
    room = SpillRoom()  # the LogSink changes it; the Locker, /healthz, the Registrar read it
    # The Locker and the Executor feed it; the capacity bounds what it holds ahead.
    lead = ClaimLead(ctx.clock, config.claim_lead_s, config.capacity)
    release_guard = functools.partial(claims.release_guard, etcd, ctx.keyspace)
    release_running = functools.partial(claims.release_running, etcd, ctx.keyspace, ctx.worker_id)
    end_mark = functools.partial(chains.mark_ended, etcd, ctx.keyspace, ctx.worker_id,
                                 ctx.clock.now_ms)
    alert_source = EtcdAlertSource(etcd, ctx.keyspace)
    alerts = AlertService(alert_source, config.db, ctx.worker_id,
                          settings=store_settings(config.db_timeout_s))
    metrics.registry.register(AlertMetrics("scheduler_worker", alerts.statistics))
    # Which jobs this worker serves (worker.shards): the JobWatcher writes it, the
    # Locker and the Registrar read it. Inert with shards off.
    shard_state = ShardState(ctx.worker_id, config.labels, shards)
    metrics.registry.register(ShardMetrics(shard_state.statistics))
    live = LiveOutput(ctx.clock)  # the Executor's runs print into it, the flusher empties it
    load = RunLoad()  # the Executor counts its runs, the Locker reads the count
    metrics.registry.register(LiveOutputMetrics("scheduler_worker", live.statistics))

    pipeline = Supervisor(
        [
            ChildSpec("locker", lambda: metrics.locker.track(Locker(
                inboxes.locker, ctx, etcd, scheduler=inboxes.scheduler.address,
                executor=inboxes.executor.address, room=room, lead=lead,
                shards=shard_state, load=load))),
            ChildSpec("scheduler", lambda: metrics.scheduler.track(
                Scheduler(inboxes.scheduler, ctx, locker=inboxes.locker.address,
                          executor=inboxes.executor.address,
                          log_sink=inboxes.log_sink.address, lead=lead))),
            ChildSpec("job-watcher", lambda: metrics.job_watcher.track(
                JobWatcher(inboxes.job_watcher, ctx, etcd,
                           scheduler=inboxes.scheduler.address,
                           executor=inboxes.executor.address, locker=inboxes.locker.address,
                           shards=shard_state))),
        ],
        name="pipeline", strategy=Strategy.ONE_FOR_ALL, grace_s=budget.pipeline_child_grace_s,
    )
    children = [
        ChildSpec("log-sink", lambda: metrics.log_sink.track(
            LogSink(inboxes.log_sink, ctx, on_durable=release_running, budget=budget.log_sink,
                    room=room, alert_repeat_s=lambda: alert_source.repeat_s)),
                  grace_s=budget.log_sink.grace_s),
        # Sends alerts from the run store's outbox: a child of its own, with its own
        # store connection and HTTP client, so that no send touches scheduling.
        ChildSpec("alerts", alerts, grace_s=budget.alerts_grace_s),
        ChildSpec("live-output", lambda: LiveOutputFlusher(
            live, config.db, ctx.clock, settings=store_settings(config.db_timeout_s)),
                  grace_s=budget.live_output_grace_s),
        ChildSpec("registrar", lambda: metrics.registrar.track(
            Registrar(inboxes.registrar, ctx, etcd, log_sink=inboxes.log_sink.address,
                      executor=inboxes.executor.address, locker=inboxes.locker.address,
                      budget=budget.registrar, problems=room.problems,
                      serving=shard_state.serving,
                      serving_changed=shard_state.wait_changed if shards else None)),
                  grace_s=budget.registrar.grace_s),
        ChildSpec("executor", lambda: metrics.executor.track(Executor(
            inboxes.executor, ctx, scheduler=inboxes.scheduler.address,
            log_sink=inboxes.log_sink.address, release=release_guard,
            marks=StartMarks(etcd, ctx.keyspace, ctx.worker_id, ctx.clock,
                             size=config.mailbox_size), users=users, budget=budget.executor,
            end_mark=end_mark, lead=lead, live=live, load=load)),
                  grace_s=budget.executor.grace_s),
        ChildSpec("pipeline", pipeline, grace_s=budget.pipeline_grace_s),
    ]
    port = config.metrics_port
    if port is not None:
        children.insert(0, ChildSpec("metrics-http", lambda: MetricsServer(
            metrics.render, port, max_connections=config.metrics_max_connections,
            health=room.problems),
            grace_s=budget.metrics_grace_s))
    return Supervisor(children, name="worker", strategy=Strategy.ONE_FOR_ONE,
                      max_restarts=5, max_seconds=30)


async def run_worker(
    config: Config,
    *,
    clock: WallClock | None = None,
    users: JobUsers | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one worker until SIGINT/SIGTERM, then shut down gracefully.

    ``users``: who jobs run as (``run_as``); by default checked here from ``config``
    (raises ``RunAsError``; ``python -m worker`` checks first, to exit 2).
    """
    if users is None:
        users = JobUsers.from_config(config)
    if users.warning is not None:
        log.warning("%s", users.warning)  # once per worker: the policy is built once
    worker_id = config.worker_id or default_worker_id()
    _, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, worker_id, Keyspace(config.prefix), clock or SystemClock())
    async with open_cluster_etcd(config) as etcd:
        shards, signum = await unless_signalled(functools.partial(_shards_at_start, etcd, ctx))
        if signum is not None:  # etcd never answered: there is nothing to stop yet
            log.info("worker %s stopped before it started (%s)", worker_id,
                     signal.Signals(signum).name)
            return
        root = build_tree(ctx, inboxes, etcd, users, shards)
        started = _Announce(worker_id, task_status)
        budget = ShutdownBudget.from_config(config)
        report = await run_until_signalled(root, grace_s=budget.total_s, task_status=started)
    if report.forced:  # said at WARNING: what it cut is otherwise silent
        log.warning("worker %s stopped at once (%s): a second signal, or the shutdown "
                    "budget (%.1f s) running out, cut its graceful stop short; runs it "
                    "held or ran may have no record, their running keys and its session "
                    "lease go when the lease expires", worker_id, report, budget.total_s)
    else:
        log.info("worker %s stopped (%s)", worker_id, report)


async def _shards_at_start(etcd: Etcd, ctx: WorkerContext) -> ShardSettings | None:
    """The cluster's shard settings (``cluster.shard_settings``), waiting for etcd as
    the actors do; a conflict with this worker's own raises ``ShardSettingsError``
    (``python -m worker`` checked it before, to exit 2 with one line)."""
    local = local_shards(ctx.config.shard_slots, ctx.config.shard_replicas)
    backoff = Backoff(0.1, 2.0)
    while True:
        try:
            shards = await shards_at_start(etcd, ctx.keyspace, local)
        except EtcdUnavailable as exc:
            log.warning("reading the cluster's shard settings: %s; retrying", exc)
            await trio.sleep(backoff.failed())
            continue
        if shards is not None:
            log.info("shards on: %s (this worker plans only the jobs it serves)", shards)
        return shards


class _Announce:
    """Turns the tree's start-up report into the worker id for our caller, and a log line."""

    def __init__(self, worker_id: str, task_status: trio.TaskStatus[str]) -> None:
        self._worker_id = worker_id
        self._task_status = task_status

    def started(self, value: object = None) -> None:
        log.info("worker %s running", self._worker_id)
        self._task_status.started(self._worker_id)
