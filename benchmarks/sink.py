"""The LogSink into MariaDB: records per second, and a MariaDB outage.

    python -m benchmarks.sink [--records 50000] [--batch 100,1000]
                              [--rate 1000] [--before-s 10] [--outage-s 30] [--after-s 10]

Both parts drive the worker's real ``LogSink`` actor in this process (as the worker
does: ``Write`` messages into its bounded mailbox) against a private MariaDB:

1. throughput: ``--records`` run records of ~200 bytes of output sent as fast as the
   mailbox takes them, timed from the first Write to the answer of a Flush sent after
   the last; once per ``--batch`` size (the worker's ``--job-log-batch-size``).
2. outage: records at ``--rate`` per second for before + outage + after seconds, with
   MariaDB stopped for ``--outage-s`` in the middle. Reports records lost (sent minus
   distinct run ids in the table: must be 0), spilled to disk, and the time to drain:
   from MariaDB accepting connections again until every record sent before that moment
   is in the table.

Targets (issue 5): >= 20,000 records/s; 0 lost across the outage.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from actors import Address, call
from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, open_store
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.log_sink.actor import LogSink
from worker.log_sink.messages import Flush, LogSinkMsg, Write

from ._machine import machine_info, machine_line
from ._progress import Progress
from ._report import RESULTS_DIR, write_json, write_text
from ._servers import mariadb_server, scratch_dir

OUTPUT = ("line of job output " * 11)[:200]  # ~200 bytes, a short cron job's output
T0_MS = 1_700_000_000_000
FLUSH_TIMEOUT_S = 300.0


def record(prefix: str, i: int) -> RunRecord:
    return RunRecord(
        run_id=f"{prefix}-{i:08d}", job_name=f"job-{i % 50}", worker="bench",
        command="/usr/local/bin/report --daily", output=OUTPUT, err="", exit_code=0,
        status="succeeded", trigger="schedule", attempt=1, plan_time=T0_MS + i,
        schedule_time=T0_MS + i, start_time=T0_MS + i + 2, end_time=T0_MS + i + 40,
    )


@dataclasses.dataclass
class RunningSink:
    sink: LogSink
    address: Address[LogSinkMsg]

    async def flush(self) -> None:
        with trio.fail_after(FLUSH_TIMEOUT_S):
            await call(self.address, Flush)


@asynccontextmanager
async def running_sink(db_url: str, spill_dir: Path, batch: int) -> AsyncIterator[RunningSink]:
    """The LogSink actor with the worker's defaults except the store and batch size."""
    cfg = dataclasses.replace(Config(), db_url=db_url, spill_dir=str(spill_dir),
                              job_log_batch_size=batch)
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, f"sink-bench-{batch}", Keyspace("/cron/"), SystemClock())
    sink = LogSink(inboxes.log_sink, ctx)
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.run)
        try:
            yield RunningSink(sink, peers.log_sink)
        finally:
            sink.request_stop()


async def throughput(db_url: str, base: Path, batch: int, total: int,
                     progress: Progress) -> dict[str, object]:
    prefix = f"tp{batch}"
    recs = [record(prefix, i) for i in range(total)]
    async with running_sink(db_url, base / f"spill-tp-{batch}", batch) as h:
        for r in recs[:10]:
            await h.address.send(Write(r))
        await h.flush()  # table created, connection open: not part of the measure
        started = time.perf_counter()
        for i, r in enumerate(recs[10:], 1):
            await h.address.send(Write(r))
            if i % 5000 == 0:
                progress.update(f"throughput batch {batch}: {i}/{total} sent")
        await h.flush()
        elapsed_s = time.perf_counter() - started
        stats = h.sink.statistics_detail()
    rate = (total - 10) / elapsed_s
    progress.done(f"throughput batch {batch}: {rate:,.0f} records/s")
    return {"batch": batch, "records": total, "seconds": round(elapsed_s, 2),
            "records_per_s": round(rate), "written": stats.written_total,
            "spilled": stats.spilled_total}


