"""The deliverer against real receivers: a webhook that checks the signature and an
SMTP server with STARTTLS and AUTH; the outbox in a SQLite store. The source of
channels and settings is a plain object here (etcd's is the e2e tests')."""

from __future__ import annotations

import httpx
import pytest
import trio

from cluster.alert_delivery import Deliverer, Senders, webhook_body
from cluster.alerts import (AlertEvent, AlertKind, AlertPolicy, AlertSettings, parse_channel,
                            parse_policy)
from cluster.store import RunRecord, open_store

from alert_receivers import SmtpReceiver, WebhookReceiver
from tls_certs import Authority

T0 = 1_700_000_000_000


class Source:
    def __init__(self, channels: dict, policy: AlertPolicy | None = None,
                 settings: AlertSettings | None = None) -> None:
        self._channels = {n: parse_channel(n, c) for n, c in channels.items()}
        self.policy = policy
        self._settings = settings or AlertSettings(public_url="https://cron.example/")

    async def settings(self):
        return self._settings

    async def channels(self):
        return self._channels

    async def job_policy(self, job):
        return self.policy


def failed(i: int, job: str = "nightly") -> RunRecord:
    return RunRecord(run_id=f"run-{i}", job_name=job, worker="w1", command="false",
                     output="step 1\nboom\n", err="it broke\n", exit_code=1, status="failed",
                     trigger="schedule", attempt=1, plan_time=T0 + i, schedule_time=T0 + i,
                     start_time=T0 + i, end_time=T0 + i + 5)


async def deliver_until(deliverer, outbox, done, timeout_s=20.0):
    with trio.fail_after(timeout_s):
        while not done():
            await deliverer.round(outbox)
            await trio.sleep(0.05)


async def test_a_webhook_gets_a_signed_event_with_the_run_excerpt_and_link(tmp_path):
    hook = WebhookReceiver(secret="s3cret").start()
    try:
        source = Source({"ops": {"type": "webhook", "url": hook.url, "secret": "s3cret"}},
                        parse_policy({"on": ["failed"], "channels": ["ops"]}))
        async with open_store(f"sqlite:///{tmp_path}/runs.db") as store, \
                httpx.AsyncClient() as client:
            await store.alerts.observe([failed(1)], repeat_s=3600)
            deliverer = Deliverer(source, Senders(client), "w1")
            await deliver_until(deliverer, store.alerts, lambda: hook.events)
            await deliverer.round(store.alerts)
            [event] = hook.events
            assert hook.refused == []
            assert event["id"] == "run-1:failed" and event["kind"] == "failed"
            assert event["job"] == "nightly" and event["run"]["exitCode"] == 1
            assert event["outputExcerpt"].endswith("boom\n") and event["errExcerpt"] == "it broke\n"
            assert event["url"] == "https://cron.example/#/runs/run-1"
            assert deliverer.statistics().sent == {"ops": 1}
            assert (await store.alerts.counts())[("ops", "sent")] == 1
    finally:
        hook.stop()


async def test_a_wrong_secret_is_refused_by_the_receiver_and_retried_with_backoff(tmp_path):
    hook = WebhookReceiver(secret="right").start()
    try:
        source = Source({"ops": {"type": "webhook", "url": hook.url, "secret": "wrong"}},
                        parse_policy({"channels": ["ops"]}))
        async with open_store(f"sqlite:///{tmp_path}/runs.db") as store, \
                httpx.AsyncClient() as client:
            await store.alerts.observe([failed(1)], repeat_s=3600)
            deliverer = Deliverer(source, Senders(client), "w1", backoff_initial_s=30)
            await deliver_until(deliverer, store.alerts, lambda: hook.refused)
            assert "does not match" in hook.refused[0] and hook.events == []
            [row] = [r for r in await store.alerts.rows() if r["channel"] == "ops"]
            assert row["state"] == "pending" and row["attempts"] == 1
            assert row["last_error"] == "HTTP 401"
            assert 30_000 <= row["next_at_ms"] - row["created_ms"] <= 32_000
            assert await deliverer.round(store.alerts) == 0  # not due for 30 s
    finally:
        hook.stop()


async def test_a_job_that_wants_no_such_event_drops_it_and_a_test_event_goes_to_its_channel(
        tmp_path):
    hook = WebhookReceiver().start()
    try:
        source = Source({"ops": {"type": "webhook", "url": hook.url, "format": "slack"}},
                        parse_policy({"on": ["recovered"], "channels": ["ops"]}))
        async with open_store(f"sqlite:///{tmp_path}/runs.db") as store, \
                httpx.AsyncClient() as client:
            await store.alerts.observe([failed(1)], repeat_s=3600)
            await store.alerts.enqueue(AlertEvent("test:1", AlertKind.TEST, "", T0, 1,
                                                  extra={"channel": "ops"}))
            deliverer = Deliverer(source, Senders(client), "w1")
            await deliver_until(deliverer, store.alerts, lambda: hook.events)
            counts = await store.alerts.counts()
            assert counts[("", "dropped")] == 1 and counts[("ops", "sent")] == 1
            assert [e["id"] for e in hook.events] == ["test:1"]
            assert hook.events[0]["text"].startswith("[scheduler] test alert")
    finally:
        hook.stop()


