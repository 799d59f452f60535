"""A worker SIGKILLed during a retry's backoff: the retry is kept in etcd, so another
worker runs it at its time, exactly once. The job writes a ledger line per attempt
(the ground truth: what ran, when); real etcd, MariaDB and worker processes."""

from __future__ import annotations

import json
import uuid

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import RunningInfo
from cluster.retries import RETRY_JITTER, PendingRetry
from cluster.store import RunStatus, RunTrigger, open_store
from e2e_harness import all_records, put_job, start_workers, wall_ms


BACKOFF_S = 6
TTL_S = 3


async def test_a_retry_survives_its_worker_and_runs_once_at_its_time(
        make_cluster, mysql_url, tmp_path):
    ledger = tmp_path / "ledger"
    cluster = make_cluster(mysql_url, "--session-ttl-s", str(TTL_S))
    ks = Keyspace(cluster.prefix)
    # Attempt 1 fails after a second; attempt 2 succeeds. Each appends its line.
    command = (f'sleep 1; echo "$(date +%s%3N) $SCHEDULER_ATTEMPT $SCHEDULER_RUN_ID" >> {ledger}; '
               '[ "$SCHEDULER_ATTEMPT" -ge 2 ]')
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["r0", "r1"])
        await put_job(etcd, ks, "flaky", command, "@yearly", retries=3,
                      retryBackoff=BACKOFF_S)
        await trio.sleep(1)
        run_id = uuid.uuid4().hex
        await etcd.put(ks.trigger("flaky", run_id), json.dumps({"requestedAt": wall_ms()}))
        with trio.fail_after(10):  # who runs attempt 1
            while not (running := (await etcd.get_prefix(ks.running_prefix("flaky"))).kvs):
                await trio.sleep(0.05)
        first_worker = RunningInfo.from_bytes(running[0].value).worker_id
        with trio.fail_after(10):  # it failed, and its retry is kept in etcd
            while not (kept := (await etcd.get_prefix(f"{ks.retry_prefix}flaky/")).kvs):
                await trio.sleep(0.02)
        victim = next(w for w in cluster.workers if w.worker_id == first_worker)
        victim.kill()
        killed_ms = wall_ms()
        retry_id = ks.parse_retry(kept[0].key)[1]
        pending = PendingRetry.from_bytes("flaky", retry_id, kept[0].value)
        await trio.sleep((pending.due_ms - wall_ms()) / 1000 + 4)
        left = (await etcd.get_prefix(f"{ks.retry_prefix}flaky/")).kvs
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = await all_records(store, "flaky")

    lines = [line.split() for line in ledger.read_text().splitlines()]
    print(f"attempt 1 on {first_worker}, killed {killed_ms}; retry {pending}; ledger {lines}")
    print([(r.attempt, r.worker, r.status.value, r.trigger.value) for r in records])
    attempts = [(int(a), rid) for _, a, rid in lines]
    assert attempts == [(1, run_id), (2, retry_id)]  # the retry ran, exactly once
    assert killed_ms < pending.due_ms  # killed during the backoff
    ended_ms = int(lines[0][0])
    # Its time: the backoff after attempt 1 ended, shortened by the jitter at most.
    assert ended_ms + BACKOFF_S * 1000 * (1 - RETRY_JITTER) - 100 <= pending.due_ms \
        <= ended_ms + BACKOFF_S * 1000 + 500
    ran_ms = int(lines[1][0]) - 1000  # the command sleeps 1 s before its line
    assert pending.due_ms - 50 <= ran_ms <= pending.due_ms + 1500, (ran_ms, pending.due_ms)
    retried = [r for r in records if r.attempt == 2]
    assert [(r.run_id, r.trigger, r.status) for r in retried] == \
        [(retry_id, RunTrigger.RETRY, RunStatus.SUCCEEDED)]
    assert retried[0].worker != first_worker  # another worker ran it
    assert not left  # the claim took the key (one key: the survivor wrote the same)
