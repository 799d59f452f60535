"""The job spec: seed compatibility, strict validation naming the field, round trips."""

from __future__ import annotations

import dataclasses
import json
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from cluster.spec import CatchUp, Concurrency, JobSpec, SpecError, schedule_changed

SEED_JOB = {"name": "job1", "command": "echo hello", "cronExpr": "*/5 * * * * *"}
T0 = 1_750_000_000_000


def job(**fields: object) -> dict[str, object]:
    return {**SEED_JOB, **fields}


def test_seed_job_is_valid_with_defaults() -> None:
    spec = JobSpec.from_json(json.dumps(SEED_JOB).encode())
    assert (spec.name, spec.command, spec.cron_expr) == ("job1", "echo hello", "*/5 * * * * *")
    assert spec.timezone == "UTC" and spec.timeout_s == 0 and spec.paused is False
    assert spec.concurrency is Concurrency.FORBID and spec.retries == 0
    assert spec.retry_backoff_s == 10 and spec.starting_deadline_s == 0
    assert dict(spec.selector) == {} and dict(spec.env) == {} and spec.created_at_ms is None


def test_seed_reads_its_three_fields_back_unchanged() -> None:
    stored = json.loads(JobSpec.from_json(SEED_JOB).to_bytes())
    assert {key: stored[key] for key in SEED_JOB} == SEED_JOB


def test_every_input_form_is_accepted() -> None:
    text = json.dumps(SEED_JOB)
    forms = [text, text.encode(), bytearray(text.encode()), SEED_JOB]
    assert len({JobSpec.from_json(form) for form in forms}) == 1


def test_full_spec_round_trips() -> None:
    spec = JobSpec.from_json(job(
        timezone="Europe/Berlin", timeout=2.5, concurrency="replace", paused=True, retries=3,
        retryBackoff=30, startingDeadline=600, catchUp="all",
        selector={"role": "batch", "zone": "eu-1"},
        env={"LANG": "C.UTF-8", "B": "ü"}, createdAt=T0, user="backup",
        after={"job": "upstream", "on": "failed"},
        alerts={"channels": ["ops"], "on": ["recovered", "failed"]}))
    assert spec.to_json() == {
        "name": "job1", "command": "echo hello", "cronExpr": "*/5 * * * * *",
        "timezone": "Europe/Berlin", "timeout": 2.5, "concurrency": "replace",
        "paused": True, "retries": 3, "retryBackoff": 30, "startingDeadline": 600,
        "catchUp": "all", "selector": {"role": "batch", "zone": "eu-1"},
        "env": {"B": "ü", "LANG": "C.UTF-8"},
        "createdAt": T0, "user": "backup", "after": {"job": "upstream", "on": "failed"},
        "alerts": {"on": ["failed", "recovered"], "channels": ["ops"]}}
    assert JobSpec.from_json(spec.to_bytes()) == spec
    assert JobSpec.from_json(spec.to_json()) == spec
    assert list(spec.to_json()) == list(JobSpec.from_json(SEED_JOB).to_json())  # stable keys


def test_catch_up_defaults_to_last_and_is_stored_only_when_all() -> None:
    """Workers of the previous release reject unknown fields: a job that keeps the
    default is stored without the key, so that they still read it."""
    default = JobSpec.from_json(SEED_JOB)
    assert default.catch_up is CatchUp.LAST and default.to_json()["catchUp"] == "last"
    assert b"catchUp" not in default.to_bytes()
    every = JobSpec.from_json(job(catchUp="all"))
    assert every.catch_up is CatchUp.ALL and b'"catchUp":"all"' in every.to_bytes()


def test_user_is_optional_and_null_means_the_workers_default() -> None:
    assert JobSpec.from_json(SEED_JOB).user is None
    assert JobSpec.from_json(job(user=None)).to_json()["user"] is None
    assert JobSpec.from_json(job(user="www-data")).user == "www-data"
    assert JobSpec.from_json(job(user="_apt")).user == "_apt"


def test_spec_is_immutable_and_hashable() -> None:
    env = {"A": "1"}
    spec = JobSpec.from_json(job(env=env))
    env["A"] = "2"
    assert spec.env["A"] == "1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.env["A"] = "3"  # type: ignore[index]
    assert hash(spec) == hash(JobSpec.from_json(job(env={"A": "1"})))


