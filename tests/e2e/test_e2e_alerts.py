"""Alerts end to end, with real workers and a real webhook receiver that checks the
signature: a failing job alerts once and then once per repeat_s, and ``recovered``
follows the fix; every alert arrives once."""

from __future__ import annotations

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from alert_kit import put_alert_setup, wait_outbox_settled
from alert_receivers import WebhookReceiver
from e2e_harness import all_records, put_job, wait_registered

REPEAT_S = 4
FAILING_S = 11


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
            await trio.sleep(2)  # anything sent twice would arrive by now
        cluster.stop_all()
    finally:
        hook.stop()
    async with open_store(mysql_url) as store:
        records = sorted((r for r in await all_records(store) if r.job_name == "flaky"),
                         key=lambda r: r.end_time)
        rows = await wait_outbox_settled(store, 5)
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
    got = [(e["id"], e["kind"], e["count"]) for e in hook.events]
    assert got == expected, (got, expected)
    assert 2 <= len(expected) - 1 <= FAILING_S // REPEAT_S + 1
    assert hook.refused == []
    assert set(hook.ids().values()) == {1}  # each once
    assert all(e["url"] == f"http://ui.test/#/runs/{e['run']['runId']}" for e in hook.events)
    assert all(e["outputExcerpt"] == "going\n" for e in hook.events if e["kind"] == "failed")
    assert {r["state"] for r in rows if r["channel"] == "hook"} == {"sent"}
