"""`schedctl jobs` with no action lists the jobs, as `jobs list` does: each with its
expression in words, next fire, last run (status, when, how long), state."""

from __future__ import annotations

import re

import pytest

from master import cli

from cli_testkit import NOW_MS, JOB, LONG, FakeMaster, ok, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)

WORDS = "at 03:00 every day, Europe/Paris"
FAILED = {"runId": "c" * 32, "status": "failed", "trigger": "schedule",
          "scheduleTime": NOW_MS - 300_000, "startTime": NOW_MS - 299_000,
          "endTime": NOW_MS - 295_500, "durationMs": 3_500}
SKIPPED = {"runId": "d" * 32, "status": "skipped", "trigger": "schedule",
           "scheduleTime": NOW_MS - 7_200_000, "startTime": None, "endTime": None,
           "durationMs": None}
CHAINED = {**LONG, "name": "upload", "cronExpr": "", "paused": False, "describe": None,
           "after": {"job": "backup", "on": "succeeded"}, "lastRun": None}
LISTED = {"jobs": [{**JOB, "describe": WORDS, "lastRun": FAILED},
                   {**LONG, "describe": WORDS, "lastRun": SKIPPED}, CHAINED],
          "lastRunsError": None}


def test_jobs_without_an_action_lists_like_jobs_list(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok(LISTED)})
    assert run(fake, "jobs") == 0
    assert (fake.last.method, fake.last.url.path) == ("GET", "/api/v1/jobs")
    bare = capsys.readouterr().out
    assert run(fake, "jobs", "list") == 0
    assert capsys.readouterr().out == bare
    header, backup, long, upload = bare.splitlines()
    assert header.split() == ["NAME", "SCHEDULE", "IN", "WORDS", "NEXT", "FIRE", "LAST", "RUN",
                              "STATE", "RUNNING", "COMMAND"]
    assert re.search(rf"^backup +0 3 \* \* \* +{WORDS}  ", backup)
    assert "2024-05-01T12:01:05+00:00 (in 1m 5s)" in backup
    assert "failed 4m 59s ago (3.500s)" in backup and " active " in backup
    assert "skipped 2h ago  " in long and " paused " in long  # never started: no duration
    assert "after backup (succeeded)" in upload and "none: runs only after backup" in upload
    # aligned: the words and the last runs start at the same column on every line
    words_at = header.index("IN WORDS")
    assert words_at == backup.index(WORDS) == long.index(WORDS)
    assert upload[words_at:].startswith("-  ")  # a job without cronExpr has no words
    assert header.index("LAST RUN") == backup.index("failed") == long.index("skipped")


def test_the_list_says_when_the_last_runs_are_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    down = {"jobs": [{**JOB, "describe": WORDS, "lastRun": None}],
            "lastRunsError": "the run store is unreachable: connection refused"}
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok(down)})
    assert run(fake, "jobs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[2] == "(last runs unknown: the run store is unreachable: connection refused)"


def test_jobs_help_says_that_no_action_lists(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "With no ACTION, list them (as `jobs list`)." in out
    assert cli.main(["jobs", "list", "--help"]) == 0
    assert "last run (status, when, how long)" in " ".join(capsys.readouterr().out.split())


def test_an_unknown_action_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({})
    assert run(fake, "jobs", "lsit") == 2
    assert "invalid choice: 'lsit'" in capsys.readouterr().err
    assert fake.requests == []


def test_jobs_get_and_preview_show_the_words(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({
        ("GET", "/api/v1/jobs/backup"): ok({"job": {**JOB, "describe": WORDS}}),
        ("GET", "/api/v1/cron/preview"): ok({
            "expr": "*/5 * * * * *", "timezone": "UTC", "describe": "every 5 seconds",
            "times": [NOW_MS + 5_000], "reason": None})})
    assert run(fake, "jobs", "get", "backup") == 0
    assert f"in words           {WORDS}" in capsys.readouterr().out
    assert run(fake, "preview", "*/5 * * * * *", "-n", "1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "*/5 * * * * *: every 5 seconds" and lines[1].startswith("#")