def test_python_construction_is_validated_too() -> None:
    with pytest.raises(SpecError, match=r"^name: "):
        JobSpec(name="a/b", command="true", cron_expr="* * * * *")
    spec = JobSpec(name="a", command="true", cron_expr="* * * * *", concurrency="allow",
                   env={"X": "y"})  # type: ignore[arg-type]
    assert spec.concurrency is Concurrency.ALLOW and dict(spec.env) == {"X": "y"}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("data", "field", "reason"), [
    (b"{not json", "job", "invalid JSON"),
    (b"[1, 2]", "job", "expected a JSON object, got array"),
    (b"\xff\xfe{}", "job", "not valid UTF-8"),
    (b'"x"', "job", "expected a JSON object, got string"),
    (b" " * (300 * 1024), "job", "larger than"),
    (json.dumps(job(timout=5)), "timout", "unknown field"),
    (json.dumps({"name": "a", "command": "x"}), "cronExpr", "required field is missing"),
    (json.dumps({"command": "x", "cronExpr": "* * * * *"}), "name", "required"),
    (json.dumps(job(name="a/b")), "name", "must match"),
    (json.dumps(job(name="..")), "name", "must match"),
    (json.dumps(job(name=".")), "name", "must match"),
    (json.dumps(job(name=".hidden")), "name", "must match"),
    (json.dumps(job(name="-x")), "name", "must match"),
    (json.dumps(job(name="naïve")), "name", "must match"),
    (json.dumps(job(name="")), "name", "must not be empty"),
    (json.dumps(job(name="a" * 200)), "name", "at most 128 characters, got 200"),
    (json.dumps(job(name=5)), "name", "expected a string, got number"),
    (json.dumps(job(cronExpr="* * * *")), "cronExpr", "expected 5, 6 or 7 fields, got 4"),
    (json.dumps(job(cronExpr="0 61 * * * *")), "cronExpr", "minute field '61'"),
    (json.dumps(job(cronExpr=None)), "cronExpr", "expected a string, got null"),
    (json.dumps(job(timezone="Mars/Olympus")), "timezone", "unknown time zone"),
    (json.dumps(job(timezone="localtime")), "timezone", "forbidden time zone"),
    (json.dumps(job(command="x" * (64 * 1024 + 1))), "command", "at most 65536 bytes"),
    (json.dumps(job(command="é" * (33 * 1024))), "command", "at most 65536 bytes"),
    (json.dumps(job(command="   ")), "command", "must not be empty"),
    (json.dumps(job(command="a\u0000b")), "command", "NUL"),
    (json.dumps(job(command="\ud800")), "command", "lone surrogates"),
    (json.dumps(job(timeout="30")), "timeout", "expected a number of seconds, got string"),
    (json.dumps(job(timeout=-1)), "timeout", "must be between 0 and"),
    (json.dumps(job(timeout=10**9)), "timeout", "must be between 0 and"),
    (json.dumps(job(timeout=True)), "timeout", "got boolean"),
    (json.dumps(job(retries=1.5)), "retries", "expected an integer, got number"),
    (json.dumps(job(retries=101)), "retries", "must be between 0 and 100"),
    (json.dumps(job(retryBackoff=None)), "retryBackoff", "got null"),
    (json.dumps(job(startingDeadline=-0.5)), "startingDeadline", "between 0 and"),
    (json.dumps(job(concurrency="sometimes")), "concurrency", "allow, forbid or replace"),
    (json.dumps(job(catchUp="first")), "catchUp", "must be last or all, got 'first'"),
    (json.dumps(job(catchUp=None)), "catchUp", "expected a string, got null"),
    (json.dumps(job(paused="yes")), "paused", "expected a boolean, got string"),
    (json.dumps(job(selector=["a"])), "selector", "expected an object of strings"),
    (json.dumps(job(selector={"a": 1})), "selector", "entry 'a': expected a string"),
    (json.dumps(job(selector={"bad key": "x"})), "selector", "label 'bad key'"),
    (json.dumps(job(selector={f"k{i}": "v" for i in range(33)})), "selector", "at most 32"),
    (json.dumps(job(env={"1X": "y"})), "env", "name '1X'"),
    (json.dumps(job(env={"X": "a\u0000"})), "env", "NUL"),
    (json.dumps(job(env={"X": "y" * (65 * 1024)})), "env", "at most 65536 bytes"),
    (json.dumps(job(createdAt=-1)), "createdAt", "must be between 0"),
    (json.dumps(job(createdAt="now")), "createdAt", "expected an integer"),
    (json.dumps(job(user=0)), "user", "expected a string or null, got number"),
    (json.dumps(job(user="")), "user", "must be a user name"),
    (json.dumps(job(user="Root")), "user", "must be a user name"),
    (json.dumps(job(user="a b")), "user", "must be a user name"),
    (json.dumps(job(user="../etc")), "user", "must be a user name"),
    (json.dumps(job(user="u" * 33)), "user", "must be a user name"),
])
def test_invalid_specs_name_the_field(data: bytes | str, field: str, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        JobSpec.from_json(data)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, ValueError)


def test_non_json_input_type_is_rejected() -> None:
    with pytest.raises(SpecError, match=r"^job: "):
        JobSpec.from_json(12)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- schedule


