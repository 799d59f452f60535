"""Fire accounting shared by every system measured: lateness percentiles, duplicates, misses.

A system is judged only on fires planned inside the measuring window, against the
fires its load says were due there (``Load.fires``): a due fire with no run is a miss,
a second run of one fire is a duplicate. Lateness is ``start - planned`` where start
is when the system had the child spawned (for our workers: the run record's
``start_time``), and ``child`` is what the probe command measured itself.
Percentiles are nearest-rank, so every figure is a lateness that really occurred.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Observed:
    """One run that a system started."""

    job: str
    planned_ms: int
    start_ms: int  # the child was spawned (epoch ms)
    child_ms: int | None  # the child's own lateness, as it printed it
    node: str  # which worker / process ran it
    fired_ms: int | None = None  # when the scheduler decided to fire (ours only)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True)
class Spread:
    """p50/p90/p99/max of one lateness series, in ms."""

    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        data = sorted(values)
        return cls(percentile(data, 50), percentile(data, 90), percentile(data, 99),
                   float(data[-1]) if data else None)


@dataclass
class SystemResult:
    """One system's figures for one run. ``to_json`` puts the issue's keys first."""

    system: str
    runs: int
    duplicates: int
    misses: int
    lateness: Spread
    child: Spread
    wake: Spread | None  # planned -> the scheduler fired (ours only)
    cpu_s: float | None
    per_node: dict[str, int]
    expected: int
    extra: dict[str, object] = field(default_factory=dict)
    samples_ms: list[int] = field(default_factory=list, repr=False)  # for the CDF plot

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "runs": self.runs, "duplicates": self.duplicates, "misses": self.misses,
            **asdict(self.lateness),
        }
        out.update({f"child_{k}": v for k, v in asdict(self.child).items()})
        if self.wake is not None:
            out.update({f"wake_{k}": v for k, v in asdict(self.wake).items()})
        out.update(expected=self.expected, cpu_s=self.cpu_s, per_node=self.per_node, **self.extra)
        return out

    @property
    def cpu_ms_per_run(self) -> float | None:
        if self.cpu_s is None or not self.runs:
            return None
        return self.cpu_s * 1000 / self.runs


def summarize(system: str, observed: Iterable[Observed], due: Iterable[tuple[int, str]], *,
              start_ms: int, end_ms: int, cpu_s: float | None,
              extra: dict[str, object] | None = None) -> SystemResult:
    """Figures of one system over the window [start_ms, end_ms) against the fires due."""
    runs = [o for o in observed if start_ms <= o.planned_ms < end_ms]
    expected = {(job, planned) for planned, job in due}
    counts = Counter((o.job, o.planned_ms) for o in runs)
    lateness = [o.start_ms - o.planned_ms for o in runs]
    fired = [o.fired_ms - o.planned_ms for o in runs if o.fired_ms is not None]
    return SystemResult(
        system=system,
        runs=len(runs),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        misses=len(expected - set(counts)),
        lateness=Spread.of(lateness),
        child=Spread.of(o.child_ms for o in runs if o.child_ms is not None),
        wake=Spread.of(fired) if fired else None,
        cpu_s=cpu_s,
        per_node=dict(sorted(Counter(o.node for o in runs).items())),
        expected=len(expected),
        extra=dict(extra or {}),
        samples_ms=sorted(lateness),
    )
