"""/api/v1/alert-channels and a job's alerts through the master: secrets never shown,
an unknown channel refused with 422, and a test event delivered by the master's own
deliverer to a real receiver that checks the signature."""

from __future__ import annotations

import json

import pytest
import trio

from master.alerts import AlertsFileError, load_alerts_file, unschedulable_hook
from master.schedulable import SchedulableChanged

from alert_receivers import WebhookReceiver
from master_testkit import make_config, running_master

SPEC = {"command": "echo hi", "cronExpr": "@every 1h"}


async def test_a_channel_keeps_its_secret_out_of_every_answer(master):
    body = {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "hunter2-secret"}
    created = await master.put("/api/v1/alert-channels/ops", json=body)
    assert created.status == 201 and b"hunter2" not in created.body
    assert created.json["channel"] == {"name": "ops", "type": "webhook",
                                       "url": "http://127.0.0.1:9/x", "hasSecret": True}
    # Saved again without the secret (as the UI does): the stored one is kept.
    again = await master.put("/api/v1/alert-channels/ops",
                             json={"type": "webhook", "url": "http://127.0.0.1:9/y"})
    assert again.status == 200 and again.json["channel"]["hasSecret"] is True
    stored = json.loads((await master.etcd.get(master.keyspace.alert_channel("ops"))).value)
    assert stored["secret"] == "hunter2-secret" and stored["url"] == "http://127.0.0.1:9/y"
    listed = await master.get("/api/v1/alert-channels")
    assert [c["name"] for c in listed.json["channels"]] == ["ops"]
    assert b"hunter2" not in listed.body
    # null removes it
    cleared = await master.put("/api/v1/alert-channels/ops",
                               json={"type": "webhook", "url": "http://127.0.0.1:9/y",
                                     "secret": None})
    assert cleared.json["channel"]["hasSecret"] is False
    assert (await master.request("DELETE", "/api/v1/alert-channels/ops")).status == 200
    assert (await master.get("/api/v1/alert-channels/ops")).status == 404


async def test_a_bad_channel_is_a_400_naming_the_field(master):
    bad = await master.put("/api/v1/alert-channels/ops", json={"type": "webhook",
                                                               "url": "ftp://x"})
    assert bad.status == 400 and bad.error["field"] == "url"
    name = await master.put("/api/v1/alert-channels/a%20b", json={"type": "webhook",
                                                                  "url": "http://x/"})
    assert name.status == 400 and name.error["field"] == "name"


async def test_a_job_naming_an_unknown_channel_is_refused_with_422(master):
    await master.put("/api/v1/alert-channels/ops", json={"type": "webhook",
                                                         "url": "http://127.0.0.1:9/x"})
    refused = await master.put("/api/v1/jobs/j1", json={
        **SPEC, "alerts": {"on": ["failed"], "channels": ["ops", "pager"]}})
    assert refused.status == 422
    assert refused.error == {"code": "unknown_channel", "field": "alerts.channels",
                             "message": "alerts.channels: no such channel 'pager' "
                                        "(known: ops)"}
    assert await master.stored("j1") is None
    event = await master.put("/api/v1/jobs/j1", json={**SPEC, "alerts": {"on": ["paged"]}})
    assert event.status == 400 and "unknown event 'paged'" in event.error["message"]
    ok = await master.put("/api/v1/jobs/j1", json={
        **SPEC, "alerts": {"on": ["failed", "recovered"], "channels": ["ops"]}})
    assert ok.status == 201
    assert ok.json["job"]["alerts"] == {"on": ["failed", "recovered"], "channels": ["ops"]}
    assert (await master.stored("j1"))["alerts"]["channels"] == ["ops"]


async def test_a_test_event_is_sent_by_the_master_signed_and_counted(master):
    hook = WebhookReceiver(secret="t0p").start()
    try:
        await master.put("/api/v1/alert-channels/ops", json={"type": "webhook",
                                                             "url": hook.url, "secret": "t0p"})
        queued = await master.post("/api/v1/alert-channels/ops/test")
        assert queued.status == 202
        with trio.fail_after(10):
            while not hook.events:
                await trio.sleep(0.05)
        [event] = hook.events
        assert event["id"] == queued.json["eventId"] and event["kind"] == "test"
        assert hook.refused == []
        assert (await master.post("/api/v1/alert-channels/nope/test")).status == 404
        with trio.fail_after(5):
            while 'scheduler_master_alerts_sent_total{channel="ops"} 1.0' not in (
                    master.ctx.metrics.render().decode()):
                await trio.sleep(0.05)
    finally:
        hook.stop()


