"""Run-now requests held for a job the Scheduler does not plan (yet).

A run-now request may arrive before its job (two watch streams, no common order), so
the Scheduler keeps it for ``PENDING_TRIGGER_S`` for the job to appear, then forgets it
with one warning line per job. With shards on, a request reaches only the workers that
serve its job, and those of its slot while they have not seen the job
(``worker.job_watcher.run_requests``): one held there whose job turns out to be served
by other workers is dropped as soon as that is known (``drop_held``), not kept.
"""

from __future__ import annotations

import logging

from worker.messages import Upstream

__all__ = ["PENDING_TRIGGER_S", "Held", "drop_held", "hold_trigger"]

log = logging.getLogger("worker.scheduler.actor")  # its lines read as the Scheduler's

PENDING_TRIGGER_S = 30.0

Held = tuple[str, int, Upstream | None]  # (run id, asked at, upstream run of a chained run)


def hold_trigger(pending: dict[str, list[Held]], name: str, held: Held, now_ms: int) -> None:
    """Add ``held`` to ``pending`` (name → requests) and drop every request older than
    ``PENDING_TRIGGER_S``."""
    oldest_ms = now_ms - round(PENDING_TRIGGER_S * 1000)
    for held_name, requests in list(pending.items()):
        fresh = [(r, t, u) for r, t, u in requests if t >= oldest_ms]
        if len(fresh) < len(requests):
            log.warning("run-now request for unknown job %r dropped after %.0f s",
                        held_name, PENDING_TRIGGER_S)
        if fresh:
            pending[held_name] = fresh
        else:
            del pending[held_name]
    pending.setdefault(name, []).append(held)


def drop_held(pending: dict[str, list[Held]], name: str) -> None:
    """Forget the requests held for ``name``: other workers serve it (they claim them)."""
    dropped = pending.pop(name, ())
    if dropped:
        log.info("%d run-now requests for job %r left to the workers that serve it",
                 len(dropped), name)
