"""Kill latency, SIGKILL of one of three workers, and one cut off from etcd.

    python -m benchmarks.faults [--kills 20] [--jobs 60] [--before-s 8] [--after-s 20]
                                [--rounds 1] [--partition-rounds 1] [--quorum-rounds 1]
                                [--skip kill,failover,partition,quorum]

1. kill: one worker runs ``sleep 300`` (a manual run); we ask for a kill and time it
   until every process of the run's group is gone (read from /proc, not from the
   worker): through the etcd kill key (``killer/<name>`` = ``{"runId": ...}``, what the
   master writes) and, when ``python -m master`` is available, through the master's
   API (``POST /api/v1/jobs/<name>/kill``, bearer token), ``--kills`` times each.
   Target: p99 <= 250 ms.
2. failover: three workers, ``--jobs`` jobs every second (spread); one worker gets
   SIGKILL after ``--before-s``. The job itself appends "job planned lateness" to a
   file, so that a fire counts as run even when its record died in the victim's memory
   (a SIGKILLed LogSink loses what it had not written yet; that is why the file, not the
   store, is the ground truth here). Reports fires missed (target 0), duplicates, and
   the lateness before the kill, in the seconds after it (until the victim's session
   lease has expired), and after; and how many of the victim's fires their own process
   started after the kill (claimed, not yet told to start: ``worker/executor/orphan.py``).
   ``--rounds N`` repeats it with a new fleet each time, killing at a random phase of
   the second, and tabulates the rounds (a kill lands in a claim's few milliseconds
   only now and then: one round proves little).
3. partition: three workers, ``--jobs`` jobs every second; one reaches etcd through a
   TCP proxy that stops forwarding, released after its lease expired and before it
   could; fires doubled, missed and recovered, the times to take over and to come
   back, records lost (``benchmarks/fault_partition.py`` says how).
4. quorum: two of a 3-member etcd cluster's members killed for ``--outage-s``; see
   ``benchmarks/fault_quorum.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import trio

from cluster.etcd import Etcd, open_etcd
from cluster.keyspace import Keyspace, encode_kill_value
from cluster.store import RunStatus
from worker.scheduler.records import ORPHAN_NOTE

from . import fault_partition
from ._ledger import ledger_command, read_ledger
from ._load import Load, put_jobs
from ._machine import machine_info, machine_line
from ._procs import alive, group_members, has_env, pids_with_cmdline
from ._progress import Progress
from ._records import read_records, status_counts
from ._report import RESULTS_DIR, write_json, write_text
from ._servers import ROOT, etcd_server, scratch_dir, services
from ._stats import Spread
from ._timing import next_second_ms, sleep_until_ms, wall_ms
from ._workers import Fleet, wait_registered
from .fault_quorum import add_arguments as add_quorum_arguments, quorum_report, run_quorum

KILL_JOB = "kill-victim"
START_TIMEOUT_S = 10.0
GONE_TIMEOUT_S = 10.0
POLL_S = 0.0005
SESSION_TTL_S = 10  # the worker's default


# -- kill latency ---------------------------------------------------------------------


class Master:
    """``python -m master`` on a free loopback port, with a token (in its environment:
    a command line is visible to every user in ``ps``)."""

    def __init__(self, etcd_endpoint: str, prefix: str, db_url: str, log_path: Path) -> None:
        self.port = services().free_port()
        self.token = secrets.token_hex(16)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "master", "--etcd", etcd_endpoint, "--prefix", prefix,
                 "--db", db_url, "--port", str(self.port), "--log-level", "WARNING"],
                env={**os.environ, "SCHEDULER_API_TOKEN": self.token},
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)
        self.log_path = log_path

    @staticmethod
    def available() -> bool:
        return (ROOT / "src" / "master" / "__main__.py").exists()

    async def wait_ready(self, client: "object", timeout_s: float = 30.0) -> None:
        with trio.fail_after(timeout_s):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"master exited: {self.log_path.read_text()[-2000:]}")
                try:
                    response = await client.get(f"{self.url}/healthz")  # type: ignore[attr-defined]
                    if response.status_code == 200:
                        return
                except Exception:  # noqa: BLE001  (not listening yet)
                    pass
                await trio.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def start_run(etcd: Etcd, ks: Keyspace, marker: str) -> tuple[str, list[int]]:
    """Ask for a manual run; return its run id and the pids of its process group.

    The run's bash is told apart from earlier ones by its ``SCHEDULER_RUN_ID``.
    """
    run_id = uuid.uuid4().hex
    await etcd.put(ks.trigger(KILL_JOB, run_id), json.dumps({"requestedBy": "bench"}))
    with trio.fail_after(START_TIMEOUT_S):
        while True:
            for pid in pids_with_cmdline(marker):
                if not has_env(pid, f"SCHEDULER_RUN_ID={run_id}"):
                    continue
                members = group_members(pid)
                if pid in members and len(members) >= 2:  # bash and its sleep
                    return run_id, members
            await trio.sleep(0.01)


async def wait_gone(pids: list[int]) -> None:
    with trio.fail_after(GONE_TIMEOUT_S):
        while any(alive(p) for p in pids):
            await trio.sleep(POLL_S)


async def kill_latencies(etcd: Etcd, ks: Keyspace, kills: int, progress: Progress,
                         api: tuple[object, Master] | None) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"etcd": [], "api": []} if api else {"etcd": []}
    marker = f"kill-bench-{uuid.uuid4().hex}"
    await put_jobs(etcd, ks, [{"name": KILL_JOB, "command": f"sleep 300; : {marker}",
                               "cronExpr": "@yearly", "concurrency": "allow"}])
    await trio.sleep(0.5)  # the workers have the job before the first run-now
    for i in range(kills):
        for path in out:
            run_id, pids = await start_run(etcd, ks, marker)
            started = time.perf_counter()
            if path == "etcd":
                await etcd.put(ks.killer(KILL_JOB), encode_kill_value(run_id))
            else:
                client, master = api  # type: ignore[misc]
                response = await client.post(  # type: ignore[attr-defined]
                    f"{master.url}/api/v1/jobs/{KILL_JOB}/kill", json={"runId": run_id},
                    headers={"Authorization": f"Bearer {master.token}"})
                if response.status_code != 202:
                    raise RuntimeError(f"kill API answered {response.status_code}: {response.text}")
            await wait_gone(pids)
            out[path].append((time.perf_counter() - started) * 1000)
            progress.update(f"kill {i + 1}/{kills} via {path}: {out[path][-1]:.0f} ms")
            await trio.sleep(0.2)  # the run's record and key release settle
    return out


async def run_kill(args: argparse.Namespace, etcd_endpoint: str, base: Path,
                   progress: Progress) -> dict[str, object]:
    prefix = f"/faults-kill-{uuid.uuid4().hex[:8]}/"
    ks = Keyspace(prefix)
    db_url = f"sqlite:///{base / 'kill-runs.db'}"
    fleet = Fleet(etcd_endpoint, prefix, db_url, base / "kill", ["--kill-grace-s", "1"])
    fleet.base_dir.mkdir(parents=True, exist_ok=True)
    master = Master(etcd_endpoint, prefix, db_url, base / "master.log") \
        if Master.available() and not args.no_api else None
    try:
        async with open_etcd([etcd_endpoint]) as etcd:
            fleet.add("k0")
            await wait_registered(etcd, ks, {"k0"}, fleet)
            if master is None:
                latencies = await kill_latencies(etcd, ks, args.kills, progress, None)
            else:
                import httpx

                async with httpx.AsyncClient(timeout=10) as client:
                    await master.wait_ready(client)
                    latencies = await kill_latencies(etcd, ks, args.kills, progress,
                                                     (client, master))
    finally:
        if master is not None:
            master.stop()
        await trio.to_thread.run_sync(fleet.stop)
    result = {path: {**Spread.of(v).__dict__, "n": len(v), "samples_ms": [round(x, 1) for x in v]}
              for path, v in latencies.items()}
    progress.done("kill: " + ", ".join(f"{p} p50 {r['p50_ms']:.0f} ms p99 {r['p99_ms']:.0f} ms"
                                       for p, r in result.items()))
    return result


# -- failover -------------------------------------------------------------------------


async def run_failover(args: argparse.Namespace, etcd_endpoint: str, base: Path,
                       progress: Progress, *, kill_phase_ms: int = 500) -> dict[str, object]:
    prefix = f"/faults-fo-{uuid.uuid4().hex[:8]}/"
    ks = Keyspace(prefix)
    base.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{base / 'failover-runs.db'}"
    ledger = base / "ledger.txt"
    load = Load("spread", args.jobs, (wall_ms() // 1000 - 60) * 1000)
    fleet = Fleet(etcd_endpoint, prefix, db_url, base / "failover",
                  ["--session-ttl-s", str(args.session_ttl_s)])
    fleet.base_dir.mkdir(parents=True, exist_ok=True)
    async with open_etcd([etcd_endpoint]) as etcd:
        await put_jobs(etcd, ks, [load.spec(i, ledger_command(ledger)) for i in range(args.jobs)])
        try:
            workers = fleet.start(3, id_prefix="f")
            await wait_registered(etcd, ks, {w.worker_id for w in workers}, fleet)
            start_ms = next_second_ms(wall_ms(), plus_s=2)
            end_ms = start_ms + int((args.before_s + args.after_s) * 1000)
            kill_at_ms = start_ms + int(args.before_s * 1000) + kill_phase_ms
            killed_ms: int | None = None
            while (now := wall_ms()) < end_ms:
                if killed_ms is None and now >= kill_at_ms:
                    killed_ms = wall_ms()
                    workers[1].kill()
                    continue
                progress.step("failover", (now - start_ms) / 1000, (end_ms - start_ms) / 1000,
                              "victim killed" if killed_ms else "")
                await sleep_until_ms(min(kill_at_ms if killed_ms is None else end_ms, now + 500))
            await trio.sleep(2.0)
        finally:
            await trio.to_thread.run_sync(fleet.stop)
        await etcd.delete_prefix(prefix)
    records = [r for r in await read_records(db_url, since_ms=start_ms - 10_000)
               if start_ms <= r.plan_time < end_ms]
    assert killed_ms is not None
    return failover_figures(load, read_ledger(ledger), records, start_ms, end_ms, killed_ms,
                            args.session_ttl_s)


def failover_figures(load: Load, ran: list[tuple[str, int, int]], records: list, start_ms: int,
                     end_ms: int, killed_ms: int, ttl_s: int) -> dict[str, object]:
    ran = [r for r in ran if start_ms <= r[1] < end_ms]
    due = {(job, planned) for planned, job in load.fires(start_ms, end_ms)}
    counts = Counter((job, planned) for job, planned, _ in ran)
    lease_gone_ms = killed_ms + (ttl_s + 2) * 1000

    def lateness(lo: int, hi: int) -> dict[str, float | None]:
        return Spread.of(late for _, planned, late in ran if lo <= planned < hi).__dict__

    return {
        "jobs": load.jobs, "due": len(due), "ran": len(ran),
        "missed": len(due - set(counts)),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "killed_at_s": round((killed_ms - start_ms) / 1000, 2), "session_ttl_s": ttl_s,
        "lateness_before": lateness(start_ms, killed_ms),
        "lateness_after_kill_until_lease_gone": lateness(killed_ms, lease_gone_ms),
        "lateness_after": lateness(lease_gone_ms, end_ms),
        "record_statuses": status_counts(records),
        # Fires the victim had claimed but not yet told to start when it died: their own
        # process settled them with etcd and started them (``worker/executor/orphan.py``).
        "orphaned": sum(1 for r in records if r.status is RunStatus.LOST and ORPHAN_NOTE in r.err),
        "records_missing": len(due) - len({(r.job_name, r.plan_time) for r in records}),
    }


# -- main -----------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    progress = Progress("faults")
    out: dict[str, object] = {}
    with scratch_dir("faults", keep=args.keep) as base, etcd_server(base) as etcd:
        if "kill" not in args.skip:
            out["kill_ms"] = await run_kill(args, etcd.endpoint, base, progress)
        if "failover" not in args.skip:
            rounds = []
            for n in range(args.rounds):
                # One round: the mid-second kill. More: each at a random phase of its second.
                phase_ms = 500 if args.rounds == 1 else random.randrange(1000)
                rounds.append(await run_failover(args, etcd.endpoint, base / f"failover-{n}",
                                                 progress, kill_phase_ms=phase_ms))
                progress.done(f"failover round {n + 1}/{args.rounds}: missed "
                              f"{rounds[-1]['missed']}, duplicates {rounds[-1]['duplicates']}")
            out["failover"] = rounds[-1]
            if args.rounds > 1:
                out["failover_rounds"] = [round_summary(r) for r in rounds]
        if "partition" not in args.skip:
            out["partition"] = await fault_partition.run_cases(args, etcd.endpoint, base,
                                                               progress)
    if "quorum" not in args.skip:  # a 3-member cluster of its own each round
        with scratch_dir("faults-quorum", keep=args.keep) as base:
            out["quorum"] = await run_quorum(args, base, progress)
    return out


def round_summary(fo: dict) -> dict[str, object]:
    around = fo["lateness_after_kill_until_lease_gone"]
    return {"killed_at_s": fo["killed_at_s"], "due": fo["due"], "missed": fo["missed"],
            "duplicates": fo["duplicates"], "orphaned": fo["orphaned"],
            "max_ms_around_kill": around["max_ms"]}


def report(result: dict[str, object]) -> str:
    lines = []
    kill = result.get("kill_ms")
    if kill:
        lines += ["| kill path | n | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
        lines += [f"| {p} | {r['n']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |"
                  for p, r in kill.items()]  # type: ignore[union-attr]
    fo = result.get("failover")
    if fo:
        def fmt(s: dict) -> str:
            return "-" if s["p50_ms"] is None else \
                f"p50 {s['p50_ms']:.0f} / p99 {s['p99_ms']:.0f} / max {s['max_ms']:.0f} ms"
        lines += ["", f"Failover (3 workers, {fo['jobs']} fires/s, SIGKILL at "  # type: ignore[index]
                  f"{fo['killed_at_s']} s, session TTL {fo['session_ttl_s']} s): "  # type: ignore[index]
                  f"due {fo['due']}, ran {fo['ran']}, **missed {fo['missed']}**, "  # type: ignore[index]
                  f"duplicates {fo['duplicates']}", "",  # type: ignore[index]
                  f"- lateness before the kill: {fmt(fo['lateness_before'])}",  # type: ignore[index]
                  f"- from the kill until the victim's lease is gone: "
                  f"{fmt(fo['lateness_after_kill_until_lease_gone'])}",  # type: ignore[index]
                  f"- after: {fmt(fo['lateness_after'])}",  # type: ignore[index]
                  f"- run records: {fo['record_statuses']}, fires without a record "  # type: ignore[index]
                  f"{fo['records_missing']} (records the victim held in memory); started by "  # type: ignore[index]
                  f"their own process after the kill (orphan): {fo['orphaned']}"]  # type: ignore[index]
    rounds = result.get("failover_rounds")
    if rounds:
        lines += ["", "| round | kill at s | due | missed | duplicates | orphaned | max ms around the kill |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {n} | {r['killed_at_s']} | {r['due']} | {r['missed']} | {r['duplicates']} | "
                  f"{r['orphaned']} | {r['max_ms_around_kill']:.0f} |"
                  for n, r in enumerate(rounds, 1)]  # type: ignore[arg-type]
        lines.append(f"\nOver {len(rounds)} rounds: missed "  # type: ignore[arg-type]
                     f"{sum(r['missed'] for r in rounds)}, duplicates "  # type: ignore[index]
                     f"{sum(r['duplicates'] for r in rounds)}")  # type: ignore[index]
    lines += fault_partition.report(result.get("partition", []))  # type: ignore[arg-type]
    lines += quorum_report(result.get("quorum"))  # type: ignore[arg-type]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills per path")
    parser.add_argument("--no-api", action="store_true", help="etcd kill key only")
    parser.add_argument("--jobs", type=int, default=60, help="failover and partition: fires per second")
    parser.add_argument("--before-s", type=float, default=8.0)
    parser.add_argument("--after-s", type=float, default=20.0)
    parser.add_argument("--session-ttl-s", type=int, default=SESSION_TTL_S)
    parser.add_argument("--skip", default="",
                        help="cases to skip, comma-separated: kill, failover, partition, quorum")
    parser.add_argument("--rounds", type=int, default=1,
                        help="failover rounds, each with a new fleet and a kill at a random "
                             "phase of its second")
    fault_partition.add_arguments(parser)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--tag", default="", help="suffix of the results files")
    add_quorum_arguments(parser)
    args = parser.parse_args(argv)
    meta = machine_info("benchmarks.faults")
    result = trio.run(main_async, args)
    text = report(result)
    print(text)
    stem = f"faults-{args.tag}" if args.tag else "faults"
    write_json(RESULTS_DIR / f"{stem}.json", {"meta": meta, **result})
    write_text(RESULTS_DIR / f"{stem}.md", f"# Faults\n\nMachine: {machine_line(meta)}\n\n"
               f"Command: `{meta['command']}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
