"""The UI offers only what the token's role may do (GET /api/v1/whoami, webapp/role.js),
in headless Chromium against the stand-in master: a ``read`` token sees no action at all,
an ``operate`` one runs, kills, pauses and resumes but neither creates, edits nor
deletes, and an ``admin`` one sees every action. The master refuses the rest anyway
(tests/e2e/test_e2e_roles.py); here it is what the operator is offered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chromium_kit import TIMEOUT_MS, launched_chromium, sync_api  # skips without playwright
from test_webapp_browser import Browser
from webapp_fake_api import FakeMaster, canned_state

OPERATE = ("Run now", "Kill", "Pause")
ADMIN = ("Edit", "Delete")


@pytest.fixture(params=["read", "operate", "admin"])
def role_browser(request) -> Iterator[tuple[str, Browser]]:
    state = canned_state()
    state.role = request.param
    with FakeMaster(state) as master, launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        yield request.param, Browser(page, master)


def visible_buttons(scope: sync_api.Locator, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if scope.get_by_role("button", name=n, exact=True).is_visible()]


def test_each_role_sees_only_its_actions(role_browser) -> None:
    role, browser = role_browser
    browser.log_in()
    page = browser.page
    expect = sync_api.expect
    expect(page.locator("#who")).to_have_text(f"fake-{role} · {role}")
    row = browser.job_row("backup")
    may_operate, may_admin = role != "read", role == "admin"
    expected = [*(OPERATE if may_operate else ()), *(ADMIN if may_admin else ())]
    assert visible_buttons(row, OPERATE + ADMIN) == expected
    assert row.get_by_role("button", name="Runs").is_visible()  # reading is for everyone
    assert page.get_by_role("button", name="New job").is_visible() == may_admin
    assert page.get_by_role("link", name="Alerts").is_visible() == may_admin  # channels: admin

    row.get_by_role("link", name="backup").click()
    actions = page.get_by_role("group", name="Job actions")
    expect(page.locator(".jobpage h2")).to_have_text("Job backup")
    expect(actions.locator("button").first).to_be_attached()  # drawn, hidden or not
    assert visible_buttons(actions, OPERATE + ADMIN) == expected
    # Hidden, not merely greyed: the keyboard does not reach them either.
    focusable = page.evaluate("""() => [...document.querySelectorAll('[data-needs]')]
        .filter((e) => e.offsetParent !== null).length""")
    assert (focusable == 0) == (role == "read"), focusable
