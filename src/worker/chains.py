"""Job chains: the etcd writes that make a chained job run exactly once per matching
finished run of its upstream job (DESIGN "Chains").

A chained run is asked for with a trigger key, ``trigger/<downstream>/<run id>``, the
key a "run now" uses: the claim that deletes it is the one claim (``claims``), so
exactly one worker runs it. What must be exactly once is the key's creation, whoever
ends up knowing how the upstream run ended:

- the worker that ran it, at the run's end and before its record goes to the LogSink:
  one transaction puts the trigger of every matching downstream job and rewrites the
  run's ``running`` key to the state ``ended``, only if the key exists and is not
  ``ended`` yet (``end_mark_ops``). Sent again after a lost answer, it does nothing;
- a survivor, if that worker died before (the key vanished while not ``ended``): the
  run is ``lost``, and its triggers go into the transaction that creates the run's
  ``lost/`` key, which exactly one survivor can (``lost_chain_ops``). A run whose key
  vanished ``ended`` has had its triggers written already: none are written again.

The chained run's id is derived from the downstream job and the upstream run id, so
the trigger of one (downstream, upstream run) pair is always the same key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable

import trio

from cluster.backoff import Backoff
from cluster.etcd import Compare, Etcd, EtcdError, EtcdUnavailable, LeaseExpired, Op, Put
from cluster.keyspace import Keyspace
from cluster.presence import ENDED
from cluster.spec import JobSpec, chain_matches
from cluster.store import RunRecord, RunStatus

from .claims import NOT_OURS_TO_RELEASE, running_info
from .messages import Run, Upstream

log = logging.getLogger(__name__)

Links = tuple[tuple[str, str], ...]  # (downstream job, on)


class ChainIndex:
    """Job name → the jobs chained after it, kept as jobs are saved and deleted.

    The Scheduler's: it stamps each fire with its links when the fire is claimed, so
    the Executor (at the run's end) and the Locker (for a lost run) need no job table.
    """

    def __init__(self) -> None:
        self._after: dict[str, str] = {}  # downstream → upstream
        self._links: dict[str, dict[str, str]] = {}  # upstream → {downstream: on}

    def saved(self, spec: JobSpec) -> None:
        self.deleted(spec.name)
        if spec.after is not None and spec.after.job != spec.name:  # a self-chain: never
            self._after[spec.name] = spec.after.job
            self._links.setdefault(spec.after.job, {})[spec.name] = spec.after.on.value

    def deleted(self, name: str) -> None:
        upstream = self._after.pop(name, None)
        if upstream is not None:
            links = self._links[upstream]
            del links[name]
            if not links:
                del self._links[upstream]

    def replace_all(self, specs: Iterable[JobSpec]) -> None:
        self._after.clear()
        self._links.clear()
        for spec in specs:
            self.saved(spec)

    def links(self, name: str) -> Links:
        return tuple(sorted(self._links.get(name, {}).items()))


def chain_run_id(downstream: str, upstream_run_id: str) -> str:
    """The chained run's id: the same for one (downstream job, upstream run) pair."""
    digest = hashlib.blake2b(f"{downstream}\0{upstream_run_id}".encode(), digest_size=16)
    return digest.hexdigest()  # 32 hex digits, the shape of every run id


def trigger_value(upstream: Upstream, now_ms: int) -> bytes:
    return json.dumps({"requestedAt": now_ms, "after": {
        "job": upstream.job, "runId": upstream.run_id, "status": upstream.status,
    }}, separators=(",", ":")).encode()


def parse_upstream(value: bytes) -> Upstream | None:
    """The upstream run a trigger key names; None for a "run now" (or a value not ours)."""
    try:
        after = json.loads(value).get("after")
        return Upstream(str(after["job"]), str(after["runId"]), str(after["status"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def trigger_puts(ks: Keyspace, links: Links, upstream: Upstream, now_ms: int) -> list[Op]:
    """A trigger (no lease: it waits for a worker) for each downstream job that matches."""
    value = trigger_value(upstream, now_ms)
    return [Put(ks.trigger(name, chain_run_id(name, upstream.run_id)), value)
            for name, on in links if chain_matches(on, upstream.status)]


def end_mark_ops(ks: Keyspace, run: Run, worker_id: str, end: RunRecord,
                 now_ms: int) -> tuple[list[Compare], list[Op]]:
    """The run's end: its ``running`` key becomes ``ended`` together with the triggers,
    only if the key is still there and not ``ended`` already."""
    fire = run.fire
    key = ks.running(fire.spec.name, fire.run_id)
    # The same bytes whenever and by whomever it is written: the compare must see a
    # repeat as one (no clock in them).
    ended = running_info(fire, worker_id, fire.planned_ms, ENDED).to_bytes()
    upstream = Upstream(fire.spec.name, fire.run_id, str(end.status))
    compares = [Compare.version(key, ">", 0), Compare.value(key, "!=", ended)]
    return compares, [Put(key, ended, run.session_lease),
                      *trigger_puts(ks, fire.chains, upstream, now_ms)]


async def mark_ended(etcd: Etcd, ks: Keyspace, worker_id: str, clock_ms: Callable[[], int],
                     run: Run, end: RunRecord, *, retry_max_s: float = 2.0) -> None:
    """Write a chained job's end (``end_mark_ops``) before its record goes anywhere.

    Tried again until etcd answers (the compare makes a repeat harmless); it ends
    without writing if the key is gone (the session was lost: survivors record the run
    ``lost`` and write its triggers). Nothing to do for a job nothing runs after, nor
    for a run this worker records ``lost`` or ``skipped``.
    """
    if not run.fire.chains or end.status in NOT_OURS_TO_RELEASE:
        # A run this worker records ``lost`` is not its to end: its key either went with
        # the session (survivors write its triggers) or is left ``claimed`` at a stop
        # for another worker to run (marking it ``ended`` would stop that).
        return
    compares, ops = end_mark_ops(ks, run, worker_id, end, clock_ms())
    backoff = Backoff(0.05, retry_max_s)
    while True:
        try:
            result = await etcd.txn(compares, ops)
        except LeaseExpired:
            result = None
        except EtcdUnavailable as exc:
            delay_s = backoff.failed()
            log.warning("end of run %s of %r: %s; retrying in %.1f s", run.fire.run_id,
                        run.fire.spec.name, exc, delay_s)
            await trio.sleep(delay_s)
            continue
        except EtcdError as exc:
            log.error("end of run %s of %r: chained jobs not triggered: %s",
                      run.fire.run_id, run.fire.spec.name, exc)
            return
        if result is None or not result.succeeded:
            log.info("end of run %s of %r: its key is gone or ended already; its chained "
                     "runs are not this worker's to trigger", run.fire.run_id,
                     run.fire.spec.name)
        return


def lost_chain_ops(ks: Keyspace, links: Links, job: str, run_id: str, now_ms: int) -> list[Op]:
    """The triggers of a run recorded ``lost`` by a survivor (in its lost-key claim)."""
    return trigger_puts(ks, links, Upstream(job, run_id, str(RunStatus.LOST)), now_ms)
