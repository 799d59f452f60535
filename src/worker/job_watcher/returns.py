"""Who catches up an outage: the first worker back, not every worker that comes back.

A worker that starts reads each job's last fire (``state/``) and catches up what was
missed since (``worker.scheduler.catch_up``). When the whole fleet comes back, the
workers start seconds apart; the second reads a cursor the first has moved, and the
fires it would catch up are the first one's *scheduled* fires, whose claims may be
late on a loaded machine: it then wins some of them as catch-ups, with a missed count
of its own (seen in CI). Those fires were not missed: a live worker was there to run
them.

So a worker leaves a job's catch-up to a worker that came back before it: one whose
registration (``workers/<id>``) was created after the job's last fire was claimed (its
``state/`` key's mod revision: it came back after the outage began) and before this
worker's own, and that may run the job (its labels match the selector). Revisions, not
wall clocks: skew cannot reorder them. A key left by a worker that died (it lingers
until its lease expires) was created before the outage, so nobody defers to a dead
worker; a key that cannot be read is not deferred to either. If this worker's own key
is not there (it always is: the Registrar registers before the JobWatcher reads), it
defers to nobody: catching up twice is safe (locks and the outage key), missing is not.

Shards on (``worker.shards``): only to a worker that serves the job (``serves``, over
this worker's membership): one that does not never plans it, so never catches it up.
Since a cold start's cohort plans only its share from the first load, a worker back
first catches up only its own jobs, and each job is caught up by its servers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from cluster.etcd import KeyValue
from cluster.keyspace import Keyspace
from cluster.presence import PresenceDecodeError, WorkerInfo
from cluster.spec import JobSpec

__all__ = ["caught_up_elsewhere"]

log = logging.getLogger(__name__)


def caught_up_elsewhere(ks: Keyspace, worker_id: str, workers: Iterable[KeyValue],
                        state_revisions: Mapping[str, int],
                        specs: Iterable[JobSpec],
                        serves: Callable[[str, JobSpec], bool] | None = None,
                        ) -> frozenset[str]:
    """The jobs whose missed fires a worker back before ``worker_id`` catches up.

    ``state_revisions``: each job's ``state/`` key's mod revision; ``serves``: does a
    worker (by id) serve a job (shards on; none: any worker that matches it may)."""
    workers = list(workers)
    mine = next((kv.create_revision for kv in workers
                 if ks.parse_worker(kv.key) == worker_id), None)
    if mine is None:
        return frozenset()
    before_me: list[tuple[int, WorkerInfo]] = []
    for kv in workers:
        if kv.create_revision >= mine or ks.parse_worker(kv.key) in (None, worker_id):
            continue
        try:
            before_me.append((kv.create_revision, WorkerInfo.from_bytes(kv.value)))
        except PresenceDecodeError:
            continue  # a seed's worker, or a bad value: nobody to count on
    return frozenset(
        spec.name for spec in specs
        if (since := state_revisions.get(spec.name)) is not None
        and any(created > since and info.matches(spec.selector)
                and (serves is None or serves(info.worker_id, spec))
                for created, info in before_me))
