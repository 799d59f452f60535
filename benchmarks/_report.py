"""Results out: a console table, a Markdown table, JSON, and a lateness CDF plot (PNG).

Tables put every system of one run side by side, with our figures divided by theirs,
because ratios within one run survive a busy machine far better than absolute figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ._stats import SystemResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OURS = "scheduler"

COLUMNS = ("system", "runs", "dup", "miss", "p50 ms", "p90 ms", "p99 ms", "max ms",
           "child p50", "child p99", "CPU s", "CPU ms/run")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def row(result: SystemResult) -> list[str]:
    lat, child = result.lateness, result.child
    cpu = "-" if result.cpu_s is None else f"{result.cpu_s:.1f}"
    per_run = result.cpu_ms_per_run
    return [result.system, str(result.runs), str(result.duplicates), str(result.misses),
            _ms(lat.p50_ms), _ms(lat.p90_ms), _ms(lat.p99_ms), _ms(lat.max_ms),
            _ms(child.p50_ms), _ms(child.p99_ms), cpu,
            "-" if per_run is None else f"{per_run:.2f}"]


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "-"
    return f"{ours / max(theirs, 1.0):.2f}x"  # 1 ms floor: no division by a 0 ms p50


def ratio_lines(results: Sequence[SystemResult]) -> list[str]:
    """Ours over each other system, by record lateness and by the child's own measure.

    The child's is the one to judge ours by: a fire claimed ahead is spawned early and
    bash starts the command at the planned instant, so our record's start time is that
    instant by construction (0 ms), while the child sees when its command really ran.
    """
    ours = next((r for r in results if r.system == OURS), None)
    if ours is None:
        return []
    lines = []
    for r in results:
        if r.system == OURS:
            continue
        lines.append(
            f"{OURS} / {r.system}: p50 {ratio(ours.lateness.p50_ms, r.lateness.p50_ms)}, "
            f"p99 {ratio(ours.lateness.p99_ms, r.lateness.p99_ms)}, "
            f"max {ratio(ours.lateness.max_ms, r.lateness.max_ms)}; "
            f"child p50 {ratio(ours.child.p50_ms, r.child.p50_ms)}, "
            f"child p99 {ratio(ours.child.p99_ms, r.child.p99_ms)}")
    return lines


def share_lines(results: Sequence[SystemResult]) -> list[str]:
    """Runs per node, for systems that have more than one (the fleet's balance)."""
    return [f"{r.system} per node: " + ", ".join(f"{n} {c}" for n, c in r.per_node.items())
            for r in results if len(r.per_node) > 1]


def console_table(results: Sequence[SystemResult]) -> str:
    rows = [list(COLUMNS), *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w)
                       in enumerate(zip(r, widths))) for r in rows]
    return "\n".join([*lines, *ratio_lines(results), *share_lines(results)])


def markdown_table(results: Sequence[SystemResult]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    notes = ratio_lines(results) + share_lines(results)
    if notes:
        lines += ["", *(f"- {line}" for line in notes)]
    return "\n".join(lines)


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path


def plot_cdf(path: Path, title: str, results: Sequence[SystemResult]) -> Path | None:
    """Lateness CDF per system on a log-like axis; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for result in results:
        data = result.samples_ms
        if not data:
            continue
        ys = [(i + 1) / len(data) for i in range(len(data))]
        ax.step(data, ys, where="post", label=f"{result.system} (n={len(data)})")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("fire lateness: child spawned - planned (ms)")
    ax.set_ylabel("fraction of fires")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
