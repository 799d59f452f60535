"""GET /api/v1/events against hypercorn, etcd and MariaDB: what a client is told, each
change once; resuming with Last-Event-ID; the job filter; a slow client dropped."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections import Counter

import httpx
import pytest
import trio

from cluster.alerts import AlertEvent, AlertKind
from cluster.presence import RunningInfo, WorkerInfo
from cluster.store import open_store
from cluster.etcd import open_etcd
from master import MasterContext, Services, build_tree, events_api, open_mailboxes
from master.cli._sse import SseParser

from events_testkit import Reader, read_events, serving_master
from master_testkit import AUTH, TOKEN, make_config, record

SPEC = {"command": "true", "cronExpr": "0 0 1 1 *"}  # no worker runs it in a test


@pytest.fixture
def config(tmp_path, etcd_endpoint, etcd_prefix, mysql_url):
    return make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=mysql_url)


async def put_job(url: str, name: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        assert (await client.put(f"/api/v1/jobs/{name}", json=SPEC)).status_code in (200, 201)


async def call(url: str, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        assert (await client.request(method, path)).status_code < 300


def seq(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


async def hub_reaches(m, number: int) -> None:
    with trio.fail_after(10):
        while seq(m.hub.last_id) < number:
            await trio.sleep(0.05)


async def test_a_client_is_told_every_kind_of_change_once(config):
    async with serving_master(config) as m, trio.open_nursery() as nursery:
        reader = Reader()
        await nursery.start(read_events, m.url, reader)
        await reader.count("ready", 1)
        assert m.metric("events_clients") == 1

        await put_job(m.url, "app")
        await call(m.url, "POST", "/api/v1/jobs/app/pause")
        await call(m.url, "POST", "/api/v1/jobs/app/resume")
        await put_job(m.url, "app")  # saved again, paused unchanged
        running = RunningInfo("run-1", "app", "w1", 1_000, 1, "schedule", 2_000)
        await m.etcd.put(m.ctx.keyspace.running("app", "run-1"), running.to_bytes())
        await m.etcd.put(m.ctx.keyspace.running("app", "run-1"),  # marked: not a new start
                         running.with_state("ended").to_bytes())
        lease = await m.etcd.grant_lease(10)
        await m.etcd.put(m.ctx.keyspace.worker("w1"), WorkerInfo("w1", "h1", 7).to_bytes(),
                         lease_id=lease.id)
        await m.etcd.put(m.ctx.keyspace.worker("w1"),  # republished: no new join
                         WorkerInfo("w1", "h1", 7, running=1).to_bytes(), lease_id=lease.id)
        async with open_store(config.db_url) as store:
            await store.write_batch([record("run-1", "app", start=m.ctx.clock())])
            await reader.count("run.finished", 1)
            await store.alerts.enqueue(AlertEvent("alert-1", AlertKind.FAILED, "app",
                                                  m.ctx.clock()))
            await reader.count("alert", 1)
        await m.etcd.revoke_lease(lease.id)  # the worker's key goes with its lease
        await call(m.url, "DELETE", "/api/v1/jobs/app")
        await reader.count("job.deleted", 1)
        await reader.count("worker.left", 1)
        nursery.cancel_scope.cancel()

    kinds = reader.kinds()
    assert Counter(kinds) == {"ready": 1, "job.saved": 2, "job.paused": 1, "job.resumed": 1,
                              "run.started": 1, "worker.joined": 1, "run.finished": 1,
                              "alert": 1, "worker.left": 1, "job.deleted": 1}
    etcd_order = [k for k in kinds if k.startswith(("job.", "worker.", "run.started"))]
    assert etcd_order == ["job.saved", "job.paused", "job.resumed", "job.saved",
                          "run.started", "worker.joined", "worker.left", "job.deleted"]
    assert reader.data("job.saved")[0] == {"job": "app", "created": True, "paused": False}
    assert reader.data("run.started")[0] == {
        "job": "app", "runId": "run-1", "worker": "w1", "planTime": 1_000, "attempt": 1,
        "trigger": "schedule", "state": "started"}
    finished = reader.data("run.finished")[0]
    assert (finished["job"], finished["runId"], finished["status"]) == ("app", "run-1",
                                                                       "succeeded")
    assert "output" not in finished and "command" not in finished
    assert reader.data("worker.joined")[0] == {"worker": "w1", "host": "h1", "labels": {}}
    assert reader.data("alert")[0]["alertId"] == "alert-1"
    seqs = [seq(e.id) for e in reader.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert m.metric("events_sent_total") >= len(kinds)
    assert m.metric("events_clients") == 0  # gone with its client


async def test_reconnecting_with_last_event_id_misses_none_and_repeats_none(config):
    async with serving_master(config) as m:
        first = Reader()
        async with trio.open_nursery() as nursery:
            await nursery.start(read_events, m.url, first)
            await put_job(m.url, "before")
            await first.count("job.saved", 1)
            nursery.cancel_scope.cancel()  # the client goes away
        # While it is away: 20 saves, 30 runs recorded, a worker joins.
        async with open_store(config.db_url) as store:
            for i in range(20):
                await put_job(m.url, f"job-{i}")
                await store.write_batch([record(f"r-{i}-{k}", f"job-{i}", start=i * 10 + k)
                                         for k in range(2 if i < 10 else 1)])
        await m.etcd.put(m.ctx.keyspace.worker("w9"), WorkerInfo("w9", "h", 1).to_bytes())
        async with trio.open_nursery() as nursery:
            # What it missed (20 + 30 + 1) has reached the hub (the store is polled).
            await hub_reaches(m, seq(first.last_id) + 51)
            second = Reader()
            await nursery.start(functools.partial(read_events, m.url, second,
                                                  last_id=first.last_id))
            await second.count("run.finished", 30)
            await second.count("worker.joined", 1)
            await put_job(m.url, "after")  # and it goes on live
            await second.until(lambda r: any(d.get("job") == "after"
                                             for d in r.data("job.saved")))
            nursery.cancel_scope.cancel()
    assert "ready" not in second.kinds() and "reset" not in second.kinds()
    saved = [d["job"] for d in second.data("job.saved")]
    assert saved == [f"job-{i}" for i in range(20)] + ["after"]
    finished = [d["runId"] for d in second.data("run.finished")]
    assert sorted(finished) == sorted({f"r-{i}-{k}" for i in range(20)
                                       for k in range(2 if i < 10 else 1)})
    assert len(finished) == len(set(finished)) == 30
    assert not {e.id for e in first.events} & {e.id for e in second.events}


async def test_an_id_the_hub_cannot_resume_from_gets_reset(config):
    async with serving_master(config, ring_size=5) as m, trio.open_nursery() as nursery:
        old = m.hub.last_id
        for i in range(8):  # more than the history keeps
            await put_job(m.url, f"j{i}")
        await hub_reaches(m, 8)
        stale, foreign, kept = Reader(), Reader(), Reader()
        await nursery.start(functools.partial(read_events, m.url, stale, last_id=old))
        await nursery.start(functools.partial(read_events, m.url, foreign, last_id="0000-3"))
        recent = f"{m.hub.epoch}-{seq(m.hub.last_id) - 2}"
        await nursery.start(functools.partial(read_events, m.url, kept, last_id=recent))
        for reader in (stale, foreign):
            await reader.count("reset", 1)
        await kept.count("job.saved", 2)
        nursery.cancel_scope.cancel()
    assert stale.kinds() == ["reset"] and "no longer kept" in stale.data("reset")[0]["reason"]
    assert foreign.kinds() == ["reset"] and "restarted" in foreign.data("reset")[0]["reason"]
    assert [d["job"] for d in kept.data()] == ["j6", "j7"]


async def test_the_job_filter_keeps_those_jobs_and_heartbeats_keep_the_id(config, monkeypatch):
    monkeypatch.setattr(events_api, "HEARTBEAT_S", 0.3)
    async with serving_master(config) as m, trio.open_nursery() as nursery:
        both, one = Reader(), Reader()
        await nursery.start(functools.partial(read_events, m.url, both, query={"job": "a,b"}))
        await nursery.start(functools.partial(read_events, m.url, one,
                                              query=[("job", "c"), ("job", "b")]))
        for name in ("a", "b", "c", "d"):
            await put_job(m.url, name)
        await m.etcd.put(m.ctx.keyspace.worker("w1"), WorkerInfo("w1", "h", 1).to_bytes())
        async with open_store(config.db_url) as store:
            await store.write_batch([record("ra", "a"), record("rd", "d")])
        await both.count("run.finished", 1)
        await both.until(lambda r: r.heartbeats >= 2)
        await one.until(lambda r: r.heartbeats >= 2 and len(r.data("job.saved")) == 2)
        nursery.cancel_scope.cancel()
    assert [(e.event, json.loads(e.data).get("job")) for e in both.events] == [
        ("ready", None), ("job.saved", "a"), ("job.saved", "b"), ("run.finished", "a")]
    assert [d["job"] for d in one.data("job.saved")] == ["b", "c"]
    # A heartbeat moved the id past the events it left out: resuming there repeats none.
    assert both.last_id == m.hub.last_id


async def test_bad_requests_are_refused_with_the_field(config):
    async with serving_master(config) as m, httpx.AsyncClient(base_url=m.url) as client:
        for query, headers, status, field in [
                ({"job": "a/b"}, AUTH, 400, "job"),
                ({"job": ","}, AUTH, 400, "job"),
                ({}, {**AUTH, "Last-Event-ID": "x" * 65}, 400, "Last-Event-ID"),
                ({}, {}, 401, None)]:
            answer = await client.get("/api/v1/events", params=query, headers=headers)
            assert answer.status_code == status, answer.text
            assert answer.json()["error"].get("field") == field
        head = await client.head("/api/v1/events", headers=AUTH)  # answered, not held open
        assert head.status_code == 200 and head.headers["content-type"].startswith(
            "text/event-stream")
        assert m.metric("events_clients") == 0


async def test_a_slow_client_is_dropped_with_a_last_event_and_resumes(config):
    async with serving_master(config, queue_size=8) as m, trio.open_nursery() as nursery:
        slow = Reader(delay_s=1.0)
        await nursery.start(read_events, m.url, slow)
        await slow.count("ready", 1)
        padding = "x" * 100_000  # enough to fill the sockets' buffers quickly
        for i in range(200):
            m.hub.publish("job.saved", f"big-{i}", {"job": f"big-{i}", "pad": padding})
            await trio.sleep(0)
        assert m.metric("events_clients_dropped_total") == 1
        slow.delay_s = 0  # it reads what was queued, then its last event
        await slow.until(lambda r: r.ended, timeout_s=30)
        assert slow.kinds()[-1] == "dropped" and "too slow" in slow.data("dropped")[0]["reason"]
        got = [d["job"] for d in slow.data("job.saved")]
        assert got == [f"big-{i}" for i in range(len(got))] and len(got) < 200
        again = Reader()
        await nursery.start(functools.partial(read_events, m.url, again,
                                              last_id=slow.last_id))
        await again.count("job.saved", 200 - len(got), timeout_s=30)
        nursery.cancel_scope.cancel()
    assert [d["job"] for d in again.data("job.saved")] == [f"big-{i}"
                                                          for i in range(len(got), 200)]


async def test_a_stream_outlives_the_read_timeout_but_a_silent_connection_does_not(
        tmp_path, etcd_endpoint, etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, api_read_timeout_s=1.0)
    async with serving_master(config) as m, trio.open_nursery() as nursery:
        reader = Reader()
        await nursery.start(read_events, m.url, reader)
        await trio.sleep(2.5)  # the client only listens: more than the read timeout
        await put_job(m.url, "late")
        await reader.count("job.saved", 1)
        assert not reader.ended
        host, port = m.url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"GET /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\n")  # no end
        with trio.fail_after(5):
            assert await stream.receive_some(1024) == b""  # closed by the master
        nursery.cancel_scope.cancel()


def test_the_parser_follows_the_browser_rules():
    parser = SseParser()
    assert parser.feed("id: e-1\nevent: job.saved\nda") == []
    [event] = parser.feed('ta: {"job": "a"}\n\n: heartbeat\nid: e-4\n\n')
    assert (event.id, event.event, event.data) == ("e-1", "job.saved", '{"job": "a"}')
    assert parser.last_id == "e-4"  # an id with no data moves the id, dispatches nothing
    [plain] = parser.feed("data: x\r\n\r\n")
    assert (plain.id, plain.event) == ("e-4", "message")


async def test_schedctl_events_prints_the_stream_of_a_real_master(config):
    async with serving_master(config) as m:
        env = {**os.environ, "SCHEDULER_URL": m.url, "SCHEDULER_API_TOKEN": TOKEN,
               "TZ": "UTC", "PYTHONUNBUFFERED": "1"}
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "master.cli", "events", "--job", "app"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        lines: list[str] = []
        try:
            buffer, saved = b"", False
            with trio.fail_after(20):
                while not any("job.saved" in line for line in lines):
                    if not saved and any("ready" in line for line in lines):
                        saved = True
                        await put_job(m.url, "other")  # filtered out
                        await put_job(m.url, "app")
                    chunk = await process.stdout.receive_some(4096)
                    assert chunk, "schedctl events ended"
                    buffer += chunk
                    *done, rest = buffer.decode().split("\n")
                    buffer = rest.encode()
                    lines.extend(done)
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C: how it ends
            with trio.fail_after(10):
                assert await process.wait() == 0
    assert [line.split()[1:3] for line in lines] == [["ready", "-"], ["job.saved", "app"]]


async def test_a_master_started_without_etcd_serves_streams_and_resets_them_when_it_is_back(
        tmp_path, etcd_factory):
    etcd = etcd_factory()
    etcd.stop()  # the master starts anyway (DESIGN §12) and waits for it
    config = make_config(tmp_path, etcd.endpoint, "/early/")
    async with trio.open_nursery() as nursery:
        addresses, inboxes = open_mailboxes(config)
        ctx = MasterContext.create(config)
        async with open_etcd(config.etcd_endpoints, timeout_s=1.0) as client:
            services = Services.create(ctx, client, addresses.workers)
            root = build_tree(ctx, inboxes, client, services)
            with trio.fail_after(30):
                started = await nursery.start(root.run)
            reader = Reader()
            await nursery.start(read_events, started["http"][0], reader)
            await reader.count("ready", 1)
            await trio.to_thread.run_sync(etcd.start)
            await reader.count("reset", 1, timeout_s=30)
            await client.put(ctx.keyspace.job("after"), b'{"command": "true"}')
            await reader.count("job.saved", 1)
            root.request_stop()
    assert reader.kinds() == ["ready", "reset", "job.saved"]
