"""The worker's shutdown budget: parts add up to the deadline the worker is stopped under."""

from __future__ import annotations

import dataclasses
import logging
import math
import signal

import pytest

from actors import ShutdownReport, Supervisor
from cluster.config import Config
from worker import app
from worker.shutdown_budget import (
    ExecutorBudget,
    LogSinkBudget,
    RegistrarBudget,
    ShutdownBudget,
)


def test_the_default_budget_is_the_sum_of_the_children_graces() -> None:
    budget = ShutdownBudget.from_config(Config())
    assert budget.children_grace_s() == {
        "metrics-http": 1.0, "alerts": 1.0, "log-sink": 30.0, "registrar": 5.0,
        "executor": 40.0, "pipeline": 5.0, "live-output": 2.5}
    assert budget.total_s == 84.5


def test_the_executor_grace_follows_the_config() -> None:
    config = dataclasses.replace(Config(), shutdown_grace_s=7.0, kill_grace_s=0.5)
    budget = ShutdownBudget.from_config(config)
    assert (budget.executor.jobs_s, budget.executor.kill_s) == (7.0, 0.5)
    assert budget.executor.grace_s == 7.0 + 0.5 + budget.executor.pipe_drain_s + 2.0 + 1.0
    assert budget.total_s == 5.0 + budget.executor.grace_s + 5.0 + 30.0 + 1.0 + 1.0 + 2.5


def test_each_actors_stop_timeouts_fit_its_grace() -> None:
    sink, registrar = LogSinkBudget(), RegistrarBudget()
    assert sink.store_drain_s + sink.durable_s < sink.grace_s  # time is left to spill
    assert registrar.flush_s + registrar.revoke_s == registrar.grace_s


def test_a_total_that_is_not_the_sum_of_its_parts_is_refused() -> None:
    budget = ShutdownBudget.from_config(Config())
    with pytest.raises(ValueError, match="not the sum of its children's graces"):
        dataclasses.replace(budget, total_s=budget.total_s - 1)
    with pytest.raises(ValueError, match="not the sum"):
        dataclasses.replace(budget, log_sink=LogSinkBudget(store_drain_s=20.0))


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_a_part_that_is_not_a_finite_duration_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"RegistrarBudget.flush_s must be >= 0 s"):
        RegistrarBudget(flush_s=value)
    with pytest.raises(ValueError, match=r"ExecutorBudget.jobs_s must be >= 0 s"):
        ExecutorBudget(jobs_s=value, kill_s=1.0)


def _graces(root: Supervisor) -> dict[str, float | None]:
    return {spec.name: spec.grace_s for spec in root._specs}  # noqa: SLF001 (the wiring under test)


async def test_the_tree_gives_each_child_its_budgeted_grace(etcd_endpoint) -> None:
    config = dataclasses.replace(Config(), metrics_port=0, shutdown_grace_s=3.0,
                                 etcd_endpoints=(etcd_endpoint,))
    addresses, inboxes = app.open_mailboxes(config)
    ctx = app.WorkerContext(config, "w1", app.Keyspace("/budget/"), app.SystemClock())
    budget = ShutdownBudget.from_config(config)
    async with app.open_cluster_etcd(config) as etcd:
        root = app.build_tree(ctx, inboxes, etcd)
    graces = _graces(root)
    assert graces == budget.children_grace_s()
    assert sum(g for g in graces.values() if g is not None) == budget.total_s
    pipeline = next(spec.child for spec in root._specs if spec.name == "pipeline")  # noqa: SLF001
    assert isinstance(pipeline, Supervisor)
    assert pipeline._grace_s * 3 == budget.pipeline_grace_s  # noqa: SLF001


async def test_the_worker_is_stopped_under_the_budgets_total(etcd_endpoint, monkeypatch) -> None:
    config = dataclasses.replace(Config(), kill_grace_s=2.0, etcd_endpoints=(etcd_endpoint,))
    given: list[float] = []

    async def fake_run_until_signalled(root, *, grace_s, task_status) -> ShutdownReport:
        given.append(grace_s)
        return ShutdownReport(signal=None, forced=False)

    monkeypatch.setattr(app, "run_until_signalled", fake_run_until_signalled)
    await app.run_worker(config)
    assert given == [ShutdownBudget.from_config(config).total_s]
    assert given[0] == sum(ShutdownBudget.from_config(config).children_grace_s().values())


@pytest.mark.parametrize("forced", [False, True])
async def test_a_forced_stop_is_said_at_warning(etcd_endpoint, monkeypatch, caplog,
                                                forced) -> None:
    """A stop cut short (a second SIGTERM, the budget's end) leaves runs without a record
    and the session lease to expire: the worker says so at WARNING, the level benchmark
    fleets log at; a graceful stop stays at INFO."""
    config = dataclasses.replace(Config(), etcd_endpoints=(etcd_endpoint,))

    async def fake_run_until_signalled(root, *, grace_s, task_status) -> ShutdownReport:
        return ShutdownReport(signal=signal.SIGTERM, forced=forced)

    monkeypatch.setattr(app, "run_until_signalled", fake_run_until_signalled)
    with caplog.at_level(logging.INFO, logger="worker"):
        await app.run_worker(config)
    stopped = [r for r in caplog.records if " stopped " in r.getMessage()]
    assert len(stopped) == 1
    assert stopped[0].levelno == (logging.WARNING if forced else logging.INFO)
    assert ("stopped at once" in stopped[0].getMessage()) is forced
