"""The web UI in a real headless Chromium against a stand-in master (webapp_fake_api).

Checks what an operator and an attacker would see: jobs render, HTML in job names,
commands, outputs and worker ids stays text (no element, no dialog), actions send the
documented requests with the bearer token, validation errors land next to their field,
a 503 shows the banner, and the page runs under `default-src 'self'` without violations.

Uses Debian's chromium (no `playwright install`); skipped only when no chromium binary
(or the playwright package) is there. SCHEDULER_UI_SCREENSHOT_DIR=/some/dir keeps the
two screenshots (jobs page, editor) there instead of the test's tmp dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cluster.store import RunStatus
from chromium_kit import TIMEOUT_MS, launched_chromium, sync_api  # skips without playwright
from webapp_fake_api import (
    EVIL_NAME,
    EVIL_OUTPUT,
    NEVER_REASON,
    READ_TOKEN,
    TOKEN,
    FakeMaster,
    FakeState,
    canned_state,
)


class Browser:
    """One page on the fake master, with every dialog, console error and page error kept."""

    def __init__(self, page: sync_api.Page, master: FakeMaster) -> None:
        self.page = page
        self.master = master
        self.dialogs: list[tuple[str, str]] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def _on_dialog(self, dialog: sync_api.Dialog) -> None:
        self.dialogs.append((dialog.type, dialog.message))
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()

    def open(self, fragment: str = "") -> None:
        self.page.goto(f"{self.master.url}/{fragment}")

    def log_in(self, token: str = TOKEN) -> None:
        """First load answers 401: the token prompt opens; give it the token. Opens the
        jobs list (the landing page is the dashboard)."""
        self.open("#jobs")
        dialog = self.page.locator("#token-dialog")
        sync_api.expect(dialog).to_be_visible()
        self.page.fill("#token-input", token)
        dialog.get_by_role("button", name="Save").click()
        sync_api.expect(dialog).to_be_hidden()
        sync_api.expect(self.job_row("backup")).to_be_visible()

    def job_row(self, name: str) -> sync_api.Locator:
        return self.page.locator("table.jobs tbody tr").filter(
            has=self.page.locator("td.name", has_text=name))

    def screenshot(self, name: str, directory: Path) -> Path:
        path = directory / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def state() -> FakeState:
    return canned_state()


@contextmanager
def browser_on(state: FakeState, **page_options: Any) -> Iterator[Browser]:
    """A Browser on a fake master answering from `state` (`timezone_id=`...: the page's)."""
    with FakeMaster(state) as master, launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 860}, **page_options)
        page.set_default_timeout(TIMEOUT_MS)
        yield Browser(page, master)


