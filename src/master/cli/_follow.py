"""`runs --follow`: print the newest runs, then every run recorded since, each once.

It pages by the API's follow cursor (`after`), never by re-reading the newest page, so
no burst is too fast for it: a full page is followed by the next at once, and it only
waits FOLLOW_INTERVAL_S once it has caught up. The cursor is taken *before* the newest
page is read, so a run recorded in between comes in both: the few ids of that first
page are remembered, and such a run is printed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._client import api_path
from ._context import Context
from ._format import format_row
from ._views import FOLLOW_WIDTHS, RUN_HEADERS, run_row

FOLLOW_INTERVAL_S: Final = 0.5
FOLLOW_FIRST_PAGE: Final = 20
FOLLOW_PAGE: Final = 1000  # the API's largest page


def follow_runs(ctx: Context, query: dict[str, Any], first_page: int) -> None:
    """Print the newest `first_page` runs oldest-first, then each new one (Ctrl-C)."""
    query = {k: v for k, v in query.items() if k != "cursor"}
    if not ctx.json_mode:
        ctx.print(format_row(RUN_HEADERS, FOLLOW_WIDTHS))
    try:
        after = ctx.api.get(api_path("runs"), **query, after="now")["after"]
        newest = ctx.api.get(api_path("runs"), **query, limit=first_page).get("runs", [])
        shown = {str(run.get("runId")) for run in newest}
        _print_runs(ctx, reversed(newest), set())
        while True:
            page = ctx.api.get(api_path("runs"), **query, after=after, limit=FOLLOW_PAGE)
            _print_runs(ctx, page.get("runs", []), shown)
            after = page["after"]
            if page.get("caughtUp", True):
                ctx.sleep(FOLLOW_INTERVAL_S)
    except KeyboardInterrupt:
        return  # Ctrl-C is how --follow ends: a success


def _print_runs(ctx: Context, runs: Iterable[Mapping[str, Any]], shown: set[str]) -> None:
    for run in runs:
        if shown and str(run.get("runId")) in shown:
            shown.discard(str(run.get("runId")))  # printed with the first page
            continue
        if ctx.json_mode:  # JSON Lines: one run per line
            ctx.print_json(run, compact=True)
        else:
            ctx.print(format_row(run_row(run, FOLLOW_WIDTHS), FOLLOW_WIDTHS))
