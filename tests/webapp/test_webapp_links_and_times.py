"""Two rules of the whole UI, checked view by view in headless Chromium against the
stand-in master (webapp_fake_api):

- a job's name, wherever the dashboard or the runs view shows it, is a link to the
  job's page, reached with Tab, named by the name, and the name stays text (the job
  named with an <img> tag opens its page and runs no script);
- every time shown is a <time>: the browser's local time (a job's zone where the job
  page says so) as text, UTC on hover; no date is written into the page another way
  (the runs view's "From … until …" was, the header's "Last updated", and the charts'
  legends, uPlot's own "2024-05-01 2:00pm").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from chromium_kit import stray_dates, sync_api  # skips without playwright
from test_webapp_browser import Browser, _assert_clean, browser_on
from webapp_fake_api import EVIL_NAME, _now_ms, canned_state

ZONE = "Asia/Kolkata"  # +05:30: its local time is never UTC's
JOB_ZONE = "Europe/Paris"  # backup's, as canned
MAX_TABS = 40

TIMES = """(ts) => ts.map((t) => [t.dateTime, t.title, t.textContent,
  Boolean(t.closest("table.fires td:first-child"))])"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with browser_on(canned_state(), timezone_id=ZONE) as opened:
        yield opened


def job_page_heading(page: sync_api.Page, name: str) -> None:
    sync_api.expect(page.locator(".jobpage h2")).to_have_text(f"Job {name}")
    assert parse_qs(urlsplit(page.url).fragment.partition("?")[2])["name"] == [name]


def tab_to(page: sync_api.Page, link: sync_api.Locator) -> None:
    """Press Tab from the page's start until `link` has the focus (the keyboard's way)."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if link.evaluate("(a) => a === document.activeElement"):
            return
    raise AssertionError(f"not reached with {MAX_TABS} Tabs: {link}")


def test_job_names_on_the_dashboard_are_links_to_their_pages(browser: Browser) -> None:
    browser.log_in()
    browser.open("#dashboard")
    page = browser.page
    evil = page.locator("ol.top-failing li").filter(has_text=EVIL_NAME)
    sync_api.expect(evil).to_have_count(1)
    name = evil.get_by_role("link", name=EVIL_NAME, exact=True)
    assert name.text_content() == EVIL_NAME  # as text: no element made of it
    assert name.get_attribute("title") == "Open the job's page"
    # The count next to it opens the failed runs it counts, and says so.
    count = evil.get_by_role("link", name=f"1 failure of {EVIL_NAME}: open those runs",
                             exact=True)
    assert count.text_content() == "1"
    tab_to(page, name)
    page.keyboard.press("Enter")
    job_page_heading(page, EVIL_NAME)
    browser.open("#dashboard")
    count = page.locator("ol.top-failing li").filter(has_text="backup").get_by_role(
        "link", name="1 failure of backup: open those runs", exact=True)
    tab_to(page, count)
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", name="Runs of job backup")).to_be_visible()
    sync_api.expect(page.locator("table.runs tbody tr")).to_have_count(1)  # the timeout
    sent = browser.master.state.api_requests("GET", "/api/v1/runs")[-1].query
    assert sent["job"] == "backup" and sent["status"] == "failed,timeout,lost,killed"
    _assert_clean(browser)


def test_job_names_in_the_runs_view_are_links_to_their_pages(browser: Browser) -> None:
    browser.log_in()
    browser.open("#runs")
    page = browser.page
    cell = page.locator('tr[data-run="run-evil"] td.name')
    link = cell.get_by_role("link", name=EVIL_NAME, exact=True)
    sync_api.expect(link).to_have_count(1)
    assert cell.text_content() == EVIL_NAME
    tab_to(page, link)
    page.keyboard.press("Enter")
    job_page_heading(page, EVIL_NAME)
    # One job's runs: the heading names it with a link too.
    browser.open("#runs?job=backup")
    heading = page.get_by_role("heading", name="Runs of job backup")
    heading.get_by_role("link", name="backup", exact=True).click()
    job_page_heading(page, "backup")
    _assert_clean(browser)


def local(iso: str, zone: str = ZONE) -> str:
    utc = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return utc.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def check_times(page: sync_api.Page, where: str) -> int:
    """Every <time> of the page: local (or the job's zone) as text, UTC on hover; no
    date outside one. How many the view (main) has."""
    assert stray_dates(page) == [], where
    for iso, title, text, job_zone in page.locator("time").evaluate_all(TIMES):
        assert iso.endswith("Z"), (where, iso)
        if text[:2].isdigit():  # an absolute time
            assert (text, title) == (local(iso, JOB_ZONE if job_zone else ZONE), iso), where
        else:  # "3s ago": the local time, then UTC
            assert title == f"{local(iso)} ({iso})", (where, text, title)
    return page.locator("main time").count()


def hover_middle(page: sync_api.Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_every_time_shown_is_local_with_utc_on_hover(browser: Browser) -> None:
    now_ms = _now_ms()
    since, until = now_ms - 3_600_000, now_ms + 60_000
    browser.log_in()
    page = browser.page
    views = [
        ("#dashboard", "#chart-runs .u-over"),
        ("#jobs", "table.jobs td.last-run time"),
        (f"#runs?since={since}&until={until}", "table.runs tbody tr time"),
        ("#runs?job=backup", ".running-run time"),
        ("#workers", "table tbody tr time"),
        ("#audit", "table.audit tbody tr time"),
        ("#job?name=backup", "table.fires time"),
        ("#edit?name=backup", ".cron-preview li time"),
    ]
    counted = {}
    for fragment, ready in views:
        browser.open(fragment)
        sync_api.expect(page.locator(ready).first).to_be_visible()
        if fragment == "#runs?job=backup":  # a run's details: planned, scheduled, ended
            page.locator("table.runs tbody tr").first.get_by_role("button",
                                                                  name="Output").click()
            sync_api.expect(page.locator("tr.detail time")).to_have_count(3)
        for chart in ("#chart-runs", "#chart-lateness", "#chart-durations"):
            if page.locator(chart).count():  # the hovered time, in the chart's legend
                hover_middle(page, f"{chart} .u-over")
                sync_api.expect(page.locator(f"{chart} .u-legend time")).to_have_count(1)
        counted[fragment] = check_times(page, fragment)
    assert all(n > 0 for n in counted.values()), counted
    # The runs' time range (a dashboard bar's) is two <time>s of exactly its ends.
    browser.open(f"#runs?since={since}&until={until}")
    bounds = page.locator("p.range time")
    sync_api.expect(bounds).to_have_count(2)
    assert [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000
            for t in bounds.evaluate_all("(ts) => ts.map((t) => t.dateTime)")] == [since, until]
    sync_api.expect(page.locator("p.range")).to_contain_text(
        f"From {local(bounds.first.get_attribute('datetime'))} until")
    # The header's "Last updated" too.
    sync_api.expect(page.locator("#last-updated time")).to_have_count(1)
    check_times(page, "#last-updated")
    _assert_clean(browser)
