"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

Shared by tests/webapp (the UI against a stand-in master) and tests/e2e (the UI and
cross-origin pages against a real master). No ``playwright install``: the tests skip
only when no chromium binary (or the playwright package) is there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

__all__ = ["CHROMIUM_ARGS", "TIMEOUT_MS", "canvas_pixels", "find_chromium",
           "launched_chromium", "stock_asyncio", "stray_dates", "sync_api"]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000


def find_chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no chromium binary (apt-get install chromium)")


@contextmanager
def stock_asyncio() -> Iterator[None]:
    """Playwright's sync API runs a stock asyncio loop; once trio_asyncio is imported (the
    MySQL store tests do) asyncio.new_event_loop() makes trio-backed loops instead, unless
    a policy is set explicitly. Set the stock one for the block only."""
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)


@contextmanager
def launched_chromium(*extra_args: str) -> Iterator[sync_api.Browser]:
    """A headless Chromium with the standard options (and ``extra_args``), closed after."""
    executable = find_chromium()
    with stock_asyncio(), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=[*CHROMIUM_ARGS, *extra_args])
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


_COUNT_PIXELS = """([selector, r, g, b]) => {
  const c = document.querySelector(selector);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.abs(d[i] - r) < 8 && Math.abs(d[i + 1] - g) < 8
        && Math.abs(d[i + 2] - b) < 8) n++;
  }
  return n;
}"""


def canvas_pixels(page: sync_api.Page, selector: str, rgb: tuple[int, int, int]) -> int:
    """Opaque pixels of the canvas at ``selector`` within a few units of ``rgb``: a chart
    was drawn, and with what (a series' colour), not merely a canvas put in place."""
    return int(page.evaluate(_COUNT_PIXELS, [selector, *rgb]))


_STRAY_DATES = """() => {
  const date = /\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}/;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const stray = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (date.test(n.textContent) && !n.parentElement.closest("time")) stray.push(n.textContent);
  }
  return stray;
}"""


def stray_dates(page: sync_api.Page) -> list[str]:
    """The page's texts that read as a date and time ("2024-05-01 14:00", or ISO) outside
    any <time>: every time the UI shows is one (local as text, UTC on hover), so a view
    that formats a time another way shows up here."""
    return list(page.evaluate(_STRAY_DATES))
