"""The alert state and outbox in the run store, on both backends: the flapping rule is
applied once per record whoever writes it, and a claimed row is leased."""

from __future__ import annotations

import pytest
import trio

from cluster.store import AlertOutbox, StoreUnavailable
from cluster.alerts import AlertEvent, AlertKind

from store_testkit import T0, run

M = 60_000


def failing(i: int, job: str = "job-x", status: str = "failed", **kw):
    return run(i, job_name=job, status=status, exit_code=1, end_time=T0 + i * M, **kw)


async def test_a_failing_job_raises_one_event_then_one_per_repeat_then_recovered(store):
    records = [failing(i) for i in range(0, 130)]  # one failure a minute for 2 h 10 min
    for i in range(0, 130, 10):
        await store.write_batch(records[i:i + 10])
        assert await store.alerts.observe(records[i:i + 10], repeat_s=3600) >= 0
    ok = run(200, job_name="job-x", end_time=T0 + 200 * M)
    await store.alerts.observe([ok], repeat_s=3600)
    rows = await store.alerts.rows("job-x")
    assert [(r["kind"], r["channel"]) for r in rows] == [
        ("failed", ""), ("failed", ""), ("failed", ""), ("recovered", "")]
    assert rows[0]["event_id"] == "run-00000:failed"
    assert [r["event_id"] for r in rows[1:]] == [
        "run-00060:failed", "run-00120:failed", "run-00200:recovered"]


async def test_two_writers_of_the_same_records_raise_each_event_once(store):
    records = [failing(i) for i in range(5)] + [run(9, job_name="job-x", end_time=T0 + 9 * M)]

    async def writer():
        for r in records:
            await store.alerts.observe([r], repeat_s=3600)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        nursery.start_soon(writer)
    await store.alerts.observe(records, repeat_s=3600)  # a replay: nothing new
    rows = await store.alerts.rows("job-x")
    assert [r["kind"] for r in rows] == ["failed", "recovered"]


async def test_healthy_batches_write_no_state(store):
    assert await store.alerts.observe([run(i) for i in range(20)], repeat_s=3600) == 0
    assert await store.alerts.state("job-0") is None


async def test_replaced_runs_raise_nothing_and_clear_nothing(store):
    await store.alerts.observe([failing(i, status="replaced") for i in range(5)],
                               repeat_s=0)
    assert await store.alerts.state("job-x") is None  # not even a state row
    await store.alerts.observe([failing(10), failing(11, status="replaced")], repeat_s=0)
    state = await store.alerts.state("job-x")
    assert state.failing and state.failures == 1
    assert [r["kind"] for r in await store.alerts.rows("job-x")] == ["failed"]


async def test_a_claim_is_leased_and_comes_back_after_its_lease(store):
    await store.alerts.observe([failing(1)], repeat_s=3600)
    now = T0 + 10 * M
    first = await store.alerts.claim_due("w1", now, lease_ms=60_000)
    assert [d.event.kind.value for d in first] == ["failed"]
    assert await store.alerts.claim_due("w2", now + 1000, lease_ms=60_000) == []
    again = await store.alerts.claim_due("w2", now + 61_000, lease_ms=60_000)
    assert [d.delivery_id for d in again] == [first[0].delivery_id]
    await store.alerts.resolve(again[0], ["ops", "mail"], now + 61_000)
    await store.alerts.resolve(first[0], ["ops", "mail"], now + 61_000)  # late: no effect
    per_channel = await store.alerts.claim_due("w1", now + 62_000, lease_ms=60_000)
    assert sorted(d.channel for d in per_channel) == ["mail", "ops"]
    ops = next(d for d in per_channel if d.channel == "ops")
    mail = next(d for d in per_channel if d.channel == "mail")
    await store.alerts.mark_sent(ops, now + 63_000)
    assert await store.alerts.mark_failed(mail, now + 63_000, 5_000, "refused")
    assert await store.alerts.claim_due("w1", now + 64_000, lease_ms=60_000) == []
    retry = await store.alerts.claim_due("w1", now + 69_000, lease_ms=60_000)
    assert [(d.channel, d.attempts) for d in retry] == [("mail", 1)]
    counts = await store.alerts.counts()
    assert counts[("ops", "sent")] == 1 and counts[("", "resolved")] == 1
    assert counts[("mail", "pending")] == 1


async def test_an_undelivered_row_expires_after_24_hours(store):
    await store.alerts.observe([failing(1)], repeat_s=3600)
    [d] = await store.alerts.claim_due("w1", T0 + 2 * M, lease_ms=60_000)
    await store.alerts.resolve(d, ["ops"], T0 + 2 * M)
    [d] = await store.alerts.claim_due("w1", T0 + 3 * M, lease_ms=60_000)
    assert not await store.alerts.mark_failed(d, T0 + 24 * 60 * M, 3_600_000, "down")
    assert (await store.alerts.counts())[("ops", "expired")] == 1


async def test_recovered_is_raised_by_a_success_in_the_same_batch_as_the_last_failure(store):
    # Regression: the batch's state of the job was forgotten after the failure, so the
    # success right after it looked like one of a healthy job.
    batch = [failing(1), failing(2), run(3, job_name="job-x", end_time=T0 + 3 * M)]
    await store.alerts.observe(batch, repeat_s=3600)
    rows = await store.alerts.rows("job-x")
    assert [r["event_id"] for r in rows] == ["run-00001:failed", "run-00003:recovered"]


