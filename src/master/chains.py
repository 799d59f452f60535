"""Chains on the master: the save path's cycle check and who runs after whom.

The cycle check itself is ``cluster.spec.chain_cycle``; ``upstream_guards`` feeds it
the stored jobs along the chain of the job being saved, and the save's transaction
keeps them as read. ``downstream_map`` is the API's ``downstream`` list of each job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from cluster.etcd import Compare
from cluster.spec import JobSpec, chain_cycle, describe_cycle

from .errors import ChainCycle

__all__ = ["downstream_map", "upstream_guards"]


async def upstream_guards(new: JobSpec, read: Callable[[str], Awaitable[Any]],
                          job_key: Callable[[str], str]) -> list[Compare]:
    """Refuse a chain cycle (``ChainCycle``, 422); else the guards that keep the jobs
    read along ``new``'s chain as they were, so that two saves racing to close a cycle
    cannot both land. ``read(name)`` is the stored job (``.kv``, ``.spec``) or None.

    A chain to a job that does not exist yet is accepted (as in dkron and xxl-job): it
    starts once that job is saved and runs; its absence is guarded too.
    """
    if new.after is None:
        return []
    guards: list[Compare] = []
    stored_after: dict[str, str | None] = {}  # job → the job it runs after, as stored
    current: str | None = new.after.job
    while current is not None and current not in stored_after and current != new.name:
        stored = await read(current)
        if stored is None:
            guards.append(Compare.create_revision(job_key(current), "==", 0))
            stored_after[current] = None
        else:
            guards.append(Compare.mod_revision(job_key(current), "==", stored.kv.mod_revision))
            after = stored.spec.after if stored.spec is not None else None
            stored_after[current] = None if after is None else after.job
        current = stored_after[current]
    cycle = chain_cycle(new.name, new.after, stored_after.get)
    if cycle is not None:
        raise ChainCycle(describe_cycle(cycle))
    return guards


def downstream_map(specs: Iterable[JobSpec]) -> dict[str, tuple[JobSpec, ...]]:
    """Job name → the jobs chained after it, sorted by name."""
    found: dict[str, list[JobSpec]] = {}
    for spec in specs:
        if spec.after is not None:
            found.setdefault(spec.after.job, []).append(spec)
    return {name: tuple(sorted(after, key=lambda s: s.name)) for name, after in found.items()}
