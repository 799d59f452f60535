"""Delivery is ordered per job and channel by event time, on the real MariaDB: a
receiver never gets a job's ``recovered`` before the failure it ends, even when both
were decided in one batch, or when the failure's first attempt failed; and another
job's events do not wait for them.

The CI failure of the e2e alert test on 6 Dec (``ci1``, the whole suite on a loaded
2-core machine) was this: the job's last failure alerted (its ``repeat_s`` had just
passed) and its first success came a second later, so both events were due in one
round, the deliverer sent the round's rows at once, and the receiver took
``recovered`` first, ``failed`` last. A pager that opens on failed and closes on
recovered was left open. Here the receiver holds the failure up to ``HOLD_S`` for the
recovered to arrive beside it, as CI's did by chance: it never does.
"""

from __future__ import annotations

import threading
import time

import httpx
import trio

from cluster.alert_delivery import Deliverer, Senders
from cluster.alerts import AlertSettings, parse_channel, parse_policy
from cluster.store import RunRecord, open_store

from alert_receivers import WebhookReceiver

HOLD_S = 2.0
REPEAT_S = 4


class Source:
    """Channels, settings and every job's policy as etcd would give them."""

    def __init__(self, url: str) -> None:
        self._channels = {"hook": parse_channel("hook", {"type": "webhook", "url": url,
                                                         "secret": "k"})}
        self._settings = AlertSettings(repeat_s=REPEAT_S, public_url="http://ui.test/")

    async def settings(self):
        return self._settings

    async def channels(self):
        return self._channels

    async def job_policy(self, job):
        return parse_policy({"on": ["failed", "recovered"], "channels": ["hook"]})


def record(i: int, status: str, end_ms: int, job: str = "flaky") -> RunRecord:
    return RunRecord(run_id=f"{job}-{i}", job_name=job, worker="a1", command="exit 3",
                     output="going\n", err="", exit_code=0 if status == "succeeded" else 3,
                     status=status, trigger="schedule", attempt=1, plan_time=end_ms - 20,
                     schedule_time=end_ms - 20, start_time=end_ms - 15, end_time=end_ms)


async def deliver_until(deliverer: Deliverer, outbox, hook: WebhookReceiver, n: int) -> None:
    with trio.fail_after(20):
        while len(hook.events) < n:
            await deliverer.round(outbox)
            await trio.sleep(0.02)


def t0() -> int:
    return int(time.time() * 1000) - 60_000


async def test_a_failure_and_the_recovery_decided_in_one_batch_arrive_in_order(mysql_url):
    recovered_came = threading.Event()
    held_in_vain: list[str] = []

    def taken(event: dict) -> None:  # in the receiver's request thread
        if event["id"] == "flaky-10:recovered":
            recovered_came.set()
        elif event["id"] == "flaky-9:failed" and not recovered_came.wait(HOLD_S):
            held_in_vain.append(event["id"])  # recovered was not sent beside it

    hook = WebhookReceiver(secret="k", before_taking=taken).start()
    start = t0()
    # One failure a second: run 1 alerts, then run 5 (REPEAT_S after it), then run 9
    # (REPEAT_S after run 5), the last failure; run 10, a second later, is the fix.
    # Runs 9 and 10 reach the store in one batch, as they did on the CI machine.
    failures = [record(i, "failed", start + (i - 1) * 1000) for i in range(1, 10)]
    fix = record(10, "succeeded", start + 9 * 1000)
    try:
        async with open_store(mysql_url) as store, httpx.AsyncClient() as client:
            deliverer = Deliverer(Source(hook.url), Senders(client), "a1")
            alerted = 0
            for r in failures[:-1]:  # one batch each, every alert delivered before the next
                alerted += await store.write_batch([r], repeat_s=REPEAT_S)
                await deliver_until(deliverer, store.alerts, hook, alerted)
            assert await store.write_batch([failures[-1], fix], repeat_s=REPEAT_S) == 2
            await deliver_until(deliverer, store.alerts, hook, alerted + 2)
            await deliverer.round(store.alerts)  # nothing more to send
            rows = await store.alerts.rows("flaky")
    finally:
        hook.stop()
    got = [(e["id"], e["kind"], e["count"]) for e in hook.events]
    assert got == [("flaky-1:failed", "failed", 1), ("flaky-5:failed", "failed", 4),
                   ("flaky-9:failed", "failed", 4), ("flaky-10:recovered", "recovered", 0)]
    assert held_in_vain == ["flaky-9:failed"]  # the pair was never in flight at once
    assert set(hook.ids().values()) == {1} and hook.refused == []
    sent = [r for r in rows if r["channel"] == "hook"]
    assert len(sent) == 4 and {(r["state"], r["attempts"]) for r in sent} == {("sent", 1)}


