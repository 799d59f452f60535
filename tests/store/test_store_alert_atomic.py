"""A batch of run records and its alert decisions are one transaction, on both backends:
a writer that dies after its records were written, before its decisions were, leaves
neither durable; whoever writes the records next (the writer's retry, a survivor's
``lost`` record) decides each alert once, and a replay decides nothing again.

The death is real as far as the server can tell: the writer's transaction hangs on a
statement that runs only once the batch's rows are in it, and is cancelled there (its
connection dropped, or its SQLite statement interrupted), as a SIGKILLed worker's is.
"""

from __future__ import annotations

import trio

from cluster.store import RunStore

from store_testkit import T0, run

M = 60_000
# Statements that hang only once run ``?`` is in job_log, as the transaction sees it:
# the writer dies after the record write, never before it.
_HANG_AFTER_RECORD = {
    "mysql": "SELECT SLEEP(3) FROM job_log WHERE run_id = %s",
    "sqlite": ("WITH RECURSIVE c(x) AS (SELECT 1 FROM job_log WHERE run_id = ? "
               "UNION ALL SELECT x + 1 FROM c LIMIT 1000000000) SELECT count(*) FROM c"),
}


class DiesAfterRecords:
    """The store's backend, for a writer that dies inside its next transaction right
    after the batch's rows were written (before the outbox rows): ``died`` once
    cancelled there."""

    def __init__(self, backend, run_id: str) -> None:
        self._backend = backend
        self._hang = (_HANG_AFTER_RECORD[backend.dialect.name], [run_id])
        self.batches: list[int] = []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    async def transaction(self, guards, batch, then):
        self.batches.append(len(batch[1]) if batch else 0)
        return await self._backend.transaction(guards, batch, [self._hang, *then])


def failing(i: int, status: str = "failed"):
    return run(i, job_name="job-x", status=status, exit_code=1, end_time=T0 + i * M)


def fixed(i: int):
    return run(i, job_name="job-x", end_time=T0 + i * M)


async def die_writing(store, batch, run_id: str) -> DiesAfterRecords:
    dying = DiesAfterRecords(store._backend, run_id)
    with trio.move_on_after(1.0) as scope:
        await RunStore(dying).write_batch(batch, repeat_s=60)
    assert scope.cancelled_caught and dying.batches == [len(batch)]
    return dying


async def test_a_writer_that_dies_after_its_records_leaves_neither_and_its_retry_alerts_once(
        store):
    assert await store.write_batch([failing(0)], repeat_s=60) == 1  # the job is failing
    batch = [failing(1), fixed(2)]  # a failure due again (repeat 60 s), then the fix
    await die_writing(store, batch, "run-00001")

    assert [await store.get(r.run_id) for r in batch] == [None, None]  # not durable...
    assert [r["event_id"] for r in await store.alerts.rows()] == ["run-00000:failed"]
    assert (await store.alerts.state("job-x")).failures == 1  # ...nor decided

    assert await store.write_batch(batch, repeat_s=60) == 2  # the LogSink's retry
    assert await store.write_batch(batch, repeat_s=60) == 0  # a replay: nothing twice
    assert await store.alerts.observe(batch, repeat_s=60) == 0
    assert [(await store.get(r.run_id)).status.value for r in batch] == ["failed", "succeeded"]
    rows = await store.alerts.rows()
    assert [r["event_id"] for r in rows] == [
        "run-00000:failed", "run-00001:failed", "run-00002:recovered"]
    state = await store.alerts.state("job-x")
    assert not state.failing and state.last_run_id == "run-00002"


async def test_a_writer_that_never_comes_back_is_heard_of_through_the_survivors_lost_record(
        store):
    """Its records never became durable, so the survivor's ``lost`` record is the run's
    record (it replaces nothing) and alerts, once, whoever writes it again."""
    await die_writing(store, [failing(1)], "run-00001")
    lost = failing(1, status="lost")
    assert await store.write_batch([lost], repeat_s=60) == 1
    assert await store.write_batch([lost], repeat_s=60) == 0  # a second survivor
    assert (await store.get("run-00001")).status.value == "lost"
    assert [(r["event_id"], r["kind"]) for r in await store.alerts.rows()] == [
        ("run-00001:lost", "lost")]


async def test_a_healthy_batch_is_written_without_a_transaction_or_a_state_row(store):
    backend = DiesAfterRecords(store._backend, "run-00001")
    assert await RunStore(backend).write_batch([fixed(1), fixed(2)], repeat_s=60) == 0
    assert backend.batches == []  # the plain multi-row write: no compare-and-set needed
    assert await store.get("run-00002") is not None
    assert await store.alerts.state("job-x") is None
