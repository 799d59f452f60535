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

__all__ = ["CHROMIUM_ARGS", "TIMEOUT_MS", "find_chromium", "launched_chromium",
           "stock_asyncio", "sync_api"]

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
