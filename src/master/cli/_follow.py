"""`runs --follow`: print the newest runs, then each new one once, until Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._client import api_path
from ._context import Context
from ._format import format_row
from ._views import FOLLOW_WIDTHS, RUN_HEADERS, run_row

FOLLOW_INTERVAL_S: Final = 1.0
FOLLOW_FIRST_PAGE: Final = 20
FOLLOW_POLL_PAGE: Final = 100
FOLLOW_MEMORY: Final = 10_000  # run ids remembered by --follow (bounded)


def follow_runs(ctx: Context, query: dict[str, Any], first_page: int) -> None:
    """Print the newest runs oldest-first, then poll every second for new ones (Ctrl-C).

    Every poll reads the newest FOLLOW_POLL_PAGE runs; the first one prints only the
    newest `first_page` of them and silently marks the rest as seen, so later polls
    print only runs recorded since (a run is printed once, by id).
    """
    query = {**query, "cursor": None, "limit": FOLLOW_POLL_PAGE}
    seen: dict[str, None] = {}  # insertion-ordered set, trimmed to FOLLOW_MEMORY
    if not ctx.json_mode:
        ctx.print(format_row(RUN_HEADERS, FOLLOW_WIDTHS))
    try:
        runs = ctx.api.get(api_path("runs"), **query).get("runs", [])
        _mark_seen(seen, runs[first_page:])
        while True:
            _print_new_runs(ctx, runs, seen)
            ctx.sleep(FOLLOW_INTERVAL_S)
            runs = ctx.api.get(api_path("runs"), **query).get("runs", [])
    except KeyboardInterrupt:
        return  # Ctrl-C is how --follow ends: a success


def _mark_seen(seen: dict[str, None], runs: Iterable[Mapping[str, Any]]) -> None:
    for run in runs:
        seen[str(run.get("runId"))] = None


def _print_new_runs(ctx: Context, runs: list[dict[str, Any]], seen: dict[str, None]) -> None:
    for run in reversed(runs):  # the API answers newest first; a log reads oldest first
        run_id = str(run.get("runId"))
        if run_id in seen:
            continue
        seen[run_id] = None
        if ctx.json_mode:  # JSON Lines: one run per line
            ctx.print_json(run, compact=True)
        else:
            ctx.print(format_row(run_row(run, FOLLOW_WIDTHS), FOLLOW_WIDTHS))
    while len(seen) > FOLLOW_MEMORY:
        del seen[next(iter(seen))]
