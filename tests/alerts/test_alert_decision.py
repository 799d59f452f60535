"""The flapping rule, the webhook signature and the policy/channel validation: pure
functions, times given (a run's own time, no clock)."""

from __future__ import annotations

import pytest

from cluster.alerts import (AlertKind, AlertSettingsError, JobAlertState, SignatureError,
                            decide, parse_channel, parse_policy, sign, verify)

H = 3_600_000


def run_all(statuses_and_times, repeat_s=3600):
    state = JobAlertState("j")
    raised = []
    for i, (status, t) in enumerate(statuses_and_times):
        d = decide(state, run_id=f"r{i}", status=status, time_ms=t, repeat_s=repeat_s)
        state = d.state
        if d.kind is not None:
            raised.append((d.kind.value, d.count, t))
    return raised, state


def test_a_job_failing_every_minute_alerts_once_then_once_per_repeat_with_the_count():
    minutes = [("failed", m * 60_000) for m in range(0, 150)]  # 2.5 h of failures
    raised, state = run_all(minutes)
    assert raised == [("failed", 1, 0), ("failed", 60, H), ("failed", 60, 2 * H)]
    assert state.failures == 150 and state.unalerted == 29


def test_recovered_follows_the_first_success_after_failures_only():
    raised, _ = run_all([("succeeded", 0), ("failed", 10), ("timeout", 20),
                         ("succeeded", 30), ("succeeded", 40), ("killed", 50)])
    assert raised == [("failed", 1, 10), ("recovered", 1, 30), ("killed", 1, 50)]


def test_each_failure_status_is_its_own_kind_and_skipped_is_ignored():
    raised, _ = run_all([("skipped", 0), ("lost", 1), ("succeeded", 2), ("timeout", 3)])
    assert [k for k, _, _ in raised] == ["lost", "recovered", "timeout"]


def test_a_replaced_run_is_neither_failure_nor_success():
    # concurrency replace: the run that took its place is the job's run; a replaced run
    # neither starts nor ends a streak, nor counts in one.
    raised, state = run_all([("replaced", 0), ("failed", 1), ("replaced", 2),
                             ("replaced", 3), ("failed", 4)], repeat_s=0)
    assert raised == [("failed", 1, 1), ("failed", 1, 4)]
    assert state.failing and state.failures == 2
    raised, state = run_all([("failed", 0), ("replaced", 1)])
    assert raised == [("failed", 1, 0)] and state.failing  # no "recovered"


def test_a_replayed_or_older_record_changes_nothing():
    state = JobAlertState("j")
    d1 = decide(state, run_id="a", status="failed", time_ms=100)
    assert d1.kind is AlertKind.FAILED
    again = decide(d1.state, run_id="a", status="failed", time_ms=100)
    assert again.kind is None and again.state == d1.state
    older = decide(d1.state, run_id="b", status="succeeded", time_ms=50)
    assert older.kind is None and older.state == d1.state


def test_repeat_zero_alerts_on_every_failure():
    raised, _ = run_all([("failed", t) for t in range(5)], repeat_s=0)
    assert len(raised) == 5


def test_signature_round_trips_and_refuses_a_changed_body_a_wrong_secret_and_a_stale_t():
    body = b'{"id":"x"}'
    header = sign("s3cret", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(header, body, "s3cret", now=1_700_000_010) == 1_700_000_000
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, body + b" ", "s3cret", now=1_700_000_010)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, body, "other", now=1_700_000_010)
    with pytest.raises(SignatureError, match="stale"):
        verify(header, body, "s3cret", now=1_700_001_000)
    with pytest.raises(SignatureError, match="malformed"):
        verify("v1=abc", body, "s3cret", now=1_700_000_000)


def test_policy_validation_names_the_field():
    assert parse_policy({"on": ["failed"], "channels": ["ops"]}).channels == ("ops",)
    with pytest.raises(AlertSettingsError, match=r"alerts.on: unknown event 'exploded'"):
        parse_policy({"on": ["exploded"]})
    with pytest.raises(AlertSettingsError, match=r"alerts.channels"):
        parse_policy({"channels": ["bad name"]})
    with pytest.raises(AlertSettingsError, match=r"alerts.when: unknown field"):
        parse_policy({"when": 1})


def test_a_channel_never_shows_its_secret():
    ch = parse_channel("ops", {"type": "webhook", "url": "https://h.example/x",
                               "secret": "hunter2"})
    assert "hunter2" not in repr(ch) and "hunter2" not in str(ch.public_json())
    assert ch.public_json()["hasSecret"] is True
    mail = parse_channel("mail", {"type": "email", "host": "smtp.example", "from": "a@b.c",
                                  "to": ["x@y.z"], "password": "pw"})
    assert "pw" not in str(mail.public_json())
    with pytest.raises(AlertSettingsError, match="^url:"):
        parse_channel("x", {"type": "webhook", "url": "ftp://nope"})
    with pytest.raises(AlertSettingsError, match="^type:"):
        parse_channel("x", {"type": "pager"})
