"""The jobs view with many jobs (a stand-in master, webapp_fake_api): one page of 100
at a time, Previous/Next by the server's cursor, the filter box and the state menu sent
to the server (the filter once typing pauses), never the whole list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chromium_kit import TIMEOUT_MS, launched_chromium, sync_api  # skips without playwright
from webapp_fake_api import TOKEN, FakeMaster, FakeState, canned_state

MANY = 250


@pytest.fixture
def state() -> FakeState:
    state = canned_state()
    template = state.jobs["backup"]
    for i in range(MANY):
        name = f"bulk-{i:03d}"
        state.jobs[name] = {**template, "name": name, "command": f"echo {i}", "running": [],
                            "paused": i % 50 == 0}
    return state


@pytest.fixture
def page(state: FakeState) -> Iterator[tuple[sync_api.Page, FakeMaster]]:
    with FakeMaster(state) as master, launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 860})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{master.url}/#jobs")
        dialog = page.locator("#token-dialog")
        sync_api.expect(dialog).to_be_visible()
        page.fill("#token-input", TOKEN)
        dialog.get_by_role("button", name="Save").click()
        sync_api.expect(dialog).to_be_hidden()
        yield page, master


def names(page: sync_api.Page) -> list[str]:
    return page.locator("table.jobs tbody td.name").all_text_contents()


def test_the_jobs_view_shows_pages_of_100_and_moves_by_cursor(page, state) -> None:
    page, master = page
    total = len(state.jobs)
    rows = page.locator("table.jobs tbody tr")
    sync_api.expect(rows).to_have_count(100)
    where = page.locator(".pager span")
    sync_api.expect(where).to_have_text(f"1–100 of {total}")
    first = names(page)
    assert first == sorted(state.jobs)[:100]
    # Each row's buttons are described by its job's name (a screen reader says which).
    described = rows.nth(3).get_by_role("button", name="Run now").get_attribute(
        "aria-describedby")
    assert page.locator(f"#{described}").text_content() == first[3]
    assert rows.nth(3).locator(f'button[aria-describedby="{described}"]').count() == 6
    assert page.get_by_role("button", name="Previous page").is_disabled()
    page.get_by_role("button", name="Next page").click()
    sync_api.expect(where).to_have_text(f"101–200 of {total}")
    assert names(page) == sorted(state.jobs)[100:200]
    asked = master.state.api_requests("GET", "/api/v1/jobs")
    assert asked[-1].query == {"limit": "100", "cursor": first[-1]}
    page.get_by_role("button", name="Next page").click()
    sync_api.expect(where).to_have_text(f"201–{total} of {total}")
    assert page.get_by_role("button", name="Next page").is_disabled()
    page.get_by_role("button", name="Previous page").click()
    sync_api.expect(where).to_have_text(f"101–200 of {total}")
    # Every request asked for a page: the browser never held the whole list.
    assert all(r.query.get("limit") == "100"
               for r in master.state.api_requests("GET", "/api/v1/jobs"))


def test_the_filter_and_the_state_are_asked_of_the_server(page, state) -> None:
    page, master = page
    sync_api.expect(page.locator("table.jobs tbody tr")).to_have_count(100)
    before = len(master.state.api_requests("GET", "/api/v1/jobs"))
    page.get_by_label("Filter jobs by name, command or schedule in words").press_sequentially(
        "bulk-1", delay=30)
    sync_api.expect(page.locator(".pager")).to_be_hidden()  # 100 jobs: one page
    sync_api.expect(page.locator("table.jobs tbody tr")).to_have_count(100)
    asked = master.state.api_requests("GET", "/api/v1/jobs")[before:]
    assert [r.query.get("q") for r in asked] == ["bulk-1"]  # once, when typing paused
    assert names(page) == [f"bulk-{i}" for i in range(100, 200)]
    page.get_by_label("Show jobs").select_option("paused")
    sync_api.expect(page.locator("table.jobs tbody tr")).to_have_count(2)
    assert names(page) == ["bulk-100", "bulk-150"]
    assert master.state.api_requests("GET", "/api/v1/jobs")[-1].query == {
        "limit": "100", "q": "bulk-1", "state": "paused"}
    page.get_by_label("Filter jobs by name, command or schedule in words").fill("no such job")
    sync_api.expect(page.locator("main .empty")).to_have_text("No job matches the filter.")