async def test_a_failure_whose_attempt_failed_still_arrives_before_its_recovered(mysql_url):
    """The failure's first attempt is refused (503); its retry comes after the
    backoff, and the recovered, due all along, waits behind it."""
    attempts: list[str] = []
    lock = threading.Lock()

    def refuse(event: dict) -> bool:
        with lock:
            attempts.append(event["id"])
            return attempts.count(event["id"]) == 1 and event["kind"] == "failed"

    hook = WebhookReceiver(secret="k", refuse=refuse).start()
    start = t0()
    batch = [record(1, "failed", start), record(2, "succeeded", start + 1000)]
    try:
        async with open_store(mysql_url) as store, httpx.AsyncClient() as client:
            deliverer = Deliverer(Source(hook.url), Senders(client), "a1",
                                  backoff_initial_s=0.5)
            assert await store.write_batch(batch, repeat_s=REPEAT_S) == 2
            await deliver_until(deliverer, store.alerts, hook, 2)
            rows = await store.alerts.rows("flaky")
    finally:
        hook.stop()
    assert attempts == ["flaky-1:failed", "flaky-1:failed", "flaky-2:recovered"]
    assert [e["id"] for e in hook.events] == ["flaky-1:failed", "flaky-2:recovered"]
    sent = {r["event_id"]: r["attempts"] for r in rows if r["channel"] == "hook"}
    assert sent == {"flaky-1:failed": 2, "flaky-2:recovered": 1}


async def test_a_job_whose_receiver_holds_its_alert_does_not_hold_up_another_jobs(mysql_url):
    """One receiver, two jobs: it holds the first job's failure until the second job's
    recovered has arrived (at most HOLD_S). The running deliverer sends the second
    job's failure and then its recovered meanwhile, in order."""
    other_done = threading.Event()
    held_in_vain: list[str] = []

    def taken(event: dict) -> None:
        if event["id"] == "stuck-1:failed" and not other_done.wait(HOLD_S):
            held_in_vain.append(event["id"])
        elif event["id"] == "quick-2:recovered":
            other_done.set()

    hook = WebhookReceiver(secret="k", before_taking=taken).start()
    start = t0()
    try:
        async with open_store(mysql_url) as store, httpx.AsyncClient() as client:
            deliverer = Deliverer(Source(hook.url), Senders(client), "a1", poll_s=0.05)
            assert await store.write_batch([record(1, "failed", start, job="stuck")],
                                           repeat_s=REPEAT_S) == 1
            assert await store.write_batch(
                [record(1, "failed", start + 10, job="quick"),
                 record(2, "succeeded", start + 20, job="quick")], repeat_s=REPEAT_S) == 2
            async with trio.open_nursery() as nursery:
                nursery.start_soon(deliverer.run, store.alerts)
                with trio.fail_after(20):
                    while len(hook.events) < 3:
                        await trio.sleep(0.02)
                nursery.cancel_scope.cancel()
    finally:
        hook.stop()
    assert held_in_vain == []
    assert [e["id"] for e in hook.events] == ["quick-1:failed", "quick-2:recovered",
                                              "stuck-1:failed"]
