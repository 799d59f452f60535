"""The LogSink decides alerts with the records (issue 12), on MariaDB: a write cut off
after its records reached the server leaves nothing behind, the batch is written and
decided again, each alert once, and no record is reported durable (its running key
released) before its alert is decided."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from cluster.store import RunRecord, RunStore, StoreQueryError, open_store
from log_sink_testkit import FakeStore, T0, running_sink, sink_config, wait_until


def outcome(i: int, status: str) -> RunRecord:
    return RunRecord(
        run_id=f"run-{i}", job_name="flaky", worker="w1", command="exit 3", output="why\n",
        err="", exit_code=0 if status == "succeeded" else 3, status=status,
        trigger="schedule", attempt=1, plan_time=T0 + i * 60_000,
        schedule_time=T0 + i * 60_000, start_time=T0 + i * 60_000 + 1,
        end_time=T0 + i * 60_000 + 2)


class CutOffOnce:
    """A backend whose first transaction outlives the store's call timeout once the
    batch's rows are in it: the sink's call gives up, the server rolls it back."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.cut = 0
        self.stored_after_cut: int | None = None

    def __getattr__(self, name):
        return getattr(self._backend, name)

    async def transaction(self, guards, batch, then):
        if self.cut or batch is None:
            return await self._backend.transaction(guards, batch, then)
        self.cut += 1
        hang = ("SELECT SLEEP(3) FROM job_log WHERE run_id = %s", ["run-1"])
        try:
            return await self._backend.transaction(guards, batch, [hang, *then])
        finally:  # what a reader sees while the sink backs off (or had it died here)
            self.stored_after_cut = (await self._backend.fetch(
                "SELECT COUNT(*) FROM job_log"))[0][0]


async def test_a_write_cut_off_after_its_records_is_decided_again_once(mysql_url, tmp_path):
    backends: list[CutOffOnce] = []

    @asynccontextmanager
    async def opener(target, settings):
        async with open_store(target, settings) as store:
            backends.append(CutOffOnce(store._backend))
            yield RunStore(backends[-1])

    decided_when_durable: list[tuple[list[str], list[str]]] = []

    async def on_durable(records) -> None:  # the worker releases the running keys here
        async with open_store(mysql_url) as reader:
            decided_when_durable.append(([r.run_id for r in records],
                                         [r["event_id"] for r in await reader.alerts.rows()]))

    batch = [outcome(1, "failed"), outcome(2, "failed"), outcome(3, "succeeded")]
    cfg = sink_config(tmp_path, db_url=mysql_url, db_timeout_s=1.0, job_log_batch_size=3)
    async with running_sink(cfg, opener=opener, on_durable=on_durable,
                            alert_repeat_s=lambda: 3600.0) as h:
        await h.write_all(batch)
        await wait_until(lambda: h.stats().written_total == 3 and decided_when_durable)
        stats = h.stats()
    assert backends[0].cut == 1 and stats.last_error and "no answer" in stats.last_error
    assert backends[0].stored_after_cut == 0  # the records were not durable undecided
    assert stats.written_total == 3 and stats.batches == 1 and stats.spilled_total == 0
    events = ["run-1:failed", "run-3:recovered"]  # run 2: within repeat_s of run 1
    assert decided_when_durable == [(["run-1", "run-2", "run-3"], events)]
    async with open_store(mysql_url) as store:
        assert [r["event_id"] for r in await store.alerts.rows()] == events
        assert await store.write_batch(batch, repeat_s=3600) == 0  # a replay
        assert [r["event_id"] for r in await store.alerts.rows()] == events
        assert await store.count(job_name="flaky") == 3


class OutboxRefuses(FakeStore):
    """A store whose alert side refuses run-2's event for good (its row is fine)."""

    def __init__(self) -> None:
        super().__init__()
        self.decided: list[str] = []

    async def write_batch(self, recs, *, repeat_s=None) -> None:
        if repeat_s is not None and any(r.run_id == "run-2" for r in recs):
            raise StoreQueryError("fake", "the outbox refuses run-2's event")
        await super().write_batch(recs)
        if repeat_s is not None:
            self.decided += [r.run_id for r in recs]


async def test_a_record_whose_alert_can_never_be_decided_is_still_written(tmp_path, caplog):
    """Alerts never cost a record: the row that fails alone with the rule on is written
    without it, said at ERROR; its neighbours keep theirs."""
    store = OutboxRefuses()
    batch = [outcome(i, "failed") for i in range(1, 5)]
    cfg = sink_config(tmp_path, job_log_batch_size=4)
    with caplog.at_level(logging.ERROR, logger="worker.log_sink.store_writer"):
        async with running_sink(cfg, opener=store.opener(),
                                alert_repeat_s=lambda: 3600.0) as h:
            await h.write_all(batch)
            await h.flush()
            rejected = h.rejected_lines()
    assert sorted(store.rows) == ["run-1", "run-2", "run-3", "run-4"] and rejected == []
    assert sorted(store.decided) == ["run-1", "run-3", "run-4"]
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert said == ["run run-2 of job 'flaky' written without its alert decision: "
                    "StoreQueryError: run store fake rejected a statement: "
                    "the outbox refuses run-2's event"]