def test_the_slack_body_is_a_text_with_the_link():
    channel = parse_channel("mm", {"type": "webhook", "url": "https://m.example/h",
                                   "format": "slack"})
    event = AlertEvent("r:failed", AlertKind.FAILED, "nightly", T0, 4,
                       run={"runId": "r", "output": "x"})
    body = webhook_body(channel, event, "https://cron.example")
    assert body.decode() == ('{"text":"[scheduler] nightly failed (4 failures since the last '
                             'alert)\\nhttps://cron.example/#/runs/r","id":"r:failed"}')


async def test_an_email_goes_over_starttls_with_the_password_from_a_file(tmp_path):
    ca = Authority.create(tmp_path, "smtp-ca")
    leaf = ca.issue(tmp_path, "smtp", server=True)
    smtp = SmtpReceiver(leaf.cert, leaf.key, password="pw-from-file").start()
    (tmp_path / "smtp-password").write_text("pw-from-file\n")
    try:
        source = Source({"mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                                  "from": "cron@example.org", "to": ["ops@example.org"],
                                  "username": "alerts", "caFile": str(ca.cert),
                                  "passwordFile": str(tmp_path / "smtp-password")}},
                        parse_policy({"channels": ["mail"]}))
        async with open_store(f"sqlite:///{tmp_path}/runs.db") as store, \
                httpx.AsyncClient() as client:
            await store.alerts.observe([failed(1)], repeat_s=3600)
            deliverer = Deliverer(source, Senders(client), "w1")
            await deliver_until(deliverer, store.alerts, lambda: smtp.messages)
            [message] = smtp.messages
            assert message.rcpt_tos == ["ops@example.org"]
            text = message.content.decode()
            assert "Subject: [scheduler] nightly failed" in text
            assert "X-Scheduler-Event: run-1:failed" in text
    finally:
        smtp.stop()


async def test_an_email_with_a_wrong_password_fails_and_stays_pending(tmp_path, monkeypatch):
    ca = Authority.create(tmp_path, "smtp-ca")
    leaf = ca.issue(tmp_path, "smtp", server=True)
    smtp = SmtpReceiver(leaf.cert, leaf.key, password="right").start()
    monkeypatch.setenv("ALERT_SMTP_PW", "wrong")
    try:
        source = Source({"mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                                  "from": "cron@example.org", "to": ["ops@example.org"],
                                  "username": "alerts", "caFile": str(ca.cert),
                                  "passwordEnv": "ALERT_SMTP_PW"}},
                        parse_policy({"channels": ["mail"]}))
        async with open_store(f"sqlite:///{tmp_path}/runs.db") as store, \
                httpx.AsyncClient() as client:
            await store.alerts.observe([failed(1)], repeat_s=3600)
            deliverer = Deliverer(source, Senders(client), "w1")
            await deliver_until(deliverer, store.alerts,
                                lambda: deliverer.statistics().failed)
            assert smtp.messages == []
            [row] = [r for r in await store.alerts.rows() if r["channel"] == "mail"]
            assert row["state"] == "pending" and "SMTPAuthenticationError" in row["last_error"]
            assert "wrong" not in row["last_error"]
    finally:
        smtp.stop()


class FailingSenders:
    async def send(self, channel, event, public_url):
        from cluster.alert_delivery import DeliveryFailed
        raise DeliveryFailed("HTTP 503")


class RecordingOutbox:
    """Hands out one delivery again and again, counting its attempts; records delays."""

    def __init__(self, event):
        self.delays: list[int] = []
        self.event = event

    async def claim_due(self, owner, now_ms, lease_ms, limit=20):
        from cluster.store import Delivery
        return [Delivery("d>ops", self.event, "ops", len(self.delays), now_ms, "c")]

    async def mark_failed(self, delivery, now_ms, retry_in_ms, error):
        self.delays.append(retry_in_ms)
        return True

    async def counts(self):
        return {("ops", "pending"): 1}


async def test_retries_back_off_from_5_s_doubling_to_the_settings_cap():
    source = Source({"ops": {"type": "webhook", "url": "http://127.0.0.1:9/"}},
                    settings=AlertSettings(backoff_max_s=300))
    outbox = RecordingOutbox(AlertEvent("e", AlertKind.FAILED, "j", T0))
    deliverer = Deliverer(source, FailingSenders(), "w1")
    for _ in range(9):
        await deliverer.round(outbox)
    assert outbox.delays == [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000,
                             300_000, 300_000]
    assert deliverer.statistics().failed == {"ops": 9}
    assert deliverer.statistics().pending == {"ops": 1}
