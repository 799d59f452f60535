"""The event stream under load: does GET /api/v1/events keep up with 500 finished runs/s?

    python -m benchmarks.events [--rate 500] [--seconds 20] [--batch 10] [--clients 1]

A real ``python -m master`` on private etcd and MariaDB (``_servers``); this process
writes run records into MariaDB as workers' LogSinks do (``--batch`` records per
transaction, ``--rate`` records per second in all), each stamped with the wall clock
just before its batch is written (``endTime``), and reads the stream with
``--clients`` clients (httpx, as the UI reads it). For each ``run.finished`` event a
client gets: the delay from that stamp to its arrival (so the write's own commit is
part of it), and whether it is one of the records written, once. Reports the delays'
p50/p90/p99/max, the events per second the clients received, and records missed or
received twice (both must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio

from cluster.store import RunRecord, open_store
from master.cli._sse import SseParser

from ._machine import machine_info, machine_line
from ._progress import Progress
from ._report import RESULTS_DIR, write_json, write_text
from ._servers import ROOT, etcd_server, mariadb_server, scratch_dir, services
from ._stats import Spread

START_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 30.0


def wall_ms() -> float:
    return time.time() * 1000


def record(i: int, stamp_ms: int) -> RunRecord:
    return RunRecord(
        run_id=f"ev-{i:08d}", job_name=f"job-{i % 50}", worker="bench", command="true",
        output="ok\n", err="", exit_code=0, status="succeeded", trigger="schedule",
        attempt=1, plan_time=stamp_ms - 40, schedule_time=stamp_ms - 40,
        start_time=stamp_ms - 30, end_time=stamp_ms)


class MasterProcess:
    """``python -m master`` on a free port; its token in the environment, not argv."""

    def __init__(self, etcd: str, db_url: str, log_path: Path, prefix: str = "/bench/",
                 *extra: str) -> None:
        self.port = services().free_port()
        self.token = secrets.token_hex(16)
        env = {**os.environ, "SCHEDULER_API_TOKEN": self.token}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "master", "--etcd", etcd, "--prefix", prefix,
                 "--db", db_url, "--port", str(self.port), "--log-level", "WARNING", *extra],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient() as client:
            with trio.fail_after(START_TIMEOUT_S):
                while True:
                    if self.process.poll() is not None:
                        raise RuntimeError("the master exited")
                    try:
                        if (await client.get(self.url + "/healthz")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Client:
    def __init__(self) -> None:
        self.delays_ms: list[float] = []
        self.seen: dict[str, int] = {}
        self.first_ms: float | None = None
        self.last_ms: float | None = None

    async def read(self, url: str, token: str, *,
                   task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        parser = SseParser()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=None)) as c:
            async with c.stream("GET", "/api/v1/events", headers=headers) as answer:
                assert answer.status_code == 200, answer.status_code
                task_status.started()
                async for text in answer.aiter_text():
                    now = wall_ms()
                    for event in parser.feed(text):
                        if event.event != "run.finished":
                            continue
                        data = json.loads(event.data)
                        self.delays_ms.append(now - data["endTime"])
                        self.seen[data["runId"]] = self.seen.get(data["runId"], 0) + 1
                        self.first_ms = self.first_ms or now
                        self.last_ms = now


async def write_records(db_url: str, rate: int, seconds: float, batch: int,
                        progress: Progress) -> int:
    total = int(rate * seconds)
    async with open_store(db_url) as store:
        await store.ping()
        started = trio.current_time()
        written = 0
        while written < total:
            due = trio.current_time() - started
            target = min(total, int(due * rate) + batch)
            while written < target:
                n = min(batch, total - written)
                stamp = int(wall_ms())
                await store.write_batch([record(written + k, stamp) for k in range(n)])
                written += n
            progress.step("writing", due, seconds, f"{written}/{total} records")
            await trio.sleep_until(started + written / rate)
    return total


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    progress = Progress("events")
    with scratch_dir("events", keep=args.keep) as base, etcd_server(base) as etcd, \
            mariadb_server(base) as db:
        master = MasterProcess(etcd.endpoint, db.url(), base / "master.log")
        try:
            await master.wait_ready()
            async with open_store(db.url()) as store:
                await store.ping()  # the table exists before the clients connect
            clients = [Client() for _ in range(args.clients)]
            async with trio.open_nursery() as nursery:
                for client in clients:
                    await nursery.start(client.read, master.url, master.token)
                await trio.sleep(1.0)  # the master's follower is positioned
                started = trio.current_time()
                total = await write_records(db.url(), args.rate, args.seconds, args.batch,
                                            progress)
                write_s = trio.current_time() - started
                with trio.move_on_after(DRAIN_TIMEOUT_S):
                    while any(len(c.seen) < total for c in clients):
                        await trio.sleep(0.1)
                nursery.cancel_scope.cancel()
        finally:
            master.stop()
    expected = {f"ev-{i:08d}" for i in range(total)}
    per_client = []
    for client in clients:
        spread = Spread.of(client.delays_ms)
        span_s = ((client.last_ms or 0) - (client.first_ms or 0)) / 1000
        per_client.append({
            "received": sum(client.seen.values()),
            "missed": len(expected - set(client.seen)),
            "twice": sum(1 for n in client.seen.values() if n > 1),
            "events_per_s": round(len(client.delays_ms) / span_s) if span_s else None,
            "delay_ms": {k: None if v is None else round(v, 1)
                         for k, v in vars(spread).items()},
        })
    progress.done(f"{per_client}")
    return {"rate_per_s": args.rate, "seconds": args.seconds, "batch": args.batch,
            "written": total, "write_s": round(write_s, 2),
            "written_per_s": round(total / write_s), "clients": per_client}


def report(result: dict[str, object]) -> str:
    lines = [f"{result['written']} records written in {result['write_s']} s "
             f"({result['written_per_s']}/s, batches of {result['batch']}).", "",
             "| client | received | missed | twice | events/s | p50 ms | p90 ms | p99 ms "
             "| max ms |", "|---|---|---|---|---|---|---|---|---|"]
    for i, c in enumerate(result["clients"], 1):  # type: ignore[arg-type]
        d = c["delay_ms"]
        lines.append(f"| {i} | {c['received']} | {c['missed']} | {c['twice']} | "
                     f"{c['events_per_s']} | {d['p50_ms']} | {d['p90_ms']} | {d['p99_ms']} | "
                     f"{d['max_ms']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500, help="records per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=10, help="records per transaction")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    meta = machine_info("benchmarks.events")
    result = trio.run(main_async, args)
    text = report(result)
    print(text)
    name = f"events-r{args.rate}-c{args.clients}"
    write_json(RESULTS_DIR / f"{name}.json", {"meta": meta, **result})
    write_text(RESULTS_DIR / f"{name}.md", f"# Events\n\nMachine: {machine_line(meta)}\n\n"
               f"Command: `{meta['command']}`\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