async def outage(server: object, db_url: str, base: Path, args: argparse.Namespace,
                 progress: Progress) -> dict[str, object]:
    prefix = "outage"
    total_s = args.before_s + args.outage_s + args.after_s
    sent = 0
    marks: dict[str, float] = {}
    async with running_sink(db_url, base / "spill-outage", args.outage_batch) as h:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_toggle_server, server, args, marks, progress)
            started = trio.current_time()
            while (elapsed := trio.current_time() - started) < total_s:
                due = int(elapsed * args.rate)
                while sent < due:
                    await h.address.send(Write(record(prefix, sent)))
                    sent += 1
                stats = h.sink.statistics_detail()
                progress.step("outage", elapsed, total_s,
                              f"sent {sent}, written {stats.written_total}, "
                              f"spilled {stats.spilled_total}, store "
                              f"{'up' if stats.store_up else 'DOWN'}")
                await trio.sleep(0.01)
        # Every record sent before MariaDB was back must be written for the backlog to
        # be drained (the rate is steady, so their count follows from the time).
        sent_at_restart = int((marks["up"] - started) * args.rate) if "up" in marks else sent
        drained_at = await _wait_written(h, min(sent_at_restart, sent))
        await h.flush()
        stats = h.sink.statistics_detail()
    async with open_store(db_url) as store:
        stored = await store.count()
    return {
        "rate_per_s": args.rate, "outage_s": args.outage_s, "sent": sent, "stored": stored,
        "lost": sent - stored, "spilled": stats.spilled_total, "replayed": stats.replayed_total,
        "rejected": stats.rejected_total,
        "restart_s": round(marks.get("up", 0) - marks.get("down", 0), 1),
        "drain_s": None if drained_at is None or "up" not in marks
        else round(drained_at - marks["up"], 2),
    }


async def _toggle_server(server: object, args: argparse.Namespace, marks: dict[str, float],
                         progress: Progress) -> None:
    await trio.sleep(args.before_s)
    marks["down"] = trio.current_time()
    await trio.to_thread.run_sync(server.stop)  # type: ignore[attr-defined]
    await trio.sleep(max(0.0, marks["down"] + args.outage_s - trio.current_time()))
    await trio.to_thread.run_sync(server.start)  # type: ignore[attr-defined]
    marks["up"] = trio.current_time()


async def _wait_written(h: RunningSink, target: int) -> float | None:
    """Trio time at which the sink had written ``target`` records (None: not in time)."""
    with trio.move_on_after(FLUSH_TIMEOUT_S):
        while h.sink.statistics_detail().written_total < target:
            await trio.sleep(0.05)
        return trio.current_time()
    return None


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    progress = Progress("sink")
    out: dict[str, object] = {"throughput": [], "outage": None}
    with scratch_dir("sink", keep=args.keep) as base, mariadb_server(base) as server:
        for batch in args.batch_list:
            name = f"tp_{batch}"
            server.sql(f"CREATE DATABASE {name}")
            out["throughput"].append(  # type: ignore[union-attr]
                await throughput(server.url(name), base, batch, args.records, progress))
        if args.outage_s > 0:
            server.sql("CREATE DATABASE outage")
            out["outage"] = await outage(server, server.url("outage"), base, args, progress)
            progress.done(f"outage: {out['outage']}")
    return out


def report(result: dict[str, object]) -> str:
    lines = ["| batch | records | seconds | records/s |", "|---|---|---|---|"]
    lines += [f"| {t['batch']} | {t['records']} | {t['seconds']} | {t['records_per_s']:,} |"
              for t in result["throughput"]]  # type: ignore[union-attr]
    o = result["outage"]
    if o:
        lines += ["", f"Outage of {o['outage_s']} s at {o['rate_per_s']} records/s: "  # type: ignore[index]
                  f"sent {o['sent']}, stored {o['stored']}, **lost {o['lost']}**, "  # type: ignore[index]
                  f"spilled {o['spilled']}, replayed {o['replayed']}, "  # type: ignore[index]
                  f"drain {o['drain_s']} s after MariaDB was back"]  # type: ignore[index]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", default="100,1000", help="batch sizes for the throughput")
    parser.add_argument("--rate", type=int, default=1000, help="records/s during the outage run")
    parser.add_argument("--outage-batch", type=int, default=100,
                        help="batch size in the outage run (the worker's default)")
    parser.add_argument("--before-s", type=float, default=10.0)
    parser.add_argument("--outage-s", type=float, default=30.0, help="0 skips the outage run")
    parser.add_argument("--after-s", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    args.batch_list = [int(x) for x in args.batch.split(",")]
    meta = machine_info("benchmarks.sink")
    result = trio.run(main_async, args)
    text = report(result)
    print(text)
    write_json(RESULTS_DIR / "sink.json", {"meta": meta, **result})
    write_text(RESULTS_DIR / "sink.md", f"# Sink\n\nMachine: {machine_line(meta)}\n\n"
               f"Command: `{meta['command']}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
