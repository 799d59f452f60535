"""Alerts end to end, with real workers and a real webhook receiver that checks the
signature: a failing job alerts once and then once per repeat_s, and ``recovered``
follows the fix; every alert arrives once."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from alert_kit import put_alert_setup, wait_outbox_settled
from alert_receivers import WebhookReceiver, free_port
from e2e_harness import (all_records, check_fires, put_every_second, put_job, start_workers,
                         wait_registered, wall_ms)

REPEAT_S = 4
FAILING_S = 11
WINDOW_S = 15


async def test_a_failing_job_alerts_once_then_per_repeat_and_recovered_follows_the_fix(
        make_cluster, mysql_url, tmp_path):
    hook = WebhookReceiver(secret="e2e-secret").start()
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    try:
        async with open_etcd([cluster.etcd_endpoint]) as etcd:
            await put_alert_setup(etcd, ks, {"hook": {"type": "webhook", "url": hook.url,
                                                      "secret": "e2e-secret"}},
                                  repeat_s=REPEAT_S)
            cluster.add_worker("a1")
            await wait_registered(etcd, ks, {"a1"})
            alerts = {"on": ["failed", "recovered"], "channels": ["hook"]}
            fixed = tmp_path / "fixed"  # the fix: the job succeeds once this exists
            await put_job(etcd, ks, "flaky", f"test -e {fixed} || {{ echo going; exit 3; }}",
                          "* * * * * *", alerts=alerts)
            await trio.sleep(FAILING_S)
            fixed.touch()
            with trio.fail_after(30):
                while "recovered" not in hook.kinds():
                    await trio.sleep(0.2)
            # Every event sent before the receiver goes: one whose first attempt failed
            # (a slow machine) is retried after its backoff, after later ones.
            async with open_store(mysql_url) as store:
                rows = await wait_outbox_settled(store, 60)
            await trio.sleep(2)  # anything sent twice would arrive by now
        cluster.stop_all()
    finally:
        hook.stop()
    async with open_store(mysql_url) as store:
        records = sorted((r for r in await all_records(store) if r.job_name == "flaky"),
                         key=lambda r: r.end_time)
    failures = [r for r in records if r.status is RunStatus.FAILED]
    first_ok = next(r for r in records if r.status is RunStatus.SUCCEEDED
                    and r.end_time > failures[-1].end_time)
    assert len(failures) >= FAILING_S - 3
    # Independently of the code: alert on the first failure, then on the first one at
    # least REPEAT_S after the last alert, with the count since; then recovered.
    expected, last_alert, since = [], None, 0
    for r in failures:
        since += 1
        if last_alert is None or r.end_time - last_alert >= REPEAT_S * 1000:
            expected.append((f"{r.run_id}:failed", "failed", since))
            last_alert, since = r.end_time, 0
    expected.append((f"{first_ok.run_id}:recovered", "recovered", since))
    # Delivery is at least once, and in event time per job and channel: a retried event
    # holds the later ones back (tests/alerts/test_alert_delivery_order.py), so the
    # events arrive in the order they happened, each id once below.
    got = [(e["id"], e["kind"], e["count"]) for e in hook.events]
    assert got == expected, (got, expected, rows)
    assert 2 <= len(expected) - 1 <= FAILING_S // REPEAT_S + 1
    assert hook.refused == []
    assert set(hook.ids().values()) == {1}  # each once
    assert all(e["url"] == f"http://ui.test/#/runs/{e['run']['runId']}" for e in hook.events)
    assert all(e["outputExcerpt"] == "going\n" for e in hook.events if e["kind"] == "failed")
    assert {r["state"] for r in rows if r["channel"] == "hook"} == {"sent"}


@pytest.mark.slow
async def test_a_receiver_down_60_s_and_a_worker_sigkilled_with_alerts_pending_get_each_once(
        make_cluster, mysql_url):
    """Every failure alerts (repeat 0). The receiver is down from the start; the worker
    that ran the job is SIGKILLed after 10 s, so its pending alerts (and the survivor's
    ``lost`` records of its runs) are left to the other worker; the receiver comes back
    after 60 s and gets every alert in the outbox exactly once. The backoff cap is
    10 s (``backoffMaxS``) so that the test ends soon after."""
    hook = WebhookReceiver(secret="k")
    hook.port = free_port()  # down: nothing listens yet
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    try:
        async with open_etcd([cluster.etcd_endpoint]) as etcd:
            await put_alert_setup(etcd, ks, {"hook": {"type": "webhook", "url": hook.url,
                                                      "secret": "k"}},
                                  repeat_s=0, backoff_max_s=10)
            doomed = cluster.add_worker("k1", "--labels", "zone=a")
            cluster.add_worker("k2", "--labels", "zone=b")
            await wait_registered(etcd, ks, {"k1", "k2"})
            down_at = trio.current_time()
            # Runs overlap (1.5 s each, every second): one is always in flight, so the
            # kill leaves runs for the survivor to record lost.
            await put_job(etcd, ks, "broken", "sleep 1.5; exit 1", "* * * * * *",
                          concurrency="allow", selector={"zone": "a"},
                          alerts={"channels": ["hook"]})
            await trio.sleep(10)
            doomed.kill()
            async with open_store(mysql_url) as store:
                with trio.fail_after(30):  # the survivor records k1's last runs lost
                    while not [r for r in await store.alerts.rows() if r["kind"] == "lost"]:
                        await trio.sleep(0.5)
                await trio.sleep(60 - (trio.current_time() - down_at))
                assert hook.events == [] and hook.requests == 0
                hook.start()
                rows = await wait_outbox_settled(store, 90)
        cluster.stop_all()
    finally:
        hook.stop()
    events = {r["event_id"] for r in rows if r["channel"] == ""}
    kinds = {r["kind"] for r in rows}
    assert {"failed", "lost"} <= kinds
    assert len(events) >= 8
    assert {r["state"] for r in rows if r["channel"] == "hook"} == {"sent"}
    assert hook.ids() == {e: 1 for e in events}  # every alert, each once
    assert hook.refused == []


async def test_a_receiver_that_hangs_does_not_delay_fires(make_cluster, mysql_url):
    """Five jobs every second beside four that fail every second and alert (repeat
    0) to a receiver that accepts and never answers: no fire is missed, doubled or
    late beyond the usual (lateness of the five, start − planned). Four alerting jobs:
    a job's alerts to a channel go one at a time, in order, so each job keeps one
    request hanging, and the four hang at once (different jobs never wait for one
    another)."""
    hook = WebhookReceiver(hang=True).start()
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    ticks = [f"tick{j}" for j in range(5)]
    try:
        async with open_etcd([cluster.etcd_endpoint]) as etcd:
            await put_alert_setup(etcd, ks, {"hook": {"type": "webhook", "url": hook.url}},
                                  repeat_s=0, backoff_max_s=1)
            await start_workers(cluster, etcd, ks, ["h1", "h2"])
            for j in range(4):
                await put_job(etcd, ks, f"broken{j}", "exit 1", "* * * * * *",
                              alerts={"channels": ["hook"]})
            window_start = await put_every_second(etcd, ks, ticks, "true")
            await trio.sleep((window_start - wall_ms()) / 1000 + WINDOW_S)
            window_end = (wall_ms() // 1000 - 1) * 1000
            requests = hook.requests
        cluster.stop_all()
    finally:
        hook.stop()
    async with open_store(mysql_url) as store:
        records = await all_records(store)
    in_window = [r for r in records
                 if r.job_name in ticks and window_start <= r.plan_time < window_end]
    fires = check_fires(in_window, ticks, window_start, window_end)
    assert (fires.missed, fires.repeated, fires.unexpected) == ([], [], set())
    late = sorted(r.start_time - r.plan_time for r in in_window)
    assert len(late) == len(ticks) * (window_end - window_start) // 1000
    p95 = late[int(0.95 * len(late))]
    print(f"lateness ms beside a hanging receiver: p50 {late[len(late) // 2]} p95 {p95} "
          f"max {late[-1]}; {requests} requests hung")
    assert requests >= 4  # the alerts of the four jobs were being sent, and hung
    assert p95 <= 100 and late[-1] <= 500, late
