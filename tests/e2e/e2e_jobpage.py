"""The job page against the real master and a real worker (test_e2e_browser drives the
UI there and calls these): a job that ran has its runs drawn in the duration plot, and
the open page applies its job's events, with no reload."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from chromium_kit import canvas_pixels, sync_api

RUN_TIMEOUT_S = 40.0

KILLED_RGB = (0x7a, 0x5a, 0xf8)  # the colour of `killed` points (webapp/dashboard.js)


def see_the_job_page(page: sync_api.Page) -> None:
    """The job's page, opened from its name in the list: its killed run is a point of
    the duration plot (uPlot under the master's CSP), and the success rate counts it."""
    expect = sync_api.expect
    page.get_by_role("link", name="Jobs", exact=True).click()
    # From the jobs list itself: until the Jobs view has replaced the Runs view, the
    # runs view's own links to the job are on the page too.
    page.locator("table.jobs td.name").get_by_role("link", name="ui-sleeper").click()
    expect(page.locator(".jobpage h2")).to_have_text("Job ui-sleeper")
    expect(page.locator("#job-spec .words")).to_have_text("at 00:00 on day 1 of January")
    expect(page.locator("#job-fires tbody tr")).to_have_count(10)
    chart = page.locator("#chart-durations")
    expect(chart).to_have_attribute("data-points", "1")
    expect(chart.locator("canvas")).to_have_count(1)
    drawn = canvas_pixels(page, "#chart-durations canvas", KILLED_RGB)
    assert drawn > 10, drawn  # the killed run's point, in its colour
    expect(page.locator("#job-success-rate")).to_contain_text(
        "Success rate: 0.0 % (0 of 1 runs that ended, among the last 1)")
    expect(page.locator("#job-runs table.runs tbody tr .badge-killed")).to_have_count(1)


LIVE_S = 1.0  # issue 13: pages apply events within 1 s (the fallback polls every 5 s)


def see_the_job_page_follow_its_events(page: sync_api.Page, url: str, token: str) -> None:
    """A run started and killed outside the page (the API): once the master says so,
    the open page shows it within LIVE_S, with no reload: the run among the running,
    then its point in the plot."""
    expect = sync_api.expect
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    with api:
        run_id = api.post("/api/v1/jobs/ui-sleeper/run").json()["runId"]
        _wait_for(lambda: [r["runId"] for r in api.get("/api/v1/jobs/ui-sleeper").json()
                           ["job"]["running"]] == [run_id])
        expect(page.locator("#job-spec")).to_contain_text(f"{run_id} on ", timeout=LIVE_S * 1000)
        expect(page.locator(".jobpage .actions").get_by_role("button", name="Kill")).to_be_enabled(
            timeout=LIVE_S * 1000)
        assert api.post("/api/v1/jobs/ui-sleeper/kill").status_code == 202
        _wait_for(lambda: len(api.get("/api/v1/jobs/ui-sleeper/durations").json()["runs"]) == 2)
    expect(page.locator("#chart-durations")).to_have_attribute("data-points", "2",
                                                                 timeout=LIVE_S * 1000)
    expect(page.locator("#job-success-rate")).to_contain_text("0 of 2 runs that ended")
    expect(page.locator("#job-runs table.runs tbody tr .badge-killed")).to_have_count(2)


def _wait_for(condition: Callable[[], bool], timeout_s: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
