"""The etcd keyspace: the DESIGN §4 layout, build/parse round trips, foreign keys."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from cluster.keyspace import (
    ActiveKey, JobKey, KeyspaceError, Keyspace, KillerKey, KillRequest, KillValueError,
    LockKey, RunningKey, StateKey, TriggerKey, UnschedulableKey, WorkerKey, encode_kill_value,
    parse_kill_value,
)

KS = Keyspace()


def test_default_layout_is_the_design_table() -> None:
    assert KS.job("backup") == "/cron/jobs/backup"
    assert KS.killer("backup") == "/cron/killer/backup"
    assert KS.trigger("backup", "r1") == "/cron/trigger/backup/r1"
    assert KS.lock("backup", 1_750_000_000_000) == "/cron/lock/backup/0001750000000000"
    assert KS.running("backup", "r1") == "/cron/running/backup/r1"
    assert KS.active("backup") == "/cron/active/backup"
    assert KS.worker("host-1:42") == "/cron/workers/host-1:42"
    assert KS.state("backup") == "/cron/state/backup"
    assert KS.unschedulable("backup") == "/cron/unschedulable/backup"
    assert KS.unschedulable_prefix == "/cron/unschedulable/"
    assert (KS.jobs_prefix, KS.killer_prefix, KS.trigger_prefix, KS.workers_prefix,
            KS.active_prefix, KS.state_prefix) == (
        "/cron/jobs/", "/cron/killer/", "/cron/trigger/", "/cron/workers/",
        "/cron/active/", "/cron/state/")
    assert KS.lock_prefix() == "/cron/lock/" and KS.lock_prefix("a") == "/cron/lock/a/"
    assert KS.running_prefix() == "/cron/running/"
    assert KS.running_prefix("a") == "/cron/running/a/"
    assert KS.trigger_prefix_of("a") == "/cron/trigger/a/"


def test_every_key_sits_under_its_prefix() -> None:
    ks = Keyspace("/t-abc/")
    assert ks.job("a").startswith(ks.jobs_prefix)
    assert ks.lock("a", 5).startswith(ks.lock_prefix("a"))
    assert ks.running("a", "r").startswith(ks.running_prefix("a"))
    assert ks.trigger("a", "r").startswith(ks.trigger_prefix_of("a"))
    # A job's prefix does not cover another job whose name extends it.
    assert not ks.lock("ab", 5).startswith(ks.lock_prefix("a"))


@pytest.mark.parametrize("prefix", ["cron/", "/cron", "", "/a//b/", "/a b/", None])
def test_bad_prefixes_are_rejected(prefix: object) -> None:
    with pytest.raises(KeyspaceError):
        Keyspace(prefix)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a/b", "..", ".", "", "a" * 129, "-a", "x y", "é"])
def test_invalid_names_never_build_a_key(name: str) -> None:
    for build in (KS.job, KS.killer, KS.active, KS.state, KS.unschedulable, KS.lock_prefix):
        with pytest.raises(KeyspaceError, match="invalid job name"):
            build(name)
    with pytest.raises(KeyspaceError):
        KS.lock(name, 1)


@pytest.mark.parametrize("bad", [-1, 10**16, 1.5, True, "5"])
def test_invalid_fire_times_never_build_a_lock(bad: object) -> None:
    with pytest.raises(KeyspaceError, match="planned_ms"):
        KS.lock("a", bad)  # type: ignore[arg-type]


def test_invalid_ids_never_build_a_key() -> None:
    for bad in ("", "a/b", "../x", "x y"):
        with pytest.raises(KeyspaceError, match="run id"):
            KS.running("a", bad)
        with pytest.raises(KeyspaceError, match="worker id"):
            KS.worker(bad)


def test_locks_of_a_job_sort_by_fire_time() -> None:
    times = [5, 1_000, 999, 1_750_000_000_000, 42]
    keys = sorted(KS.lock("job", t) for t in times)
    assert [KS.parse_lock(k) for k in keys] == [("job", t) for t in sorted(times)]


_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True)
_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,60}", fullmatch=True)
_prefixes = st.sampled_from(["/cron/", "/", "/t-1234/", "/a/b/"])


@settings(max_examples=200, deadline=None)
@given(_prefixes, _names, _ids, st.integers(0, 10**16 - 1))
def test_build_parse_round_trips(prefix: str, name: str, run_id: str, planned: int) -> None:
    ks = Keyspace(prefix)
    assert ks.parse(ks.job(name)) == JobKey(name)
    assert ks.parse(ks.killer(name)) == KillerKey(name)
    assert ks.parse(ks.trigger(name, run_id)) == TriggerKey(name, run_id)
    assert ks.parse(ks.lock(name, planned)) == LockKey(name, planned)
    assert ks.parse(ks.running(name, run_id)) == RunningKey(name, run_id)
    assert ks.parse(ks.active(name)) == ActiveKey(name)
    assert ks.parse(ks.worker(run_id)) == WorkerKey(run_id)
    assert ks.parse(ks.state(name).encode()) == StateKey(name)  # bytes, as etcd returns
    assert ks.name_from_job_key(ks.job(name)) == name
    assert ks.parse_killer(ks.killer(name)) == name
    assert ks.parse_trigger(ks.trigger(name, run_id)) == (name, run_id)
    assert ks.parse_lock(ks.lock(name, planned)) == (name, planned)
    assert ks.parse_running(ks.running(name, run_id)) == (name, run_id)
    assert ks.parse_active(ks.active(name)) == name
    assert ks.parse_worker(ks.worker(run_id)) == run_id
    assert ks.parse_state(ks.state(name)) == name
    assert ks.parse(ks.unschedulable(name)) == UnschedulableKey(name)
    assert ks.parse_unschedulable(ks.unschedulable(name).encode()) == name
    assert ks.parse_unschedulable(ks.state(name)) is None
    # Each parser recognises its own shape only.
    assert ks.name_from_job_key(ks.killer(name)) is None
    assert ks.parse_trigger(ks.running(name, run_id)) is None


@pytest.mark.parametrize("key", [
    "/other/jobs/a", "/cron/jobs/", "/cron/jobs/a/b", "/cron/jobs/..", "/cron/nope/a",
    "/cron/trigger/a", "/cron/trigger/a/b/c", "/cron/lock/a/123", "/cron/lock/a/x",
    "/cron/lock/a/00000000000000\uff11\uff12", "/cron/workers/", "/cron", "", b"/cron/jobs/\xff",
    "/cronjobs/a", "/cron/running/a/", "/cron/active/a/b",
])
def test_foreign_keys_parse_to_none(key: str | bytes) -> None:
    assert KS.parse(key) is None
    assert KS.name_from_job_key(key) is None


def test_parsed_keys_support_match() -> None:
    match KS.parse(KS.trigger("a", "r9")):
        case TriggerKey(name=name, run_id=run_id):
            assert (name, run_id) == ("a", "r9")
        case _:
            pytest.fail("not a trigger key")


# --------------------------------------------------------------------------- kill values


@pytest.mark.parametrize(("value", "expected"), [
    (b"kill", KillRequest()), (b"KILL\n", KillRequest()), (b"", KillRequest()),
    (b"{}", KillRequest()), (b'{"runId": null}', KillRequest()),
    (b'{"runId": "r-1"}', KillRequest("r-1")), ('{"runId": "r-2"}', KillRequest("r-2")),
    (b'{"runId": "r-3", "by": "ops"}', KillRequest("r-3")),
    (b'{"runId": "r-4", "replacedBy": "r-5"}', KillRequest("r-4", replaced_by="r-5")),
])
def test_kill_values(value: bytes | str, expected: KillRequest) -> None:
    assert parse_kill_value(value) == expected


@pytest.mark.parametrize("value", [b"stop", b"[1]", b'{"runId": 5}', b'{"runId": "a/b"}',
                                   b"\xff\xfe", b'"kill"',
                                   b'{"runId": "r-1", "replacedBy": "a b"}'])
def test_bad_kill_values(value: bytes) -> None:
    with pytest.raises(KillValueError, match="invalid kill request"):
        parse_kill_value(value)


def test_encoded_kill_values_parse_back() -> None:
    assert parse_kill_value(encode_kill_value()) == KillRequest()
    assert parse_kill_value(encode_kill_value("r-7")) == KillRequest("r-7")
    assert json.loads(encode_kill_value("r-7")) == {"runId": "r-7"}
    replaced = encode_kill_value("r-7", replaced_by="r-8")
    assert parse_kill_value(replaced) == KillRequest("r-7", replaced_by="r-8")


def test_retry_locks_and_lost_claims_round_trip():
    from cluster.keyspace import Keyspace, LockKey, LostKey

    ks = Keyspace("/cron/")
    assert ks.parse(ks.lock("job", 1_700_000_000_000)) == LockKey("job", 1_700_000_000_000)
    assert ks.parse(ks.lock("job", 1_700_000_000_000, 3)) == LockKey("job", 1_700_000_000_000, 3)
    assert ks.lock("job", 5, 1) == ks.lock("job", 5)
    assert ks.parse(ks.lost("job", "abc123")) == LostKey("job", "abc123")
    assert ks.parse(ks.lock("job", 5) + ".0") is None
    assert ks.parse(ks.lock("job", 5) + ".01") is None


def test_audit_keys_build_parse_and_stay_out_of_every_watched_range() -> None:
    from cluster.keyspace import AuditKey

    entry_id = "0001750000000000-0123456789abcdef"
    assert KS.audit(entry_id) == f"/cron/audit/{entry_id}"
    assert KS.audit_prefix == "/cron/audit/"
    assert KS.parse(KS.audit(entry_id)) == AuditKey(entry_id)
    assert KS.parse_audit(KS.audit(entry_id)) == entry_id
    for bad in ("1750000000000-0123456789abcdef", "0001750000000000-XYZ", "a/b", ""):
        with pytest.raises(KeyspaceError):
            KS.audit(bad)
        assert KS.parse_audit(f"/cron/audit/{bad}") is None
    # What workers read or watch (JobWatcher, catch-up state) never covers audit/.
    watched = (KS.workers_prefix, KS.running_prefix(), KS.jobs_prefix, KS.killer_prefix,
               KS.trigger_prefix, KS.state_prefix, KS.lock_prefix(), KS.active_prefix)
    for prefix in watched:
        assert not KS.audit(entry_id).startswith(prefix), prefix
        assert not prefix.startswith(KS.audit_prefix), prefix
