"""Retention deletes what the policy says, through the LogManager, in batches."""

from __future__ import annotations

import trio

from actors import open_mailbox
from cluster.store import open_store
from master import MasterContext, open_mailboxes
from master.retention import DAY_MS, PASS_TIMEOUT_S, Retention
from master.runs import LogManager

from master_testkit import make_config, record, running_master

NOW_MS = 1_800_000_000_000


def retention(master, **kwargs) -> Retention:
    _, inbox = open_mailbox(1, name="retention-under-test")
    return Retention(inbox, master.ctx, master.services.runs, **kwargs)


class StuckLogManager(LogManager):
    """A run store that never answers a prune: each pass waits out its timeout."""

    async def prune(self, older_than_ms, max_per_job, batch_size) -> int:
        await trio.sleep_forever()


async def write(master, records) -> None:
    async with open_store(master.config.db_url) as store:
        await store.write_batch(records)


async def run_ids(master, query: str = "") -> list[str]:
    page = (await master.get(f"/api/v1/runs?limit=1000{query}")).json
    return sorted(r["runId"] for r in page["runs"])


async def test_deletes_records_older_than_the_retention_days(tmp_path, etcd_endpoint,
                                                             etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, log_retention_days=7)
    async with running_master(config, clock=lambda: NOW_MS) as master:
        old = [record(f"old{i}", start=NOW_MS - 8 * DAY_MS - i) for i in range(1200)]
        skipped_old = record("skipped-old", start=None, status="skipped",
                             schedule_time=NOW_MS - 30 * DAY_MS)
        young = [record(f"new{i}", start=NOW_MS - 6 * DAY_MS + i) for i in range(3)]
        await write(master, [*old, skipped_old, *young])
        deleted = await retention(master).prune_once()
        assert deleted == 1201
        assert await run_ids(master) == ["new0", "new1", "new2"]
        assert master.ctx.metrics.value("retention_deleted_total") == 1201
        assert await retention(master).prune_once() == 0


async def test_keeps_at_most_n_records_per_job(tmp_path, etcd_endpoint, etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, log_retention_days=None,
                         log_retention_max_per_job=3)
    async with running_master(config) as master:
        await write(master, [record(f"a{i}", "a", start=1_000 + i) for i in range(10)]
                    + [record(f"b{i}", "b", start=1_000 + i) for i in range(2)])
        assert await retention(master).prune_once() == 7
        assert await run_ids(master, "&job=a") == ["a7", "a8", "a9"]
        assert await run_ids(master, "&job=b") == ["b0", "b1"]


async def test_prunes_again_every_interval(tmp_path, etcd_endpoint, etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, log_retention_days=None,
                         log_retention_max_per_job=1)
    async with running_master(config) as master:
        actor = retention(master, interval_s=0.05, first_delay_s=0)
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await write(master, [record(f"a{i}", "a", start=1_000 + i) for i in range(4)])
            with trio.fail_after(10):
                while await run_ids(master) != ["a3"]:
                    await trio.sleep(0.05)
            passes = actor.passes
            actor.request_stop()
        assert passes >= 1


async def test_disabled_policy_never_prunes(tmp_path, autojump_clock):
    config = make_config(tmp_path, "127.0.0.1:1", "/x/", log_retention_days=None,
                         log_retention_max_per_job=None)
    _, inboxes = open_mailboxes(config)
    ctx = MasterContext.create(config)  # a stuck store: a pass would time out
    actor = Retention(inboxes.retention, ctx, StuckLogManager(ctx), interval_s=1,
                      first_delay_s=0)
    assert not actor.enabled
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(10 * 86_400)
        actor.request_stop()
    assert actor.passes == 0


async def test_enabled_policy_passes_at_each_interval(tmp_path, autojump_clock):
    config = make_config(tmp_path, "127.0.0.1:1", "/x/", log_retention_days=1)
    _, inboxes = open_mailboxes(config)
    ctx = MasterContext.create(config)
    actor = Retention(inboxes.retention, ctx, StuckLogManager(ctx), interval_s=300,
                      first_delay_s=60)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        # The store never answers: each pass waits out its timeout.
        await trio.sleep(60 + 2 * (PASS_TIMEOUT_S + 300) - 1)
        assert actor.passes == 2
        actor.request_stop()


async def test_store_down_skips_the_pass(tmp_path, etcd_endpoint, etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix,
                         db_url="mysql://u:p@127.0.0.1:1/none")
    async with running_master(config) as master:
        assert await retention(master).prune_once() is None
