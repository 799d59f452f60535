"""The UI for people (issue 13, item 7), in a real Chromium against a real master on
etcd and MariaDB with a real worker: every view's controls have names and are reached
with Tab (with a visible focus ring), the token dialog closes with Escape and gives the
focus back, times show in the browser's zone with UTC on hover, the dark palette follows
``prefers-color-scheme``, and the console stays clean: no 404 on load (the favicon is
there), no error and no failed request after login.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio

from chromium_kit import (TIMEOUT_MS, launched_chromium,  # skips without playwright
                          stray_dates, sync_api)
from e2e_harness import serve_master

pytestmark = pytest.mark.slow

ZONE = "Asia/Kolkata"  # +05:30: a local time never equal to UTC's
# Each view (its hash) and what shows once it has loaded.
VIEWS = {
    "#dashboard": "#chart-runs canvas",
    "#jobs": "table.jobs tbody tr",
    "#runs": "table tbody tr",
    "#workers": "table tbody tr",
    "#audit": "table tbody tr",
    "#alerts": "main h2",
    "#new": "main form",
    "#edit?name=people-tick": "main form",
}
# The controls Tab must reach: shown, enabled, not in a closed dialog.
FOCUSABLE = """() => {
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const focusable = [...document.querySelectorAll(
    'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
    .filter((e) => !e.disabled && shown(e) && !e.closest("dialog:not([open])"));
  return focusable.map((e) => e.outerHTML.slice(0, 160));
}"""


def wait_for(what: str, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.1)


@pytest.fixture
def live_master(mysql_url, make_cluster):
    """(url, token, api): a master with a token, one worker, a job that ran, a paused one."""
    token = "people-" + os.urandom(8).hex()
    url = trio.run(serve_master, make_cluster(mysql_url), token, "people-w1")
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert api.put("/api/v1/jobs/people-tick", json={
        "command": "echo tick", "cronExpr": "*/2 * * * * *"}).status_code == 201
    assert api.put("/api/v1/jobs/people-paused", json={
        "command": "echo never", "cronExpr": "@daily", "paused": True}).status_code == 201
    wait_for("a recorded run", lambda: api.get("/api/v1/jobs/people-tick/runs").json()
             ["runs"] != [])
    yield url, token, api
    api.close()


def log_in(page: sync_api.Page, url: str, token: str) -> None:
    page.goto(url + "/#jobs")  # the first load answers 401: the token dialog opens
    dialog = page.locator("#token-dialog")
    sync_api.expect(dialog).to_be_visible()
    page.fill("#token-input", token)
    dialog.get_by_role("button", name="Save").click()
    sync_api.expect(dialog).to_be_hidden()
    sync_api.expect(page.locator("table.jobs tbody tr").first).to_be_visible()


def open_view(page: sync_api.Page, url: str, fragment: str) -> None:
    page.goto(f"{url}/{fragment}")
    sync_api.expect(page.locator(VIEWS[fragment]).first).to_be_visible()


def test_every_view_has_named_controls_reached_by_tab_and_a_clean_console(live_master):
    url, token, _ = live_master
    with launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 860}, timezone_id=ZONE)
        page.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []
        statuses: list[tuple[int, str]] = []
        page.on("console", lambda m: m.type in ("error", "warning")
                and problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: "/api/v1/events" not in r.url  # left at unload
                and problems.append(f"failed {r.url}: {r.failure}"))
        page.on("response", lambda r: statuses.append((r.status, r.url)))

        log_in(page, url, token)
        assert [s for s in statuses if s[0] == 404] == []  # favicon.svg is there
        assert (200, url + "/favicon.svg") in statuses
        problems.clear()  # before the token: 401s, which Chromium logs as errors
        statuses.clear()

        for fragment in VIEWS:
            open_view(page, url, fragment)
            page.wait_for_timeout(300)  # the view's first refresh and its events
            names = _accessible_names(page)
            unnamed = [desc for desc, name in names if not name.strip()]
            assert unnamed == [], f"{fragment}: controls without a name: {unnamed}"
            _tab_through(page, fragment)
        assert [s for s in statuses if s[0] >= 400] == []
        assert problems == []

        # The runs chart's bars are for a mouse; the keyboard has a link to the same runs.
        open_view(page, url, "#dashboard")
        link = page.get_by_role("link", name="open the window's runs")
        sync_api.expect(link).to_have_attribute("href", re.compile(r"^#runs\?since=\d+&until=\d+$"))
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"#runs\?since=\d+&until=\d+$"))
        sync_api.expect(page.locator("table tbody tr").first).to_be_visible()
        assert page.get_by_role("img", name=re.compile(r"^Runs over the window, by status: "
                                                        r"\d+ in all")).count() == 0  # left
        open_view(page, url, "#dashboard")
        sync_api.expect(page.get_by_role("img", name=re.compile(
            r"^Runs over the window, by status: [1-9]\d* in all \(succeeded"))).to_have_count(1)

        # The token dialog: opened from the keyboard, closed with Escape, focus back.
        page.focus("#token-button")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("#token-dialog")).to_be_visible()
        page.keyboard.press("Escape")
        sync_api.expect(page.locator("#token-dialog")).to_be_hidden()
        assert page.evaluate("document.activeElement.id") == "token-button"


def _accessible_names(page: sync_api.Page) -> list[tuple[str, str]]:
    """(the element, its accessible name) of every focusable, shown control, the names
    from Chromium's own accessibility tree."""
    cdp = page.context.new_cdp_session(page)
    try:
        tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    found = []
    for node in tree:
        props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
        role = node.get("role", {}).get("value")
        if not props.get("focusable") or node.get("ignored") or role in ("RootWebArea",):
            continue
        found.append((f"{role} (dom node {node.get('backendDOMNodeId')})",
                      str(node.get("name", {}).get("value") or "")))
    assert found, "no focusable control at all"
    return found


def _tab_through(page: sync_api.Page, fragment: str) -> None:
    """Tab until the focus comes round to the first control it reached: every
    focusable control of the header and the view is reached, each with a focus ring."""
    expected = page.evaluate(FOCUSABLE)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    reached: list[str] = []
    rings: list[str] = []
    for _ in range(2 * len(expected) + 5):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
          const e = document.activeElement;
          if (!e || e === document.body) return null;
          const style = getComputedStyle(e);
          return [e.outerHTML.slice(0, 160), style.outlineStyle !== "none"
                  && parseFloat(style.outlineWidth) > 0];
        }""")
        if focused is None:  # past the last control (the browser's own UI): wraps
            continue
        if reached and focused[0] == reached[0]:
            break
        reached.append(focused[0])
        if not focused[1]:
            rings.append(focused[0])
    # A control whose state changed meanwhile (a job's Kill, enabled only while one of
    # its runs is going) is judged by what it is now: only controls focusable before
    # and after the pass must have been reached.
    expected = set(expected) & set(page.evaluate(FOCUSABLE))
    assert expected <= set(reached), (
        f"{fragment}: not reached by Tab: {sorted(expected - set(reached))}")
    assert rings == [], f"{fragment}: focused with no visible focus ring: {rings}"


def test_times_show_in_the_browsers_zone_with_utc_on_hover(live_master):
    url, token, _ = live_master
    zone = ZoneInfo(ZONE)
    with launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 860}, timezone_id=ZONE)
        page.set_default_timeout(TIMEOUT_MS)
        log_in(page, url, token)
        seen = 0
        now_ms = int(time.time() * 1000)
        # The runs of a time range (a dashboard bar's): its ends are times too.
        in_range = f"#runs?since={now_ms - 3_600_000}&until={now_ms + 60_000}"
        for fragment in ("#jobs", "#runs", in_range, "#workers", "#audit"):
            if fragment == in_range:
                page.goto(f"{url}/{fragment}")
                sync_api.expect(page.locator("p.range time")).to_have_count(2)
            else:
                open_view(page, url, fragment)
            sync_api.expect(page.locator("main time").first).to_be_visible()
            # No date is written another way (outside a <time>), the header's included.
            assert stray_dates(page) == [], fragment
            for datetime_attr, title, text in page.locator("main time").evaluate_all(
                    "(ts) => ts.map((t) => [t.dateTime, t.title, t.textContent])"):
                utc = datetime.fromisoformat(datetime_attr.replace("Z", "+00:00"))
                local = utc.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
                if text[:2].isdigit():  # an absolute time: local, UTC on hover
                    assert text == local and title == datetime_attr, (fragment, text, title)
                else:  # "3s ago": the local time, then UTC, on hover
                    assert title == f"{local} ({datetime_attr})", (fragment, text, title)
                assert title.endswith("Z") or title.endswith("Z)")
                seen += 1
        assert seen >= 4
        header = page.locator("#last-updated")
        assert header.get_attribute("title").endswith("Z")


@pytest.mark.parametrize(("scheme", "dark"), [("dark", True), ("light", False)])
def test_the_palette_follows_prefers_color_scheme(live_master, scheme, dark):
    url, token, _ = live_master
    with launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 860}, color_scheme=scheme)
        page.set_default_timeout(TIMEOUT_MS)
        log_in(page, url, token)
        open_view(page, url, "#dashboard")
        colours = page.evaluate("""() => {
          const lum = (c) => { const [r, g, b] = c.match(/\\d+(\\.\\d+)?/g).map(Number);
                               return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; };
          const css = getComputedStyle(document.body);
          const panel = getComputedStyle(document.querySelector(".topbar"));
          const select = getComputedStyle(document.querySelector("#dashboard-window"));
          return { bg: lum(css.backgroundColor), text: lum(css.color),
                   panel: lum(panel.backgroundColor), select: lum(select.color) };
        }""")
        if dark:
            assert colours["bg"] < 0.15 and colours["panel"] < 0.2, colours
            assert colours["text"] > 0.75 and colours["select"] > 0.75, colours
        else:
            assert colours["bg"] > 0.9 and colours["text"] < 0.25, colours
        # The charts' axes are drawn in the palette's text colour: a pixel of the axis
        # labels is about as bright as the text, not the light theme's dark grey.
        canvas = page.locator("#chart-runs canvas").first
        bright = canvas.evaluate("""(c) => {
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let best = 0, darkest = 1;
          for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] < 200) continue;
            const l = (0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2]) / 255;
            best = Math.max(best, l); darkest = Math.min(darkest, l);
          }
          return [best, darkest];
        }""")
        if dark:
            assert bright[0] > 0.7, bright  # light labels on the dark panel
        else:
            assert bright[1] < 0.3, bright  # dark labels on the light panel
