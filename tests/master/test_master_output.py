"""GET /api/v1/runs/<runId>/output against hypercorn, etcd and MariaDB: a run's chunks
as they land, then ``end`` with its record's status; resuming with Last-Event-ID; a
run that is nowhere is a 404; the open streams are counted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio

from cluster.presence import RunningInfo
from cluster.store import OutputChunk, open_store
from master.cli._sse import SseEvent, SseParser

from events_testkit import serving_master
from master_testkit import AUTH, make_config, record

WAIT_S = 10.0


@pytest.fixture
def config(tmp_path, etcd_endpoint, etcd_prefix, mysql_url):
    return make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=mysql_url)


@dataclass
class Tail:
    status: int = 0
    events: list[SseEvent] = field(default_factory=list)
    ended: bool = False
    arrived: trio.Event = field(default_factory=trio.Event)

    def data(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.events if e.event == kind]

    async def until(self, done) -> None:
        with trio.fail_after(WAIT_S):
            while not done(self):
                self.arrived = trio.Event()
                await self.arrived.wait()


async def tail(url: str, run_id: str, out: Tail, last_id: str | None = None, *,
               task_status=trio.TASK_STATUS_IGNORED) -> None:
    headers = dict(AUTH)
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    parser = SseParser(last_id or "")
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0, read=None)) as c:
        async with c.stream("GET", f"/api/v1/runs/{run_id}/output", headers=headers) as answer:
            out.status = answer.status_code
            task_status.started()
            async for text in answer.aiter_text():
                out.events.extend(parser.feed(text))
                out.arrived.set()
    out.ended = True
    out.arrived.set()


def chunk(seq: int, stream: str = "out", data: str = "", run_id: str = "run-1") -> OutputChunk:
    return OutputChunk(run_id, seq, stream, data or f"line {seq}\n", 1_000 + seq)


async def test_a_stream_sends_chunks_as_they_land_then_end_with_the_status(config):
    async with serving_master(config) as m, open_store(config.db_url) as store, \
            trio.open_nursery() as nursery:
        await store.output.append([chunk(1)])
        t = Tail()
        await nursery.start(tail, m.url, "run-1", t)
        assert t.status == 200
        await t.until(lambda t: len(t.data("output")) == 1)
        assert m.metric("output_streams") == 1
        await store.output.append([chunk(2), chunk(3, "err", "oops ✓\n")])
        await t.until(lambda t: len(t.data("output")) == 3)
        assert [(d["stream"], d["data"]) for d in t.data("output")] == [
            ("out", "line 1\n"), ("out", "line 2\n"), ("err", "oops ✓\n")]
        assert [e.id for e in t.events] == ["1", "2", "3"]
        assert not t.ended  # no record yet: it goes on
        await store.output.append([chunk(4, "eof")])
        await trio.sleep(0.5)
        assert not t.ended and t.data("end") == []  # output over, record not there yet
        await store.write_batch([record("run-1", "app", output="line 1\nline 2\n",
                                        err="oops ✓\n", status="failed", exit_code=3)])
        await t.until(lambda t: t.ended)
        assert t.data("end") == [{"runId": "run-1", "status": "failed", "exitCode": 3,
                                  "endTime": 1_010, "outputTruncated": False}]
        assert [e.event for e in t.events] == ["output"] * 3 + ["eof", "end"]
        with trio.fail_after(WAIT_S):
            while m.metric("output_streams") != 0:
                await trio.sleep(0.05)


async def test_last_event_id_resumes_after_that_chunk(config):
    async with serving_master(config) as m, open_store(config.db_url) as store:
        await store.output.append([chunk(i) for i in range(1, 5)] + [chunk(5, "trunc", "too much")]
                                  + [chunk(6, "eof")])
        await store.write_batch([record("run-1", "app", output="x")])
        t = Tail()
        await tail(m.url, "run-1", t, last_id="3")
        assert [(e.id, e.event) for e in t.events] == [
            ("4", "output"), ("5", "truncated"), ("6", "eof"), ("6", "end")]
        assert t.data("truncated")[0]["reason"] == "too much"
        assert t.data("end")[0]["status"] == "succeeded"


async def test_a_run_that_printed_nothing_ends_at_once_with_its_record(config):
    async with serving_master(config) as m, open_store(config.db_url) as store:
        await store.write_batch([record("quiet", "app", output="", err="[scheduler] run killed: x",
                                        status="killed", exit_code=-15)])
        t = Tail()
        with trio.fail_after(3):
            await tail(m.url, "quiet", t)
        assert [e.event for e in t.events] == ["end"]
        assert t.data("end")[0]["status"] == "killed"


async def test_a_running_run_streams_what_it_prints_later(config):
    async with serving_master(config) as m, open_store(config.db_url) as store, \
            trio.open_nursery() as nursery:
        running = RunningInfo("run-2", "app", "w1", 1_000, 1, "schedule", 2_000)
        await m.etcd.put(m.ctx.keyspace.running("app", "run-2"), running.to_bytes())
        t = Tail()
        await nursery.start(tail, m.url, "run-2", t)
        assert t.status == 200
        await store.output.append([chunk(1, run_id="run-2"), chunk(2, "eof", run_id="run-2")])
        await store.write_batch([record("run-2", "app")])
        await t.until(lambda t: t.ended)
        assert [e.event for e in t.events] == ["output", "eof", "end"]


async def test_errors_are_plain_answers(config):
    async with serving_master(config) as m, httpx.AsyncClient(base_url=m.url) as client:
        nowhere = await client.get("/api/v1/runs/nothing-here/output", headers=AUTH)
        assert nowhere.status_code == 404
        assert nowhere.json()["error"]["code"] == "not_found"
        bad = await client.get("/api/v1/runs/x/output",
                               headers={**AUTH, "Last-Event-ID": "abc"})
        assert bad.status_code == 400
        assert (await client.get("/api/v1/runs/x/output")).status_code == 401
        # The run's own route is unchanged beside it.
        assert (await client.get("/api/v1/runs/nothing-here", headers=AUTH)).status_code == 404


async def test_the_masters_stop_ends_the_streams_and_refuses_new_ones(config):
    async with serving_master(config) as m, trio.open_nursery() as nursery:
        running = RunningInfo("run-3", "app", "w1", 1_000, 1, "schedule", 2_000)
        await m.etcd.put(m.ctx.keyspace.running("app", "run-3"), running.to_bytes())
        t = Tail()
        await nursery.start(tail, m.url, "run-3", t)
        assert t.status == 200 and m.metric("output_streams") == 1
        m.services.close_streams()  # what the HTTP child's stop calls
        await t.until(lambda t: t.ended)
        assert t.events == [] and m.metric("output_streams") == 0
        async with httpx.AsyncClient(base_url=m.url) as client:
            again = await client.get("/api/v1/runs/run-3/output", headers=AUTH)
        assert again.status_code == 503