class RivalWriter:
    """The store's backend, beside a writer of the same job's records that wins the
    next ``wins`` compare-and-sets: it moves the job's state just before each of ours."""

    def __init__(self, backend, wins: int) -> None:
        self._backend = backend
        self.wins = wins

    def __getattr__(self, name):
        return getattr(self._backend, name)

    async def transaction(self, guards, batch, then):
        if self.wins > 0:
            self.wins -= 1
            await self._backend.execute("UPDATE alert_state SET version = version + 1")
        return await self._backend.transaction(guards, batch, then)


async def test_a_record_whose_compare_and_set_keeps_losing_fails_its_batch_and_is_decided_again(
        store):
    """Every failure alerts here (one a minute, repeat 60 s). A rival that wins a few
    compare-and-sets only makes the rule decide again; one that keeps winning fails
    the batch with a retryable error (the LogSink writes and observes it again later),
    where the rule used to give the record up after 8 tries: an alert due, never sent."""
    await store.alerts.observe([failing(0)], repeat_s=60)
    rival = RivalWriter(store.alerts._backend, wins=3)
    outbox = AlertOutbox(rival)
    assert await outbox.observe([failing(1)], repeat_s=60) == 1
    assert rival.wins == 0
    rival.wins = 1000
    with pytest.raises(StoreUnavailable, match="job-x"):
        await outbox.observe([failing(2), failing(3)], repeat_s=60)
    rival.wins = 0
    assert await outbox.observe([failing(2), failing(3)], repeat_s=60) == 2  # the retry
    assert await outbox.observe([failing(2), failing(3)], repeat_s=60) == 0  # once only
    rows = await store.alerts.rows("job-x")
    assert [r["event_id"] for r in rows] == [f"run-0000{i}:failed" for i in range(4)]
    assert (await store.alerts.state("job-x")).failures == 4


async def test_claims_go_one_at_a_time_per_job_and_channel_in_event_time_across_retries(
        store):
    """A row is handed out only when it is the first pending one of its job and channel
    (an unresolved earlier event counts for every channel): in flight, or failed and
    due again later, it holds the later ones back; other channels and jobs go on."""
    out = store.alerts
    await out.observe([failing(1), run(2, job_name="job-x", end_time=T0 + 2 * M),
                       failing(3, job="job-y")], repeat_s=3600)
    now = T0 + 10 * M
    unresolved = {d.event.event_id: d for d in await out.claim_due("w1", now, 60_000)}
    assert sorted(unresolved) == ["run-00001:failed", "run-00002:recovered",
                                  "run-00003:failed"]  # resolving sends nothing: no wait
    await out.resolve(unresolved["run-00002:recovered"], ["ops", "mail"], now)
    await out.resolve(unresolved["run-00003:failed"], ["ops"], now)

    def names(claimed):
        return sorted(d.delivery_id for d in claimed)

    # job-x's recovered waits for its failure, not yet resolved; job-y goes.
    assert names(await out.claim_due("w1", now + 1, 60_000)) == ["run-00003:failed>ops"]
    await out.resolve(unresolved["run-00001:failed"], ["ops", "mail"], now + 2)
    first = {d.channel: d for d in await out.claim_due("w1", now + 3, 60_000)}
    assert names(first.values()) == ["run-00001:failed>mail", "run-00001:failed>ops"]
    assert await out.claim_due("w2", now + 4, 60_000) == []  # in flight: the rest wait
    await out.mark_sent(first["mail"], now + 5)
    assert await out.mark_failed(first["ops"], now + 5, 5_000, "refused")
    assert names(await out.claim_due("w1", now + 6, 60_000)) == ["run-00002:recovered>mail"]
    assert await out.claim_due("w1", now + 7, 60_000) == []  # ops: its failure's retry first
    [retry] = await out.claim_due("w1", now + 5_006, 60_000)
    assert (retry.delivery_id, retry.attempts) == ("run-00001:failed>ops", 1)
    await out.mark_sent(retry, now + 5_007)
    assert names(await out.claim_due("w1", now + 5_008, 60_000)) == ["run-00002:recovered>ops"]


async def test_recent_events_lists_each_event_once_whatever_its_channels(store):
    # What the master's event stream polls (master.event_feeds): one row per event.
    await store.alerts.enqueue(AlertEvent("old", AlertKind.FAILED, "a", T0 - 10_000))
    await store.alerts.enqueue(AlertEvent("e1", AlertKind.FAILED, "a", T0))
    await store.alerts.enqueue_for(AlertEvent("e2", AlertKind.TEST, "b", T0 + 1), "ops")
    await store.alerts.enqueue_for(AlertEvent("e2", AlertKind.TEST, "b", T0 + 1), "pager")
    assert await store.alerts.recent_events(T0, 10) == [("e1", "failed", "a", T0),
                                                       ("e2", "test", "b", T0 + 1)]
    assert await store.alerts.recent_events(T0, 1) == [("e1", "failed", "a", T0)]
