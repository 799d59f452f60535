"""What the alert e2e tests share: channels and settings put into etcd as the master
does, and the outbox read back from the store."""

from __future__ import annotations

import json

import trio

from cluster.etcd import Etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStore


async def put_alert_setup(etcd: Etcd, ks: Keyspace, channels: dict[str, dict], *,
                          repeat_s: float = 3600, backoff_max_s: float = 900) -> None:
    for name, channel in channels.items():
        await etcd.put(ks.alert_channel(name), json.dumps(channel))
    await etcd.put(ks.alert_settings, json.dumps({
        "repeatS": repeat_s, "backoffMaxS": backoff_max_s, "default": None,
        "publicUrl": "http://ui.test/"}))


async def wait_outbox_settled(store: RunStore, timeout_s: float) -> list[dict]:
    """Wait until no row is pending; returns every row."""
    with trio.fail_after(timeout_s):
        while True:
            rows = await store.alerts.rows()
            if rows and not any(r["state"] == "pending" for r in rows):
                return rows
            await trio.sleep(0.5)