async def test_the_alerts_file_publishes_settings_and_channels(tmp_path, etcd_endpoint,
                                                                etcd_prefix):
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"repeatS": 600, "default": {"channels": ["mail"]},
                                "channels": {"mail": {"type": "email", "host": "smtp.x",
                                                      "from": "a@b.c", "to": ["o@b.c"],
                                                      "passwordEnv": "SMTP_PW"}}}))
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, alerts_file=str(path),
                         public_url="https://cron.example")
    async with running_master(config) as master:
        with trio.fail_after(10):
            while (kv := await master.etcd.get(master.keyspace.alert_settings)) is None:
                await trio.sleep(0.05)
        settings = json.loads(kv.value)
        assert settings["repeatS"] == 600 and settings["default"] == {"channels": ["mail"]}
        assert settings["publicUrl"] == "https://cron.example"
        listed = await master.get("/api/v1/alert-channels")
        assert [c["name"] for c in listed.json["channels"]] == ["mail"]
    path.write_text('{"channels": {"x": {"type": "pager"}}}')
    try:
        load_alerts_file(str(path))
    except AlertsFileError as exc:
        assert str(exc) == f"alerts file {path}: type: webhook or email"
    else:
        raise AssertionError("a bad alerts file was accepted")


@pytest.fixture
async def quiet_master(config):
    """A master whose own SchedulableWatch never announces (settles after an hour): the
    job these tests save really is unschedulable, and the watch would raise its own
    alert for it 5 s later, beside the one the test raises."""
    async with running_master(config, schedulable_settle_s=3600) as m:
        yield m
        await m.etcd.delete_prefix(config.prefix)


async def test_unschedulable_is_raised_once_per_spell_and_follows_the_job_policy(quiet_master):
    master = quiet_master
    hook = WebhookReceiver().start()
    try:
        await master.put("/api/v1/alert-channels/ops", json={"type": "webhook",
                                                             "url": hook.url})
        await master.put("/api/v1/jobs/zoned", json={
            **SPEC, "selector": {"zone": "b"},
            "alerts": {"on": ["unschedulable"], "channels": ["ops"]}})
        for _ in range(3):  # three observers (or three checks) of the same spell
            await master.services.alerts.unschedulable("zoned", "no live worker has zone=b",
                                                       1_700_000_000_000)
        with trio.fail_after(10):
            while not hook.events:
                await trio.sleep(0.05)
        await trio.sleep(1.5)  # a second send would arrive by now
        [event] = hook.events
        assert (event["kind"], event["job"], event["reason"]) == (
            "unschedulable", "zoned", "no live worker has zone=b")
    finally:
        hook.stop()


async def test_the_schedulable_watch_hook_raises_unschedulable_once_and_chains_on(quiet_master):
    """``unschedulable_hook``, what the master's tree gives its SchedulableWatch: a job
    turning unschedulable queues one alert, its return none; the next hook sees both."""
    master = quiet_master
    hook = WebhookReceiver().start()
    seen: list[SchedulableChanged] = []

    async def then(change: SchedulableChanged) -> None:
        seen.append(change)

    try:
        await master.put("/api/v1/alert-channels/ops", json={"type": "webhook",
                                                             "url": hook.url})
        await master.put("/api/v1/jobs/zoned", json={
            **SPEC, "selector": {"zone": "b"},
            "alerts": {"on": ["unschedulable"], "channels": ["ops"]}})
        on_change = unschedulable_hook(master.services.alerts, then=then)
        why = "no live worker has zone=b"
        await on_change(SchedulableChanged("zoned", False, why, 1_700_000_000_000,
                                           1_700_000_005_000))
        await on_change(SchedulableChanged("zoned", True, None, 1_700_000_060_000,
                                           1_700_000_065_000))
        with trio.fail_after(10):
            while not hook.events:
                await trio.sleep(0.05)
        await trio.sleep(1.5)  # a second send would arrive by now
        [event] = hook.events
        assert (event["kind"], event["job"], event["reason"]) == ("unschedulable", "zoned", why)
        assert [(c.job, c.schedulable) for c in seen] == [("zoned", False), ("zoned", True)]
    finally:
        hook.stop()