def test_schedule_is_evaluated_in_the_job_zone() -> None:
    spec = JobSpec.from_json(job(cronExpr="0 9 * * *", timezone="Asia/Tokyo"))
    assert spec.schedule().next_after(T0) == 1_750_032_000_000  # 2025-06-16 00:00 UTC


def test_every_is_anchored_on_created_at() -> None:
    spec = JobSpec.from_json(job(cronExpr="@every 1m", createdAt=T0 + 123))
    assert spec.schedule().next_after(T0) == T0 + 123 + 60_000


def test_every_without_created_at_gets_a_stable_per_name_phase() -> None:
    a = JobSpec.from_json(job(name="alpha", cronExpr="@every 1h"))
    b = JobSpec.from_json(job(name="beta", cronExpr="@every 1h"))
    assert a.anchor_ms == zlib.crc32(b"alpha")
    fire_a, fire_b = a.schedule().next_after(T0), b.schedule().next_after(T0)
    assert fire_a is not None and fire_b is not None
    assert fire_a % 3_600_000 == zlib.crc32(b"alpha") % 3_600_000
    assert fire_a % 3_600_000 != fire_b % 3_600_000  # not all at once


def test_schedule_changed_only_for_the_schedule() -> None:
    base = JobSpec.from_json(job(cronExpr="*/5 * * * *", createdAt=T0))
    same = [dataclasses.replace(base, command="other"), dataclasses.replace(base, paused=True),
            dataclasses.replace(base, cron_expr=" */5  * * * * "),
            dataclasses.replace(base, created_at_ms=T0 + 1)]  # no effect on field cron
    for new in same:
        assert not schedule_changed(base, new)
    for new in [dataclasses.replace(base, cron_expr="*/6 * * * *"),
                dataclasses.replace(base, timezone="Europe/Berlin")]:
        assert schedule_changed(base, new)
    every = dataclasses.replace(base, cron_expr="@every 5m")
    assert schedule_changed(every, every.with_created_at(T0 + 1))
    assert not schedule_changed(every, dataclasses.replace(every, retries=2))


# --------------------------------------------------------------------------- round trips

_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
_seconds = st.one_of(st.integers(0, 86_400), st.floats(0, 86_400, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(name=_names, command=_text.filter(str.strip),
       cron=st.sampled_from(["* * * * *", "*/5 * * * * *", "@daily", "@every 90s",
                             "0 0 12 1 1 * 2030"]),
       zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
       timeout=_seconds, concurrency=st.sampled_from(["allow", "forbid", "replace"]),
       paused=st.booleans(), retries=st.integers(0, 100), backoff=_seconds,
       selector=st.dictionaries(_names, _text.filter(str.isprintable), max_size=4),
       env=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
                           _text, max_size=4),
       created=st.none() | st.integers(0, 2**53))
def test_any_valid_spec_round_trips(name: str, command: str, cron: str, zone: str,
                                    timeout: float, concurrency: str, paused: bool,
                                    retries: int, backoff: float, selector: dict[str, str],
                                    env: dict[str, str], created: int | None) -> None:
    spec = JobSpec.from_json({
        "name": name, "command": command, "cronExpr": cron, "timezone": zone,
        "timeout": timeout, "concurrency": concurrency, "paused": paused,
        "retries": retries, "retryBackoff": backoff, "startingDeadline": timeout,
        "selector": selector, "env": env, "createdAt": created})
    again = JobSpec.from_json(spec.to_bytes())
    assert again == spec and again.to_bytes() == spec.to_bytes()


def test_a_job_without_user_is_stored_without_the_key_for_older_workers() -> None:
    # Workers of the previous version reject unknown fields (rolling upgrades).
    stored = json.loads(JobSpec.from_json(SEED_JOB).to_bytes())
    assert "user" not in stored
    with_user = JobSpec.from_json({**SEED_JOB, "user": "nobody"})
    assert json.loads(with_user.to_bytes())["user"] == "nobody"
    assert JobSpec.from_json(with_user.to_bytes()) == with_user


def test_alerts_pick_events_and_channels_and_an_unknown_event_is_refused() -> None:
    spec = JobSpec.from_json(job(alerts={"on": ["failed", "recovered"], "channels": ["ops"]}))
    assert spec.to_json()["alerts"] == {"on": ["failed", "recovered"], "channels": ["ops"]}
    assert JobSpec.from_json(spec.to_bytes()) == spec
    assert b'"alerts"' not in JobSpec.from_json(SEED_JOB).to_bytes()  # older workers
    with pytest.raises(SpecError, match=r"^alerts\.on: unknown event 'paged'"):
        JobSpec.from_json(job(alerts={"on": ["paged"]}))
    with pytest.raises(SpecError, match=r"^alerts: expected an object"):
        JobSpec.from_json(job(alerts=["failed"]))
