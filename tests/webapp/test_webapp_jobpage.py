"""The job page (#job?name=…) in headless Chromium against the stand-in master: the
spec and its words, the next 10 fires in the job's zone and the browser's, the
duration plot drawn from the last runs, the success rate, the runs page by page, the
chains both ways, the alert policy, and each action calling its endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chromium_kit import (TIMEOUT_MS, canvas_pixels,  # skips without playwright
                          launched_chromium, sync_api)
from test_webapp_browser import Browser, _assert_clean
from webapp_fake_api import EVIL_NAME, EVIL_OUTPUT, TOKEN, FakeMaster, FakeState, canned_state

BROWSER_ZONE = "America/New_York"  # not the job's (Europe/Paris), not UTC
GREEN = (0x12, 0xb7, 0x6a)  # succeeded, as the dashboard colours it
RED = (0xd9, 0x2d, 0x20)    # failed


@pytest.fixture
def state() -> FakeState:
    """backup: 59 runs (57 succeeded, one timeout, one failed), after report, before
    nightly; its alert policy is the canned one."""
    s = canned_state()
    s.runs[2]["status"] = "failed"
    s.runs[2]["endTime"] = s.runs[2]["startTime"] + 4_000
    s.jobs["backup"]["after"] = {"job": "report", "on": "failed"}
    s.jobs["nightly"] = {**s.jobs["report"], "name": "nightly", "paused": False,
                         "cronExpr": "", "describe": None, "reason": None,
                         "after": {"job": "backup", "on": "succeeded"}}
    return s


@pytest.fixture
def browser(state: FakeState) -> Iterator[Browser]:
    with FakeMaster(state) as master, launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 900},
                                 timezone_id=BROWSER_ZONE)
        page.set_default_timeout(TIMEOUT_MS)
        yield Browser(page, master)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """SCHEDULER_UI_SCREENSHOT_DIR keeps the job page's screenshot (the README's is made
    on a real cluster by scripts/ui_screenshots.py)."""
    directory = Path(os.environ.get("SCHEDULER_UI_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def open_job_page(browser: Browser, name: str = "backup") -> sync_api.Page:
    """Log in, then open the job page from its name in the jobs list (a link)."""
    browser.log_in()
    browser.job_row(name).get_by_role("link", name=name).click()
    page = browser.page
    sync_api.expect(page.locator(".jobpage h2")).to_have_text(f"Job {name}")
    return page


def _color_pixels(page: sync_api.Page, rgb: tuple[int, int, int]) -> int:
    return canvas_pixels(page, "#chart-durations canvas", rgb)


def test_the_page_shows_spec_words_chains_and_alerts(browser: Browser) -> None:
    page = open_job_page(browser)
    spec = page.locator("#job-spec")
    sync_api.expect(spec).to_contain_text("tar czf /backup.tgz /srv && echo done")
    sync_api.expect(spec.locator(".words")).to_have_text("at 03:00 every day, Europe/Paris")
    for text in ("0 3 * * *", "Europe/Paris", "zone=eu", "backup", "forbid", "last",
                 "r-running on w1"):
        sync_api.expect(spec).to_contain_text(text)
    chains = page.locator("#job-chains")
    sync_api.expect(chains).to_contain_text("report when it failed")
    sync_api.expect(chains).to_contain_text("nightly when this one succeeded")
    alerts = page.locator("#job-alerts")
    sync_api.expect(alerts).to_contain_text("failed, recovered")
    sync_api.expect(alerts).to_contain_text("ops")
    chains.get_by_role("link", name="nightly").click()  # down the chain: its page
    sync_api.expect(page.locator(".jobpage h2")).to_have_text("Job nightly")
    sync_api.expect(page.locator("#job-alerts")).to_contain_text("default policy")
    sync_api.expect(page.locator("#job-chains")).to_contain_text("backup when it succeeded")
    _assert_clean(browser)


def test_the_next_ten_fires_in_the_jobs_zone_and_the_browsers(browser: Browser,
                                                            state: FakeState) -> None:
    page = open_job_page(browser)
    rows = page.locator("#job-fires tbody tr")
    sync_api.expect(rows).to_have_count(10)
    preview = state.api_requests("GET", "/api/v1/cron/preview")[-1]
    assert preview.query == {"expr": "0 3 * * *", "tz": "Europe/Paris", "n": "10",
                             "anchor": str(state.jobs["backup"]["createdAt"])}
    headers = page.locator("#job-fires th").all_text_contents()
    assert headers == ["In Europe/Paris (the job's zone)", f"In {BROWSER_ZONE} (this browser)"]
    for i in (0, 9):
        cells = rows.nth(i).locator("time")
        iso = cells.nth(0).get_attribute("datetime")
        assert iso is not None and iso == cells.nth(1).get_attribute("datetime")
        utc = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        fmt = "%Y-%m-%d %H:%M:%S"
        assert cells.nth(0).text_content() == utc.astimezone(ZoneInfo("Europe/Paris")).strftime(fmt)
        assert cells.nth(1).text_content() == utc.astimezone(ZoneInfo(BROWSER_ZONE)).strftime(fmt)
    _assert_clean(browser)


def test_the_duration_plot_is_drawn_with_the_runs_and_the_success_rate(
        browser: Browser, state: FakeState, shots: Path) -> None:
    page = open_job_page(browser)
    chart = page.locator("#chart-durations")
    sync_api.expect(chart.locator("canvas")).to_have_count(1)
    sync_api.expect(chart).to_have_attribute("data-points", "59")  # every backup run
    asked = state.api_requests("GET", "/api/v1/jobs/backup/durations")
    assert asked and asked[-1].query == {"limit": "200"}
    # Drawn: the succeeded points in green, the failed one in red.
    page.wait_for_function("document.querySelector('#chart-durations canvas').width > 0")
    assert _color_pixels(page, GREEN) > 57 * 10
    assert _color_pixels(page, RED) > 10
    rate = page.locator("#job-success-rate")
    sync_api.expect(rate).to_contain_text("Success rate: 96.6 %")  # 57 of 59
    sync_api.expect(rate).to_contain_text("57 of 59 runs that ended, among the last 59")
    # The legend names the statuses drawn.
    sync_api.expect(chart.locator(".u-legend")).to_contain_text("succeeded")
    sync_api.expect(chart.locator(".u-legend")).to_contain_text("timeout")
    assert browser.screenshot("job-page.png", shots).stat().st_size > 10_000
    _assert_clean(browser)


def test_the_runs_are_paged(browser: Browser, state: FakeState) -> None:
    page = open_job_page(browser)
    rows = page.locator("#job-runs table.runs tbody tr")
    sync_api.expect(rows).to_have_count(20)
    more = page.get_by_role("button", name="Load more runs")
    more.click()
    sync_api.expect(rows).to_have_count(40)
    more.click()
    sync_api.expect(rows).to_have_count(59)
    sync_api.expect(more).to_be_hidden()
    pages = state.api_requests("GET", "/api/v1/runs")
    assert [r.query.get("cursor") for r in pages if r.query.get("job") == "backup"][-3:] == [
        None, "20", "40"]
    assert {r.query["limit"] for r in pages if r.query.get("job") == "backup"} == {"20"}
    rows.nth(0).get_by_role("button", name="Output").click()  # a run's output opens
    sync_api.expect(page.locator("#job-runs tr.detail pre").first).to_have_text("hi\n")
    _assert_clean(browser)


def test_each_action_calls_its_endpoint(browser: Browser, state: FakeState) -> None:
    page = open_job_page(browser)
    actions = page.locator(".jobpage .actions")
    actions.get_by_role("button", name="Run now").click()
    sync_api.expect(page.locator("#notice")).to_contain_text("Triggered backup: run manual-0001")
    actions.get_by_role("button", name="Pause").click()
    sync_api.expect(actions.get_by_role("button", name="Resume")).to_be_visible()
    sync_api.expect(page.locator("#job-spec .badge-paused")).to_have_count(1)
    actions.get_by_role("button", name="Resume").click()
    sync_api.expect(actions.get_by_role("button", name="Pause")).to_be_visible()
    actions.get_by_role("button", name="Kill").click()  # backup has a running instance
    sync_api.expect(page.locator("#notice")).to_contain_text("Kill requested for backup")
    for action in ("run", "pause", "resume", "kill"):
        calls = state.api_requests("POST", f"/api/v1/jobs/backup/{action}")
        assert len(calls) == 1, action
        assert calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    actions.get_by_role("button", name="Edit").click()
    sync_api.expect(page).to_have_url(f"{browser.master.url}/#edit?name=backup")
    page.go_back()
    sync_api.expect(page.locator(".jobpage h2")).to_have_text("Job backup")
    page.locator(".jobpage .actions").get_by_role("button", name="Delete").click()
    sync_api.expect(page).to_have_url(f"{browser.master.url}/#jobs")
    assert len(state.api_requests("DELETE", "/api/v1/jobs/backup")) == 1
    assert [t for t, _ in browser.dialogs] == ["confirm", "confirm"]  # kill, delete
    sync_api.expect(browser.job_row("backup")).to_have_count(0)
    _assert_clean(browser)


def test_every_control_is_a_labelled_button_or_link(browser: Browser) -> None:
    page = open_job_page(browser)
    sync_api.expect(page.locator("#job-runs table.runs")).to_have_count(1)
    controls = page.locator(".jobpage button, .jobpage a, .jobpage input, .jobpage select")
    assert controls.count() > 10
    for i in range(controls.count()):
        control = controls.nth(i)
        tag = control.evaluate("e => e.tagName")
        assert tag in ("BUTTON", "A"), tag
        label = (control.get_attribute("aria-label") or control.text_content() or "").strip()
        assert label, control.evaluate("e => e.outerHTML")


def test_html_in_a_job_stays_text_and_a_deleted_jobs_runs_still_show(
        browser: Browser, state: FakeState) -> None:
    page = open_job_page(browser, EVIL_NAME)
    sync_api.expect(page.locator("#job-spec code").first).to_have_text(EVIL_OUTPUT)
    sync_api.expect(page.locator("#job-runs table.runs tbody tr")).to_have_count(1)
    sync_api.expect(page.locator("#chart-durations")).to_have_attribute("data-points", "1")
    sync_api.expect(page.locator("#job-success-rate")).to_contain_text("0 of 1 runs")
    _assert_clean(browser)  # no <img>, no dialog, no script ran
    del state.jobs[EVIL_NAME]  # deleted: its page says so, its history stays
    page.reload()
    sync_api.expect(page.locator("#job-spec")).to_contain_text(f"No job named “{EVIL_NAME}”")
    sync_api.expect(page.locator("#job-runs table.runs tbody tr")).to_have_count(1)
    sync_api.expect(page.locator("#chart-durations")).to_have_attribute("data-points", "1")
    assert page.locator(".jobpage .actions button").count() == 0
    _assert_clean(browser)


def test_a_chained_job_without_schedule_says_so(browser: Browser, state: FakeState) -> None:
    page = open_job_page(browser, "nightly")
    sync_api.expect(page.locator("#job-fires")).to_have_text(
        "No schedule: it runs only after job backup.")
    sync_api.expect(page.locator("#chart-durations")).to_have_text("No finished run to plot yet.")
    sync_api.expect(page.locator("#job-success-rate")).to_have_text(
        "Success rate: — (no run ended yet)")
    sync_api.expect(page.locator("#job-runs")).to_have_text("No runs yet.")
    _assert_clean(browser)
