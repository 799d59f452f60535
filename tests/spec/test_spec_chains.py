"""The ``after`` field: its shape, the matching rule and the cycle check."""

from __future__ import annotations

import pytest

from cluster.spec import After, ChainOn, JobSpec, SpecError, chain_cycle, chain_matches, describe_cycle
from cluster.spec._chains import MAX_CHAIN_DEPTH
from cluster.store import RunStatus

STATUSES = tuple(s.value for s in RunStatus)  # replaced and skipped match no `on`


@pytest.mark.parametrize(("on", "expected"), [
    ("succeeded", {"succeeded"}),
    ("failed", {"failed", "timeout", "killed", "lost"}),
    ("completed", {"succeeded", "failed", "timeout", "killed", "lost"}),
])
def test_which_upstream_ends_start_a_chained_job(on, expected):
    assert {s for s in STATUSES if chain_matches(ChainOn(on), s)} == expected
    assert not chain_matches(on, "no-such-status")


def test_after_round_trips_and_defaults_to_succeeded():
    spec = JobSpec.from_json({"name": "b", "command": "x", "cronExpr": "* * * * *",
                              "after": {"job": "a"}})
    assert spec.after == After("a", ChainOn.SUCCEEDED)
    assert spec.to_json()["after"] == {"job": "a", "on": "succeeded"}
    assert JobSpec.from_json(spec.to_bytes()) == spec
    plain = JobSpec.from_json({"name": "a", "command": "x", "cronExpr": "* * * * *"})
    assert plain.after is None and b"after" not in plain.to_bytes()


def test_a_chained_job_may_have_no_cron_expression():
    spec = JobSpec.from_json({"name": "b", "command": "x", "after": {"job": "a", "on": "failed"}})
    assert spec.cron_expr == ""
    assert spec.schedule().next_after(0) is None
    assert "after job 'a'" in spec.schedule().no_fire_reason()
    assert JobSpec.from_json(spec.to_bytes()) == spec
    with pytest.raises(SpecError, match="cronExpr: required field is missing"):
        JobSpec.from_json({"name": "b", "command": "x"})
    with pytest.raises(SpecError, match="^cronExpr:"):
        JobSpec.from_json({"name": "b", "command": "x", "cronExpr": ""})


@pytest.mark.parametrize(("after", "message"), [
    ("a", "after: expected an object"),
    ({"on": "failed"}, "after: job: required field is missing"),
    ({"job": "a/b"}, "after: job: must match"),
    ({"job": "a", "on": "sometimes"}, "after: on: must be succeeded, failed or completed"),
    ({"job": "a", "when": "x"}, "after: unknown field 'when'"),
])
def test_a_bad_after_names_the_field(after, message):
    with pytest.raises(SpecError, match=message):
        JobSpec.from_json({"name": "b", "command": "x", "cronExpr": "* * * * *", "after": after})


def test_cycle_check_follows_the_chain_from_the_saved_job():
    stored = {"b": "c", "c": "d", "d": None}
    assert chain_cycle("a", After("b"), stored.get) is None
    assert chain_cycle("a", None, stored.get) is None
    assert chain_cycle("a", After("missing"), stored.get) is None  # accepted: not yet saved
    assert chain_cycle("d", After("b"), stored.get) == ["d", "b", "c", "d"]
    assert chain_cycle("a", After("a"), stored.get) == ["a", "a"]
    assert describe_cycle(["a", "a"]) == "job 'a' cannot run after itself"
    assert describe_cycle(["d", "b", "c", "d"]).startswith("chain cycle d → b → c → d:")


def test_an_over_long_chain_is_refused_like_a_cycle():
    stored = {f"j{i}": f"j{i + 1}" for i in range(MAX_CHAIN_DEPTH + 5)}
    path = chain_cycle("new", After("j0"), stored.get)
    assert path is not None and len(path) == MAX_CHAIN_DEPTH + 1
    assert "longer than" in describe_cycle(path)