@pytest.fixture
def browser(state: FakeState) -> Iterator[Browser]:
    with browser_on(state) as opened:
        yield opened


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("SCHEDULER_UI_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _assert_clean(browser: Browser) -> None:
    """No script ran from data, no CSP violation, no uncaught error."""
    page = browser.page
    assert browser.dialogs == [] or all(t == "confirm" for t, _ in browser.dialogs)
    assert page.locator("img").count() == 0
    assert page.evaluate("document.scripts.length") == 1  # our module script only
    assert page.evaluate("window.__pwned === undefined")
    assert [e for e in browser.console_errors if "Content Security Policy" in e] == []
    assert browser.page_errors == []


def test_jobs_render_and_html_in_data_stays_text(browser: Browser, shots: Path) -> None:
    browser.log_in()
    page = browser.page
    assert browser.job_row("report").locator(".badge-paused").count() == 1
    evil = browser.job_row(EVIL_NAME)
    sync_api.expect(evil).to_have_count(1)
    assert evil.locator("td.name").text_content() == EVIL_NAME
    assert evil.locator("td.command code").text_content() == EVIL_OUTPUT
    sync_api.expect(page.locator("#last-updated")).to_contain_text("Last updated")
    backup = browser.job_row("backup")
    sync_api.expect(backup.locator("td", has_text="1 running")).to_have_count(1)
    browser.screenshot("scheduler-ui-jobs.png", shots)
    _assert_clean(browser)


def test_jobs_show_the_masters_words_and_last_run(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    backup = browser.job_row("backup")
    sync_api.expect(backup.locator("td.schedule .words")).to_have_text(
        "at 03:00 every day, Europe/Paris")
    sync_api.expect(browser.job_row(EVIL_NAME).locator(".words")).to_have_text(
        "every 5 minutes")
    newest = state.runs[1]  # run-evil (index 0) is the evil job's
    last = backup.locator("td.last-run")
    sync_api.expect(last.locator(f".badge-{newest['status']}")).to_have_text(newest["status"])
    assert last.locator("time").get_attribute("title").endswith("Z")  # UTC on hover
    sync_api.expect(last).to_contain_text("ago, took 1.234 s")
    sync_api.expect(browser.job_row(EVIL_NAME).locator("td.last-run .badge-failed")
                    ).to_have_count(1)
    sync_api.expect(browser.job_row("report").locator("td.last-run")).to_have_text("—")
    browser.page.get_by_label("Filter jobs by name, command or schedule in words").fill(
        "every 5 min")  # the words filter too
    sync_api.expect(browser.page.locator("table.jobs tbody tr")).to_have_count(1)
    sync_api.expect(browser.job_row(EVIL_NAME)).to_have_count(1)
    browser.page.get_by_label("Filter jobs by name, command or schedule in words").fill("")
    state.last_runs_error = "the run store is unreachable: connection refused"
    sync_api.expect(browser.page.locator(".last-runs-error")).to_have_text(
        f"Last runs unknown: {state.last_runs_error}", timeout=15_000)  # the next refresh
    sync_api.expect(backup.locator("td.last-run")).to_have_text("—")
    _assert_clean(browser)


def test_the_editor_shows_the_words_of_the_expression_as_it_changes(browser: Browser) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("button", name="New job").click()
    words = page.locator(".cron-preview .words")
    page.fill("#field-cronExpr", "*/5 * * * * *")
    sync_api.expect(words).to_have_text("every 5 seconds")
    page.fill("#field-timezone", "Europe/Berlin")
    page.fill("#field-cronExpr", "30 2 * * *")
    sync_api.expect(words).to_have_text("at 02:30 every day, Europe/Berlin")
    page.fill("#field-cronExpr", "0 0 0 1 1 * 2020")  # never again: the words stay
    sync_api.expect(words).to_have_text("at 00:00 on day 1 of January in 2020, Europe/Berlin")
    sync_api.expect(page.locator(".cron-preview .never")).to_contain_text("never fires again")
    _assert_clean(browser)


def test_run_now_posts_with_the_bearer_token(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    browser.job_row("backup").get_by_role("button", name="Run now").click()
    sync_api.expect(browser.page.locator("#notice")).to_contain_text(
        "Triggered backup: run manual-0001")
    posts = state.api_requests("POST", "/api/v1/jobs/backup/run")
    assert len(posts) == 1
    assert posts[0].headers["authorization"] == f"Bearer {TOKEN}"
    # the evil name goes into the URL path encoded, and comes back decoded
    browser.job_row(EVIL_NAME).get_by_role("button", name="Pause").click()
    sync_api.expect(browser.job_row(EVIL_NAME).get_by_role("button", name="Resume")).to_be_visible()
    assert len(state.api_requests("POST", f"/api/v1/jobs/{EVIL_NAME}/pause")) == 1
    _assert_clean(browser)


def test_delete_asks_for_confirmation_then_deletes(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    browser.job_row("report").get_by_role("button", name="Delete").click()
    sync_api.expect(browser.job_row("report")).to_have_count(0)
    assert [t for t, _ in browser.dialogs] == ["confirm"]
    assert len(state.api_requests("DELETE", "/api/v1/jobs/report")) == 1


def test_editor_shows_server_error_next_to_field_and_live_preview(
        browser: Browser, state: FakeState, shots: Path) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("button", name="New job").click()
    page.fill("#field-name", "nightly")
    page.fill("#field-command", "echo nightly")
    page.fill("#field-cronExpr", "* * * *")
    preview = page.locator(".cron-preview")
    sync_api.expect(preview).to_contain_text("expected 5, 6 or 7 fields")
    page.get_by_role("button", name="Save").click()
    field = page.locator('.field[data-field="cronExpr"]')
    error = field.locator(".field-error")
    sync_api.expect(error).to_be_visible()
    sync_api.expect(error).to_have_text("expected 5, 6 or 7 fields, got 4")
    sync_api.expect(page.locator("#field-cronExpr")).to_have_attribute("aria-invalid", "true")
    assert page.locator('.field[data-field="command"] .field-error').is_hidden()
    put = state.api_requests("PUT", "/api/v1/jobs/nightly")[-1]
    assert put.body == {"name": "nightly", "command": "echo nightly", "cronExpr": "* * * *",
                        "timezone": "UTC", "timeout": 0, "concurrency": "forbid",
                        "paused": False, "retries": 0, "retryBackoff": 10,
                        "startingDeadline": 0, "catchUp": "last", "selector": {}, "env": {},
                        "user": None, "after": None, "alerts": None}
    browser.screenshot("scheduler-ui-editor.png", shots)

    page.fill("#field-cronExpr", "*/5 * * * *")  # editing the field clears its error
    sync_api.expect(error).to_be_hidden()
    sync_api.expect(preview.locator("li")).to_have_count(5)
    page.fill("#field-user", " backup ")
    page.fill("#field-alerts", "ops, mail")
    page.get_by_role("button", name="Save").click()
    sync_api.expect(page.locator("#notice")).to_contain_text("Created job nightly")
    body = state.api_requests("PUT", "/api/v1/jobs/nightly")[-1].body
    assert body["user"] == "backup" and body["alerts"] == {"channels": ["ops", "mail"]}
    sync_api.expect(browser.job_row("nightly")).to_be_visible()
    _assert_clean(browser)


def test_editor_loads_an_existing_job(browser: Browser) -> None:
    browser.log_in()
    browser.job_row("backup").get_by_role("button", name="Edit").click()
    page = browser.page
    sync_api.expect(page.locator("#field-command")).to_have_value(
        "tar czf /backup.tgz /srv && echo done")
    sync_api.expect(page.locator("#field-timezone")).to_have_value("Europe/Paris")
    sync_api.expect(page.locator("#field-selector")).to_have_value("zone=eu")
    sync_api.expect(page.locator("#field-user")).to_have_value("backup")
    sync_api.expect(page.locator("#field-alertsOn")).to_have_value("failed, recovered")
    sync_api.expect(page.locator("#field-alerts")).to_have_value("ops")
    assert page.locator("#field-name").get_attribute("readonly") is not None


def test_the_editor_saves_a_chain_and_both_ends_show_it(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("button", name="New job").click()
    page.fill("#field-name", "notify")
    page.fill("#field-command", "echo chained")
    page.fill("#field-after", "backup")
    page.select_option("#field-afterOn", "failed")
    page.get_by_role("button", name="Save").click()
    sync_api.expect(page.locator("#notice")).to_contain_text("Created job notify")
    put = state.api_requests("PUT", "/api/v1/jobs/notify")[-1]
    assert put.body["after"] == {"job": "backup", "on": "failed"} and put.body["cronExpr"] == ""
    sync_api.expect(browser.job_row("notify").locator(".chain")).to_have_text(
        "after backup (failed)")
    sync_api.expect(browser.job_row("backup")).to_contain_text("then: notify")

    browser.job_row("notify").get_by_role("button", name="Edit").click()
    sync_api.expect(page.locator("#field-after")).to_have_value("backup")
    sync_api.expect(page.locator("#field-afterOn")).to_have_value("failed")
    page.get_by_role("button", name="Cancel").click()
    browser.job_row("backup").get_by_role("button", name="Edit").click()
    sync_api.expect(page.locator(".downstream")).to_have_text(
        "Jobs that run after this one: notify (when it failed).")
    sync_api.expect(page.locator("#field-after")).to_have_value("")
    _assert_clean(browser)


def test_a_job_that_never_fires_shows_why_in_the_list_and_on_its_page(
        browser: Browser, state: FakeState) -> None:
    browser.log_in()
    page = browser.page
    expired = browser.job_row("expired")
    sync_api.expect(expired.locator(".never")).to_have_text(f"Never: {NEVER_REASON}")
    assert browser.job_row("report").locator(".never").count() == 0  # paused, not never
    expired.get_by_role("button", name="Edit").click()
    sync_api.expect(page.locator(".unschedulable")).to_have_text(
        f"This job will never fire: {NEVER_REASON}.")
    sync_api.expect(page.locator(".cron-preview .never")).to_have_text(
        f"This expression never fires again: {NEVER_REASON}.")
    sync_api.expect(page.locator(".cron-preview .words")).to_have_text(  # and what it says
        "at 00:00 on day 1 of January in 2020")
    page.get_by_role("button", name="Save").click()  # saved, with the API's warning
    notice = page.locator("#notice")
    sync_api.expect(notice).to_contain_text("Updated job expired. job 'expired' will never "
                                            f"fire: {NEVER_REASON}")
    assert "notice-warn" in (notice.get_attribute("class") or "")
    _assert_clean(browser)


def test_runs_output_is_text_and_load_more_pages(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("link", name="Runs").click()
    rows = page.locator("table.runs tbody tr:not(.detail)")
    sync_api.expect(rows).to_have_count(50)
    evil = page.locator('tr[data-run="run-evil"]')
    sync_api.expect(evil.locator(".badge-failed")).to_have_count(1)
    evil.get_by_role("button", name="Output").click()
    detail = page.locator("tr.detail")
    assert detail.locator("pre").first.text_content() == EVIL_OUTPUT
    assert detail.locator("pre").nth(1).text_content() == "<b>bold?</b>"
    assert detail.locator("b").count() == 0
    page.get_by_role("button", name="Load more").click()
    sync_api.expect(rows).to_have_count(60)
    sync_api.expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    assert state.api_requests("GET", "/api/v1/runs")[-1].query["cursor"] == "50"
    _assert_clean(browser)


def test_runs_filters_by_job_and_status(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    browser.job_row("backup").get_by_role("button", name="Runs").click()
    page = browser.page
    sync_api.expect(page.get_by_role("heading", name="Runs of job backup")).to_be_visible()
    # the filter offers every status a run can end in, the store's own list
    assert page.get_by_label("Status").locator("option").all_text_contents() == [
        "Any status", *(s.value for s in RunStatus)]
    page.get_by_label("Status").select_option("timeout")
    sync_api.expect(page.locator("table.runs tbody tr")).to_have_count(1)
    last = state.api_requests("GET", "/api/v1/runs")[-1]
    assert last.query == {"job": "backup", "status": "timeout", "limit": "50"}


def test_alert_channels_are_listed_for_admins_and_a_test_is_sent(
        browser: Browser, state: FakeState) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("link", name="Alerts").click()
    table = page.locator("table.channels")
    sync_api.expect(table.locator("tbody tr")).to_have_count(2)
    assert table.locator("td.name").first.text_content() == "<b>ops</b>"  # text, not HTML
    assert table.locator("b").count() == 0
    assert "smtp.example:587 → ops@example.org" in table.text_content()
    table.locator("tbody tr").first.get_by_role("button", name="Send test").click()
    sync_api.expect(page.locator("#notice")).to_contain_text(
        "Test alert test:1:ab queued for <b>ops</b>")
    assert len(state.api_requests("POST", "/api/v1/alert-channels/%3Cb%3Eops%3C%2Fb%3E/test")
               + state.api_requests("POST", "/api/v1/alert-channels/<b>ops</b>/test")) == 1
    _assert_clean(browser)


def test_alert_channels_say_admin_only_to_a_read_token(browser: Browser) -> None:
    browser.log_in(READ_TOKEN)
    page = browser.page
    page.get_by_role("link", name="Alerts").click()
    sync_api.expect(page.locator(".view .empty")).to_have_text(
        "Alert channels are shown to admin tokens only.")


def test_workers_show_skew_warning_and_html_ids_as_text(browser: Browser) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("link", name="Workers").click()
    table = page.locator("table.workers")
    sync_api.expect(table.locator("tbody tr")).to_have_count(2)
    assert table.locator("td.name").nth(1).text_content() == "<i>w2</i>"
    assert table.locator("i").count() == 0
    assert table.locator(".badge-warning").text_content() == "⚠ +2500 ms"
    assert table.locator("tbody tr").first.locator(".badge-warning").count() == 0
    _assert_clean(browser)


def test_workers_flag_skew_beyond_the_masters_limit(browser: Browser, state: FakeState) -> None:
    state.max_clock_skew_ms = 3000  # --max-clock-skew-s 3: w2's 2.5 s is within it
    browser.log_in()
    page = browser.page
    page.get_by_role("link", name="Workers").click()
    table = page.locator("table.workers")
    sync_api.expect(table.locator("tbody tr")).to_have_count(2)
    assert table.locator("tbody tr").nth(1).locator("td").last.text_content() == "+2500 ms"
    assert table.locator(".badge-warning").count() == 0
    _assert_clean(browser)


def test_a_worker_with_a_full_spill_is_flagged(browser: Browser, state: FakeState) -> None:
    state.workers[0]["problems"] = ["spill: disk full"]
    browser.log_in()
    page = browser.page
    page.get_by_role("link", name="Workers").click()
    table = page.locator("table.workers")
    sync_api.expect(table.locator("tbody tr")).to_have_count(2)
    rows = table.locator("tbody tr")
    assert rows.first.locator(".badge-failed").text_content() == "⚠ spill: disk full"
    assert rows.nth(1).locator(".badge-failed").count() == 0
    _assert_clean(browser)


def test_503_shows_the_banner_until_the_api_recovers(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    page = browser.page
    state.unavailable = True
    page.get_by_role("link", name="Workers").click()
    banner = page.locator("#banner")
    sync_api.expect(banner).to_be_visible()
    sync_api.expect(page.locator("#banner-text")).to_have_text(
        "Unavailable: etcd cannot be reached")
    sync_api.expect(page.locator("#banner-token")).to_be_hidden()
    sync_api.expect(page.locator("#last-updated")).to_contain_text("Update failed")
    state.unavailable = False
    page.get_by_role("link", name="Jobs").click()
    sync_api.expect(banner).to_be_hidden()


def test_a_read_only_token_pressing_delete_gets_a_clear_message(
        browser: Browser, state: FakeState) -> None:
    browser.log_in(READ_TOKEN)
    browser.job_row("report").get_by_role("button", name="Delete").click()
    notice = browser.page.locator("#notice")
    sync_api.expect(notice).to_have_class("notice notice-error")
    sync_api.expect(notice).to_contain_text(
        "Not allowed: token 'viewer' has role read; this needs role admin")
    sync_api.expect(browser.job_row("report")).to_have_count(1)  # still there
    assert len(state.api_requests("DELETE", "/api/v1/jobs/report")) == 1
    browser.job_row("backup").get_by_role("button", name="Run now").click()
    sync_api.expect(notice).to_contain_text("this needs role operate")
    sync_api.expect(browser.page.locator("#banner")).to_be_hidden()  # reads still work
    _assert_clean(browser)


def test_audit_view_lists_changes_as_text_and_filters(browser: Browser,
                                                      state: FakeState) -> None:
    browser.log_in()
    page = browser.page
    page.get_by_role("link", name="Audit").click()
    rows = page.locator("table.audit tbody tr")
    sync_api.expect(rows).to_have_count(4)
    assert page.get_by_role("link", name="Audit").get_attribute("aria-current") == "page"
    first = rows.first
    assert first.locator("td.name").text_content() == "ci"
    assert first.locator("td.action").text_content() == "kill"
    assert first.locator("td.change").text_content() == "run r-running"
    evil = rows.nth(1)
    assert evil.locator("td.name").text_content() == EVIL_NAME
    assert evil.locator("td.job").text_content() == EVIL_NAME
    assert evil.locator("td.change").text_content() == f"created: */5 * * * * {EVIL_OUTPUT}"
    assert page.locator("table.audit img, table.audit script").count() == 0
    page.get_by_label("Job name").fill("backup")
    page.get_by_role("button", name="Apply").click()
    sync_api.expect(rows).to_have_count(2)
    assert state.api_requests("GET", "/api/v1/audit")[-1].query == {"job": "backup",
                                                                    "limit": "50"}
    assert page.evaluate("location.hash") == "#audit?job=backup"
    _assert_clean(browser)


def test_a_job_no_worker_can_run_and_a_run_of_skips_say_so(
        browser: Browser, state: FakeState) -> None:
    now_ms = state.jobs["backup"]["nextFire"] - 3_600_000
    why = "no live worker has zone=b"
    state.jobs["zoned"] = {**state.jobs["backup"], "name": "zoned", "running": [],
                           "selector": {"zone": "b"}, "schedulable": False, "reason": why,
                           "nextFire": now_ms + 1000}
    skipped = {**state.runs[2], "runId": "long-run.skipped", "status": "skipped",
               "startTime": None, "endTime": None, "exitCode": None, "skipCount": 9,
               "firstSkipTime": now_ms - 9000, "lastSkipTime": now_ms - 1000}
    state.runs.insert(0, skipped)
    browser.log_in()
    page = browser.page
    zoned = browser.job_row("zoned")
    sync_api.expect(zoned.locator(".unschedulable")).to_have_text(f"Unschedulable: {why}")
    assert zoned.locator("time").count() == 1  # its planned time is still shown
    zoned.get_by_role("button", name="Edit").click()
    sync_api.expect(page.locator(".unschedulable")).to_have_text(
        f"No worker runs this job now: {why}.")
    page.get_by_role("link", name="Runs").click()
    row = page.locator('tr[data-run="long-run.skipped"]')
    sync_api.expect(row.locator(".badge-skipped")).to_have_text("skipped ×9")
    row.get_by_role("button", name="Output").click()
    sync_api.expect(page.locator("tr.detail dl")).to_contain_text("Skipped fires9, planned")


def test_a_seed_worker_is_a_row_with_dashes_for_what_it_does_not_publish(
        browser: Browser, state: FakeState) -> None:
    now_ms = state.workers[0]["lastSeen"]
    state.workers.append({"id": "10.0.0.7", "host": "10.0.0.7", "pid": None, "labels": {},
                          "version": "", "startedAt": None, "running": None,
                          "capacity": None, "wallClock": None, "lastSeen": now_ms,
                          "skewMs": None, "seed": True})
    browser.log_in()
    browser.page.get_by_role("link", name="Workers").click()
    row = browser.page.locator("table.workers tbody tr[data-worker='10.0.0.7']")
    sync_api.expect(row).to_have_count(1)
    cells = [c.strip() for c in row.locator("td").all_text_contents()]
    assert cells[0] == "10.0.0.7" and cells[5] == "seed"  # VERSION says what it is
    assert cells[2] == "" and cells[4] == "?/?" and cells[6] == "—" and cells[8] == "—"
    _assert_clean(browser)


def test_the_dashboard_is_the_landing_page_with_counts_and_charts(
        browser: Browser, state: FakeState, shots: Path) -> None:
    browser.log_in()
    browser.open()
    page = browser.page
    counts = {key: page.locator(f".count[data-count={key}] dd")
              for key in ("jobs", "pausedJobs", "running", "failures24h", "workers")}
    sync_api.expect(counts["jobs"]).to_have_text("4")
    assert {k: v.inner_text() for k, v in counts.items()} == {
        "jobs": "4", "pausedJobs": "1", "running": "1", "failures24h": "2", "workers": "2"}
    assert page.locator("nav a[aria-current=page]").inner_text() == "Dashboard"
    sync_api.expect(page.locator("#chart-runs canvas")).to_have_count(1)
    sync_api.expect(page.locator("#chart-lateness canvas")).to_have_count(1)
    top = page.locator("ol.top-failing li")
    sync_api.expect(top).to_have_count(2)
    assert {top.nth(i).locator("a.name").inner_text() for i in range(2)} == {EVIL_NAME,
                                                                             "backup"}
    assert browser.master.state.api_requests("GET", "/api/v1/stats")[-1].query == {
        "window": "24h"}
    page.select_option("#dashboard-window", "1h")
    sync_api.expect(page.locator("#runs-title")).to_have_text("Runs per minute, by status")
    assert browser.master.state.api_requests("GET", "/api/v1/stats")[-1].query == {
        "window": "1h"}
    browser.screenshot("dashboard.png", shots)
    _assert_clean(browser)


def test_clicking_a_bar_opens_the_runs_of_its_bucket(browser: Browser, state: FakeState) -> None:
    browser.log_in()
    browser.open("#dashboard?window=1h")
    page = browser.page
    over = page.locator("#chart-runs .u-over")
    sync_api.expect(over).to_be_visible()
    box = over.bounding_box()
    assert box is not None
    # The third minute from the end holds the canned run of now - 120 s (a timeout),
    # whatever the second (the failed run of now - 30 s may fall in either of the last two).
    page.mouse.move(box["x"] + box["width"] * (1 - 2.5 / 60), box["y"] + box["height"] - 2)
    page.mouse.down()
    page.mouse.up()
    sync_api.expect(page.locator("nav a[aria-current=page]")).to_have_text("Runs")
    sync_api.expect(page.locator("table.runs")).to_be_visible()  # its request was answered
    sent = browser.master.state.api_requests("GET", "/api/v1/runs")[-1].query
    since, until = int(sent["since"]), int(sent["until"])
    assert until - since == 60_000 and since % 60_000 == 0
    expected = [r for r in state.runs
                if since <= r["startTime"] < until and r["status"] == sent.get("status",
                                                                               r["status"])]
    rows = page.locator("table.runs tbody tr")
    sync_api.expect(rows).to_have_count(len(expected))
    assert [r["status"] for r in expected] == ["timeout"] and sent["status"] == "timeout"
    _assert_clean(browser)
