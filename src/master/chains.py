"""Who runs after whom, as the API shows it (a job's ``downstream`` list).

The cycle check itself is ``cluster.spec.chain_cycle``, called on the save path
(``JobManager._upstream_guards``).
"""

from __future__ import annotations

from collections.abc import Iterable

from cluster.spec import JobSpec

__all__ = ["downstream_map"]


def downstream_map(specs: Iterable[JobSpec]) -> dict[str, tuple[JobSpec, ...]]:
    """Job name → the jobs chained after it, sorted by name."""
    found: dict[str, list[JobSpec]] = {}
    for spec in specs:
        if spec.after is not None:
            found.setdefault(spec.after.job, []).append(spec)
    return {name: tuple(sorted(after, key=lambda s: s.name)) for name, after in found.items()}
