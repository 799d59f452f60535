"""Hypothesis strategies for cron expressions that croniter and we read alike.

Excluded on purpose: `a-a` ranges (croniter reads them as the whole field) and the
extras (L, W, #), whose combinations croniter treats differently; those have examples.
"""

from __future__ import annotations

from hypothesis import strategies as st

_RANGES = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "dom": (1, 31),
           "month": (1, 12), "dow": (0, 7)}


@st.composite
def _item(draw: st.DrawFn, field: str) -> str:
    lo, hi = _RANGES[field]
    kind = draw(st.sampled_from(["star", "value", "range", "step", "range_step", "list"]))
    if kind == "star":
        return "*"
    if kind == "value":
        return str(draw(st.integers(lo, hi)))
    if kind == "step":
        return f"*/{draw(st.integers(1, hi))}"
    if kind == "list":
        values = draw(st.lists(st.integers(lo, hi), min_size=2, max_size=4))
        return ",".join(map(str, values))
    low = draw(st.integers(lo, hi - 1))
    high = draw(st.integers(low + 1, hi))  # croniter reads low == high as the whole field
    if kind == "range":
        return f"{low}-{high}"
    return f"{low}-{high}/{draw(st.integers(1, 10))}"


@st.composite
def plain_expressions(draw: st.DrawFn) -> tuple[str, bool]:
    """(expression, has a seconds field): 5 or 6 fields of plain items."""
    with_seconds = draw(st.booleans())
    fields = (["second"] if with_seconds else []) + ["minute", "hour", "dom", "month", "dow"]
    return " ".join(draw(_item(f)) for f in fields), with_seconds


@st.composite
def daily_expressions(draw: st.DrawFn) -> str:
    """5 fields firing every day: random minute and hour, `* * *` days."""
    return f"{draw(_item('minute'))} {draw(_item('hour'))} * * *"
