"""How soon the jobs page (and the dashboard) is usable with 10,000 jobs.

    python -m benchmarks.ui_load [--jobs 10000] [--records 1000000] [--loads 10]

A real ``python -m master`` on the shared test servers (``/tmp/svc/env.txt``:
SCHEDULER_TEST_ETCD and SCHEDULER_TEST_MYSQL): its own etcd prefix and a MariaDB
database of its own (dropped after), ``--jobs`` jobs put straight into etcd (a mix of
expressions and zones) and ``--records`` run records spread over them, just before the
master starts. Then Chromium (Playwright, /usr/bin/chromium) loads each page
``--loads`` times, each in a fresh context with the token already in sessionStorage:
the time from navigation to the page usable is taken, median and p99. "Usable": for
#jobs, the table shows its first page (100 rows) and a row's "Run now" button is
enabled, laid out and the element at its centre; for #dashboard, the counts show the
number of jobs and the runs chart is drawn. The page itself notes the moment
(``performance.now()`` from the navigation's start, checked at every animation frame);
Playwright's own wait is timed too, from before ``goto`` ("wait": its checks back off
to 500 ms apart, so it can add up to 500 ms) and a row's "Run now" must then pass its
actionability check (a click trial). Each load's profile: the fresh context, the HTML
received, the modules run (DOMContentLoaded), the page's API request (start, end) and
the rest (rendering). Also the API alone: the paged list (what the page asks) and the
whole list, each timed ``--loads`` times with httpx.

``--webapp`` and PYTHONPATH choose the UI and the master measured (an older tree:
before/after on the same machine and load); ``--tag`` names the results files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
import uuid
from dataclasses import asdict
from pathlib import Path

import httpx
import trio

from cluster.etcd import Put, open_etcd
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec
from cluster.store import RunRecord, open_store

from .events import MasterProcess
from ._machine import machine_info, machine_line
from ._report import RESULTS_DIR, write_json, write_text
from ._servers import ROOT, services
from ._stats import Spread

EXPRESSIONS = ("*/5 * * * * *", "30 2 * * *", "@every 1m30s", "0 9 * * 1-5", "0 0 L * *",
               "0 */2 * * *", "15 10 * * 5L")
STATUSES = ("succeeded",) * 8 + ("failed", "timeout")
TOKEN_KEY = "scheduler.apiToken"  # webapp/client.js
PAGE_ROWS = 100


def shared_servers() -> tuple[str, str]:
    env = dict(os.environ)
    path = Path("/tmp/svc/env.txt")
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            env.setdefault(key.strip(), value.strip())
    try:
        return env["SCHEDULER_TEST_ETCD"], env["SCHEDULER_TEST_MYSQL"]
    except KeyError:
        raise SystemExit("ui_load: no shared servers (SCHEDULER_TEST_ETCD, "
                         "SCHEDULER_TEST_MYSQL; see /tmp/svc/env.txt)") from None


async def load_jobs(etcd_endpoint: str, prefix: str, jobs: int) -> None:
    ks = Keyspace(prefix)
    async with open_etcd([etcd_endpoint]) as etcd:
        ops = [Put(ks.job(f"job-{j:05d}"), JobSpec.from_json(json.dumps({
            "name": f"job-{j:05d}", "command": f"echo {j}",
            "cronExpr": EXPRESSIONS[j % len(EXPRESSIONS)],
            "timezone": "Europe/Berlin" if j % 2 else "UTC",
            "paused": j % 97 == 0}).encode()).to_bytes()) for j in range(jobs)]
        for first in range(0, jobs, 100):  # etcd allows 128 operations per transaction
            await etcd.txn([], ops[first:first + 100])


async def drop_prefix(etcd_endpoint: str, prefix: str) -> None:
    async with open_etcd([etcd_endpoint]) as etcd:
        await etcd.delete_prefix(prefix)


async def load_records(db_url: str, jobs: int, records: int) -> None:
    now_ms = int(time.time() * 1000)
    async with open_store(db_url) as store:
        for first in range(0, records, 5_000):
            batch = []
            for i in range(first, min(records, first + 5_000)):
                start = now_ms - (records - i) * 50  # the newest last, 50 ms apart
                batch.append(RunRecord(
                    run_id=f"r{i:08d}", job_name=f"job-{i % jobs:05d}", worker="bench",
                    command="true", output="", err="", exit_code=0,
                    status=STATUSES[i % len(STATUSES)], trigger="schedule", attempt=1,
                    plan_time=start, schedule_time=start, start_time=start,
                    end_time=start + 20 + i % 500))
            await store.write_batch(batch)
            if first % 100_000 == 0:
                print(f"  records {first:,}/{records:,}", file=sys.stderr, flush=True)


async def time_migration(db_url: str, started: float) -> float:
    """ms from the master's process started until job_log has its changed_at index (the
    last step of the migration its StatsBuilder does on an older table; the master's
    own start, ~1 s, included)."""
    index = ("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
             "DATABASE() AND TABLE_NAME = 'job_log' AND INDEX_NAME = 'ix_job_log_changed'")
    async with open_store(db_url) as store:
        with trio.fail_after(600):
            while (await store._backend.fetch(index))[0][0] == 0:
                await trio.sleep(0.05)
    return (time.perf_counter() - started) * 1000


def time_api(master: MasterProcess, loads: int) -> dict[str, Spread]:
    headers = {"Authorization": f"Bearer {master.token}"}
    found: dict[str, list[float]] = {"paged list (limit=100)": [], "whole list": []}
    with httpx.Client(base_url=master.url, headers=headers, timeout=30) as client:
        for _ in range(loads):
            for label, query in (("paged list (limit=100)", {"limit": "100"}),
                                 ("whole list", {})):
                started = time.perf_counter()
                answer = client.get("/api/v1/jobs", params=query)
                found[label].append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
    return {label: Spread.of(values) for label, values in found.items()}


READY_JS = """([fragment, jobs]) => {
  const ready = () => {
    if (fragment === "#jobs") {
      const rows = document.querySelectorAll("table.jobs tbody tr");
      if (rows.length !== %d) return false;
      const button = [...rows[0].querySelectorAll("button")]
        .find((b) => b.textContent.trim() === "Run now");
      if (!button || button.disabled) return false;
      const box = button.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) return false;
      const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
      return hit !== null && (hit === button || button.contains(hit));
    }
    const canvas = document.querySelector("#chart-runs canvas");
    const count = document.querySelector('[data-count="jobs"] dd');
    return canvas !== null && canvas.offsetWidth > 0 && count !== null
      && count.textContent.trim() === String(jobs);
  };
  if (window.__usableMs === undefined && ready()) window.__usableMs = performance.now();
  return window.__usableMs !== undefined;
}""" % PAGE_ROWS

PROFILE_JS = """(fragment) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const path = fragment === "#jobs" ? "/api/v1/jobs?" : "/api/v1/stats";
  const api = performance.getEntriesByType("resource").find((r) => r.name.includes(path));
  return { html: nav.responseEnd, modules: nav.domContentLoadedEventEnd,
           apiStart: api ? api.startTime : null, apiEnd: api ? api.responseEnd : null,
           usable: window.__usableMs };
}"""

PHASES = ("context", "html", "modules", "api start", "api", "render")
RAW: dict[str, list[float]] = {}  # each load's figures, in order, for the JSON file


def time_pages(master: MasterProcess, jobs: int, loads: int
               ) -> tuple[dict[str, Spread], dict[str, dict[str, Spread]]]:
    """Each page's usable time (in the page) and Playwright's wait; and the profiles."""
    sys.path.insert(0, str(ROOT / "tests"))
    from chromium_kit import launched_chromium  # noqa: PLC0415

    fragments = ("#jobs", "#dashboard")
    usable: dict[str, list[float]] = {f: [] for f in fragments}
    waited: dict[str, list[float]] = {f: [] for f in fragments}
    phases: dict[str, dict[str, list[float]]] = {f: {p: [] for p in PHASES} for f in fragments}
    with launched_chromium() as chromium:
        for _ in range(loads):
            for fragment in fragments:
                began = time.perf_counter()
                context = chromium.new_context(viewport={"width": 1360, "height": 860})
                context.add_init_script(
                    f"sessionStorage.setItem({json.dumps(TOKEN_KEY)}, "
                    f"{json.dumps(master.token)})")
                page = context.new_page()
                page.set_default_timeout(30_000)
                started = time.perf_counter()
                page.goto(f"{master.url}/{fragment}")
                page.wait_for_function(READY_JS, arg=[fragment, jobs], polling="raf",
                                       timeout=30_000)
                waited[fragment].append((time.perf_counter() - started) * 1000)
                if fragment == "#jobs":  # what an operator does next must work
                    page.locator("table.jobs tbody tr").first.get_by_role(
                        "button", name="Run now").click(trial=True)
                got = page.evaluate(PROFILE_JS, fragment)
                usable[fragment].append(got["usable"])
                found = phases[fragment]
                found["context"].append((started - began) * 1000)
                found["html"].append(got["html"])
                found["modules"].append(got["modules"])
                if got["apiStart"] is not None:
                    found["api start"].append(got["apiStart"])
                    found["api"].append(got["apiEnd"] - got["apiStart"])
                    found["render"].append(got["usable"] - got["apiEnd"])
                context.close()
    spreads = {}
    for fragment in fragments:
        spreads[f"page {fragment}"] = Spread.of(usable[fragment])
        spreads[f"page {fragment} (wait)"] = Spread.of(waited[fragment])
    profiles = {f: {p: Spread.of(v) for p, v in phases[f].items() if v} for f in fragments}
    RAW.update({f"page {f}": usable[f] for f in fragments})
    RAW.update({f"{f} {p}": v for f in fragments for p, v in phases[f].items()})
    return spreads, profiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--webapp", type=Path, default=ROOT / "webapp",
                        help="the UI the master serves (an older tree's, for before/after)")
    parser.add_argument("--tag", default="", help="suffix of the results files")
    parser.add_argument("--older-table", action="store_true",
                        help="job_log as a release before changed_at made it: the master's "
                             "start then migrates it (timed alone: 'migration')")
    args = parser.parse_args(argv)
    etcd, server_url = shared_servers()
    prefix = f"/bench-ui-{uuid.uuid4().hex[:8]}/"
    database = f"b_{uuid.uuid4().hex[:12]}"
    services().mysql_cli(server_url, f"CREATE DATABASE {database}")
    db_url = urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url)._replace(
        path=f"/{database}"))
    log_path = RESULTS_DIR / f"ui_load{'-' + args.tag if args.tag else ''}-master.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    master = None
    try:
        started = time.monotonic()
        trio.run(load_jobs, etcd, prefix, args.jobs)
        trio.run(load_records, db_url, args.jobs, args.records)
        if args.older_table:
            services().mysql_cli(server_url, f"ALTER TABLE {database}.job_log DROP INDEX "
                                 "ix_job_log_changed, DROP COLUMN changed_at")
        print(f"  loaded in {time.monotonic() - started:.0f} s", file=sys.stderr)
        spawned = time.perf_counter()
        master = MasterProcess(etcd, db_url, log_path, prefix, "--webapp", str(args.webapp))
        migration = trio.run(time_migration, db_url, spawned) if args.older_table else None
        trio.run(master.wait_ready)
        api = time_api(master, args.loads)
        pages, profiles = time_pages(master, args.jobs, args.loads)
        results = {**api, **pages}
        if migration is not None:
            results["migration (changed_at)"] = Spread.of([migration])
    finally:
        if master is not None:
            master.stop()
        trio.run(drop_prefix, etcd, prefix)
        services().mysql_cli(server_url, f"DROP DATABASE IF EXISTS {database}")
    info = machine_info("benchmarks.ui_load")
    lines = [f"ui_load: {args.jobs:,} jobs, {args.records:,} records, {args.loads} loads "
             f"each; ms from navigation (pages) or request (API) to usable",
             machine_line(info)]
    lines += [f"  {label:<26} median {s.p50_ms:8.1f}  p99 {s.p99_ms:8.1f}  "
              f"max {s.max_ms:8.1f}"
              for label, s in results.items()]
    for fragment, found in profiles.items():
        lines.append(f"  profile of {fragment} (medians, ms): " + ", ".join(
            f"{phase} {spread.p50_ms:.0f}" for phase, spread in found.items()))
    text = "\n".join(lines)
    print(text)
    stem = "ui_load" + (f"-{args.tag}" if args.tag else "")
    write_text(RESULTS_DIR / f"{stem}.txt", text + "\n")
    write_json(RESULTS_DIR / f"{stem}.json", {
        "jobs": args.jobs, "records": args.records, "loads": args.loads, "machine": info,
        "webapp": str(args.webapp), "ms": {k: asdict(v) for k, v in results.items()},
        "profiles_ms": {f: {p: asdict(v) for p, v in found.items()}
                        for f, found in profiles.items()},
        "each_load_ms": {k: [round(x, 1) for x in v] for k, v in RAW.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
