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


# --------------------------------------------------------------------------- year fields

#: Plain items' value sets, so that a test can check fires without our parser.
_FULL = {"second": range(0, 60), "minute": range(0, 60), "hour": range(0, 24),
         "dom": range(1, 32), "month": range(1, 13), "dow": range(0, 7), "year": range(1970, 2100)}


def values_of(text: str, field: str) -> set[int]:
    """The values of a field of plain items (`*`, v, a-b, */n, a-b/n, lists; a < b),
    computed the obvious way, for the brute-force searches of the tests."""
    full = _FULL[field]
    values: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base in ("*", "?"):
            low, high = full[0], full[-1]
        elif "-" in base:
            low, high = map(int, base.split("-"))
        else:
            low = high = int(base)
            if step:
                high = full[-1]
        values.update(range(low, high + 1, int(step or 1)))
    return {0 if field == "dow" and v == 7 else v for v in values}


@st.composite
def _year_field(draw: st.DrawFn) -> str:
    """Mostly years after the start of the test times, often decades after."""
    year = st.integers(1990, 2099)
    kind = draw(st.sampled_from(["value", "list", "range", "range_step", "star"]))
    if kind == "star":
        return "*"
    if kind == "value":
        return str(draw(year))
    if kind == "list":
        return ",".join(map(str, sorted(set(draw(st.lists(year, min_size=2, max_size=4))))))
    low = draw(st.integers(1990, 2098))
    high = draw(st.integers(low + 1, 2099))
    if kind == "range":
        return f"{low}-{high}"
    return f"{low}-{high}/{draw(st.integers(2, 12))}"


@st.composite
def _dom_field(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["plain", "leap_day", "last", "near", "last_weekday"]))
    if kind == "plain":
        return draw(_item("dom"))
    if kind == "leap_day":
        return "29"
    if kind == "last":
        return "L"
    if kind == "near":
        return f"{draw(st.integers(1, 31))}W"
    return "LW"


@st.composite
def _dow_field(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["plain", "nth", "last_of"]))
    if kind == "plain":
        return draw(_item("dow"))
    weekday = draw(st.integers(0, 6))
    if kind == "nth":
        return f"{weekday}#{draw(st.integers(1, 5))}"
    return f"{weekday}L"


@st.composite
def year_expressions(draw: st.DrawFn) -> str:
    """7 fields with a year field; day fields with L, W, LW, #, dL or a leap day, and
    the other day field `?` (sometimes both plain and restricted: either matches)."""
    second = draw(st.sampled_from(["0", "30", "*/20", "0,59"]))
    minute = draw(_item("minute"))
    hour = draw(_item("hour"))
    month = draw(st.one_of(_item("month"), st.just("2")))
    if draw(st.booleans()):
        dom, dow = draw(_dom_field()), "?"
    else:
        dom, dow = "?", draw(_dow_field())
    if "?" in (dom, dow) and draw(st.integers(0, 4)) == 0:  # both restricted, plain
        dom, dow = draw(_item("dom")), draw(_item("dow"))
    return f"{second} {minute} {hour} {dom} {month} {dow} {draw(_year_field())}"
