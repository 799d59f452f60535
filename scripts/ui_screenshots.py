#!/usr/bin/env python3
"""The README's screenshots, taken from a real cluster that has run real jobs for a while.

    .venv/bin/python scripts/ui_screenshots.py [--minutes 4] [--out docs]

Starts the whole system as ``make run`` does (``scripts/local_cluster.py``: etcd, the
master and two workers, SQLite) in a throw-away state directory on free loopback ports,
saves a handful of jobs (quick ones, slow ones, one that fails now and then, one that
times out, one that fires at night), lets them run for ``--minutes``, then has Chromium
(Playwright, ``/usr/bin/chromium``) save ``dashboard.png`` (the last hour) and
``job-page.png`` (the job ``backup``) into ``--out``. Stops everything after. Needs the
``test`` extra (playwright) in the venv.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402  (scripts/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
JOBS = {
    "heartbeat": {"command": "echo ok", "cronExpr": "*/2 * * * * *"},
    "backup": {"command": "sleep $((RANDOM % 4)).$((RANDOM % 10)); echo saved",
               "cronExpr": "*/10 * * * * *"},
    "flaky-report": {"command": "echo report; [ $((RANDOM % 4)) -ne 0 ]",
                     "cronExpr": "*/5 * * * * *"},
    "slow-etl": {"command": "sleep 7", "cronExpr": "*/15 * * * * *", "timeout": 6},
    "sync-mirror": {"command": "sleep 1; echo synced", "cronExpr": "@every 30s"},
    "nightly-cleanup": {"command": "find /tmp -mtime +7 -print", "cronExpr": "30 2 * * *",
                        "timezone": "Europe/Berlin"},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="how long the jobs run")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ui-shots-") as state:
        port = services.free_port()
        env = {**os.environ, "LOCAL_CLUSTER_ETCD_PORT": str(services.free_port()),
               "LOCAL_CLUSTER_PORT": str(port)}
        for name in ("SCHEDULER_API_TOKEN", "SCHEDULER_API_TOKEN_FILE"):
            env.pop(name, None)
        cluster = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "local_cluster.py"), "--state", state,
             "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            token = wait_up(url, Path(state) / "api-token", cluster)
            api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                               timeout=10)
            for name, spec in JOBS.items():
                api.put(f"/api/v1/jobs/{name}", json=spec).raise_for_status()
            print(f"{len(JOBS)} jobs saved; letting them run {args.minutes:g} min", flush=True)
            time.sleep(args.minutes * 60)
            shoot(url, token, Path(args.out))
        finally:
            cluster.send_signal(signal.SIGINT)
            cluster.wait(120)
    return 0


def wait_up(url: str, token_file: Path, cluster: subprocess.Popen) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if cluster.poll() is not None:
            raise SystemExit(f"the local cluster exited ({cluster.returncode})")
        try:
            if token_file.exists() and httpx.get(url + "/healthz").status_code == 200:
                return token_file.read_text().strip()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("the local cluster did not come up within 120 s")


def shoot(url: str, token: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(url + "/#dashboard?window=1h")
        page.fill("#token-input", token)
        page.locator("#token-dialog").get_by_role("button", name="Save").click()
        expect(page.locator("#chart-runs canvas")).to_have_count(1)
        page.wait_for_timeout(1500)  # the charts' data, then a frame drawn
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page.goto(url + "/#job?name=backup")
        expect(page.locator("#chart-durations canvas")).to_have_count(1)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "job-page.png"), full_page=True)
        browser.close()
    print(f"saved {out / 'dashboard.png'} and {out / 'job-page.png'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
