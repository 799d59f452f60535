"""Who catches up an outage (``job_watcher.returns``): pure, on hand-made etcd keys."""

from __future__ import annotations

from cluster.etcd import KeyValue
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from cluster.spec import JobSpec
from worker.job_watcher.returns import caught_up_elsewhere

KS = Keyspace()
STATE_REV = 100  # the job's last fire was claimed at this revision


def worker(worker_id: str, created: int, **labels: str) -> KeyValue:
    info = WorkerInfo(worker_id, "h", 1, labels=labels)
    return KeyValue(KS.worker(worker_id), info.to_bytes(), created, created + 50, 3, 7)


def job(name: str, **selector: str) -> JobSpec:
    return JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *",
                              "selector": selector})


def elsewhere(me: str, workers: list[KeyValue], *specs: JobSpec) -> set[str]:
    revisions = {s.name: STATE_REV for s in specs}
    return set(caught_up_elsewhere(KS, me, workers, revisions, specs))


def test_the_second_worker_back_leaves_the_catch_up_to_the_first():
    fleet = [worker("w1", 120), worker("w2", 130)]
    assert elsewhere("w2", fleet, job("a")) == {"a"}
    assert elsewhere("w1", fleet, job("a")) == set()  # the first back catches up


def test_a_worker_registered_before_the_outage_is_not_counted_on():
    # Its key lingers from before the last fire (a dead worker's, until its lease
    # expires; or one that ran all along and whose fires are then not missed).
    fleet = [worker("gone", 90), worker("w2", 130)]
    assert elsewhere("w2", fleet, job("a")) == set()


def test_only_a_worker_that_may_run_the_job_is_counted_on():
    fleet = [worker("w1", 120, zone="a"), worker("w2", 130, zone="b")]
    assert elsewhere("w2", fleet, job("in-a", zone="a"), job("in-b", zone="b"),
                     job("any")) == {"in-a", "any"}


def test_without_its_own_key_or_a_readable_one_a_worker_catches_up_itself():
    assert elsewhere("w2", [worker("w1", 120)], job("a")) == set()
    seed = KeyValue(KS.worker("seed"), b"", 120, 120, 1, 7)  # a seed's empty value
    assert elsewhere("w2", [seed, worker("w2", 130)], job("a")) == set()


def test_a_job_never_fired_has_nothing_to_catch_up_or_leave():
    fleet = [worker("w1", 120), worker("w2", 130)]
    assert caught_up_elsewhere(KS, "w2", fleet, {}, [job("new")]) == frozenset()


def test_with_shards_only_a_worker_that_serves_the_job_is_counted_on():
    """Regression (cold start by cohort): the first worker back plans only its share, so
    a job it does not serve must be caught up by its own servers, not left to it."""
    fleet = [worker("w1", 120), worker("w2", 130)]
    specs = (job("w1s"), job("not-w1s"))
    revisions = {s.name: STATE_REV for s in specs}
    found = caught_up_elsewhere(KS, "w2", fleet, revisions, specs,
                                serves=lambda w, spec: spec.name == f"{w}s")
    assert found == {"w1s"}
