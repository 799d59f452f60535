"""The alert state and outbox in the run store, on both backends: the flapping rule is
applied once per record whoever writes it, and a claimed row is leased."""

from __future__ import annotations

import trio

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


async def test_recent_events_lists_each_event_once_whatever_its_channels(store):
    # What the master's event stream polls (master.event_feeds): one row per event.
    await store.alerts.enqueue(AlertEvent("old", AlertKind.FAILED, "a", T0 - 10_000))
    await store.alerts.enqueue(AlertEvent("e1", AlertKind.FAILED, "a", T0))
    await store.alerts.enqueue_for(AlertEvent("e2", AlertKind.TEST, "b", T0 + 1), "ops")
    await store.alerts.enqueue_for(AlertEvent("e2", AlertKind.TEST, "b", T0 + 1), "pager")
    assert await store.alerts.recent_events(T0, 10) == [("e1", "failed", "a", T0),
                                                       ("e2", "test", "b", T0 + 1)]
    assert await store.alerts.recent_events(T0, 1) == [("e1", "failed", "a", T0)]
