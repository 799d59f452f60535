"""Job chains: ``after: {job: NAME, on: succeeded|failed|completed}`` (DESIGN "Chains").

A job with ``after`` runs once per matching finished run of its upstream job. A job
has at most one ``after``, so the chains form a forest of in-trees: a cycle can only
be closed by the job being saved, and following ``after`` from it finds it. That walk,
``chain_cycle``, is the one cycle check (the master's save path uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from ..cron import CronSchedule
from ._errors import SpecError
from ._fields import _check_name, _json_type

__all__ = ["After", "ChainOn", "chain_cycle", "chain_matches", "MAX_CHAIN_DEPTH"]

# Statuses that count as a failure of the upstream run. ``skipped`` is not a run, and
# a ``replaced`` one did not complete: a newer run of its job took its place, and that
# run's end is the one that starts the chain. Neither matches any ``on``.
FAILED_STATUSES: Final = frozenset({"failed", "timeout", "killed", "lost"})
MAX_CHAIN_DEPTH: Final = 64  # upstream links followed at most (a longer chain is refused)


class ChainOn(StrEnum):
    """Which finished runs of the upstream job start the downstream one."""

    SUCCEEDED = "succeeded"  # status succeeded
    FAILED = "failed"  # failed, timeout, killed or lost
    COMPLETED = "completed"  # any of these


def chain_matches(on: ChainOn | str, status: str) -> bool:
    """Does an upstream run that ended ``status`` start a job chained ``on``?"""
    if status == "succeeded":
        return on != ChainOn.FAILED
    if status in FAILED_STATUSES:
        return on != ChainOn.SUCCEEDED
    return False  # skipped, replaced, or a status this version does not know


@dataclass(frozen=True, slots=True)
class After:
    """The upstream job and which of its ends count."""

    job: str
    on: ChainOn = ChainOn.SUCCEEDED

    def matches(self, status: str) -> bool:
        return chain_matches(self.on, status)

    def to_json(self) -> dict[str, str]:
        return {"job": self.job, "on": self.on.value}


def parse_after(value: object) -> After | None:
    """The ``after`` field's validator: null, or ``{"job": name, "on": ...}``."""
    if value is None or type(value) is After:
        return value  # type: ignore[return-value]
    if not isinstance(value, Mapping):
        raise SpecError("after", f"expected an object {{job, on}} or null, got {_json_type(value)}")
    unknown = [k for k in value if k not in ("job", "on")]
    if unknown:
        raise SpecError("after", f"unknown field {unknown[0]!r} (known: job, on)")
    if "job" not in value:
        raise SpecError("after", "job: required field is missing")
    job = value["job"]
    try:
        _check_name(job)
    except SpecError as err:
        raise SpecError("after", f"job: {err.reason}") from None
    on = value.get("on", ChainOn.SUCCEEDED.value)
    try:
        return After(job, ChainOn(on))
    except ValueError:
        raise SpecError("after", f"on: must be succeeded, failed or completed, got {on!r}") \
            from None


def chain_cycle(name: str, after: After | None,
                upstream_of: Callable[[str], str | None]) -> list[str] | None:
    """The cycle saving job ``name`` with ``after`` would close, or None.

    ``upstream_of(job)`` is the job another job runs after, as stored (None: no chain
    or no such job). The answer lists the jobs in chain order, starting and ending at
    ``name`` (``["a", "b", "a"]``: a runs after b, b after a); a self-chain is
    ``["a", "a"]``. A chain deeper than ``MAX_CHAIN_DEPTH`` counts as a cycle too.
    """
    path = [name]
    current = after.job if after is not None else None
    while current is not None:
        path.append(current)
        if current == name or len(path) > MAX_CHAIN_DEPTH:
            return path
        current = upstream_of(current)
    return None


def describe_cycle(path: list[str]) -> str:
    """One line: ``job 'a' would run after 'b', which runs after 'a': a cycle``."""
    if len(path) == 2:
        return f"job {path[0]!r} cannot run after itself"
    if len(path) > MAX_CHAIN_DEPTH:
        return f"job {path[0]!r}: chain longer than {MAX_CHAIN_DEPTH} jobs"
    steps = " → ".join(path)
    return f"chain cycle {steps}: job {path[0]!r} would run after a job that runs after it"


class ChainOnlySchedule(CronSchedule):
    """The schedule of a job without ``cronExpr``: it runs only after its upstream."""

    __slots__ = ("upstream",)

    def __init__(self, timezone: str, upstream: str) -> None:
        super().__init__("", timezone)
        self.upstream = upstream

    def next_after(self, t_ms: int) -> int | None:
        return None

    def no_fire_reason(self) -> str:
        return f"no cronExpr: runs only after job {self.upstream!r}"


def after_json(after: After | None) -> dict[str, Any] | None:
    return None if after is None else after.to_json()
