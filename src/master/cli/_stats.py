"""``schedctl stats [--window 1h|24h|7d]``: the dashboard's counts and the jobs that
failed most, from ``GET /api/v1/stats`` (``--json`` prints the series too)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ._client import api_path
from ._context import Context
from ._format import cell, format_fields, format_table

WINDOWS = ("1h", "24h", "7d")


def cmd_stats(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("stats"), window=args.window)
    ctx.emit(data, lambda: stats_text(data))


def stats_text(data: Mapping[str, Any]) -> str:
    counts = data.get("counts", {})
    window = cell(data.get("window"))
    runs = {status: sum(n) for status, n in (data.get("runs") or {}).items()}
    text = format_fields([
        ("jobs", str(counts.get("jobs"))), ("paused", str(counts.get("pausedJobs"))),
        ("running now", str(counts.get("running"))),
        ("failures (24 h)", str(counts.get("failures24h"))),
        ("live workers", str(counts.get("workers"))),
        (f"runs ({window})", ", ".join(f"{cell(s)} {n}" for s, n in sorted(runs.items()))
         or "none")])
    top = data.get("topFailing") or []
    text += f"\n\nmost failures ({window}):\n" + (
        format_table(["JOB", "FAILURES"], [[cell(t.get("job")), str(t.get("failures"))]
                                           for t in top]) if top else "none")
    if data.get("partial"):
        text += "\n(the store is still adding older runs to its statistics)"
    return text


def add_stats(commands: Any, common: argparse.ArgumentParser, leaf: Any) -> None:
    stats = leaf(commands, common, "stats", cmd_stats,
                 "show the dashboard's counts (jobs, paused, running now, failures in 24 h, "
                 "live workers), the window's runs by status and the jobs that failed most")
    stats.add_argument("--window", choices=WINDOWS, default="24h",
                       help="the window, ending now (default: %(default)s)")
