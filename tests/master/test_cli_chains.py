"""schedctl and chains: --after sends the field, jobs show their chain both ways, and a
cycle refused by the master is one line on stderr (a real master: tests/e2e)."""

from __future__ import annotations

import json
import re

import pytest

from cli_testkit import JOB, FakeMaster, error, ok, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)

CHAINED = {**JOB, "name": "report", "cronExpr": "", "nextFire": None, "schedulable": True,
           "reason": "no cronExpr: runs only after job 'backup'",
           "after": {"job": "backup", "on": "failed"}, "downstream": []}
UPSTREAM = {**JOB, "after": None, "downstream": [{"job": "report", "on": "failed"},
                                                 {"job": "notify", "on": "completed"}]}


@pytest.mark.parametrize(("flag", "after"), [
    ("backup", {"job": "backup", "on": "succeeded"}),
    ("backup:failed", {"job": "backup", "on": "failed"}),
])
def test_jobs_put_after_may_leave_out_the_cron(flag, after, capsys) -> None:
    fake = FakeMaster({("PUT", "/api/v1/jobs/report"): ok({"job": CHAINED, "previous": None}, 201)})
    assert run(fake, "jobs", "put", "report", "--command", "make report", "--after", flag) == 0
    assert json.loads(fake.last.content) == {"command": "make report", "after": after}
    assert capsys.readouterr().out.startswith("created job report; next fire: none: runs only after backup")


def test_a_bad_after_flag_is_a_usage_error(capsys) -> None:
    fake = FakeMaster({})
    assert run(fake, "jobs", "put", "report", "--command", "x", "--after", "backup:sometimes") == 2
    assert fake.requests == []
    assert "ON must be succeeded, failed or completed" in capsys.readouterr().err


def test_jobs_get_and_list_show_the_chain_both_ways(capsys) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs/report"): ok({"job": CHAINED}),
                       ("GET", "/api/v1/jobs/backup"): ok({"job": UPSTREAM}),
                       ("GET", "/api/v1/jobs"): ok({"jobs": [UPSTREAM, CHAINED]})})
    assert run(fake, "jobs", "get", "report") == 0
    out = capsys.readouterr().out
    assert re.search(r"^after +each failed run of backup$", out, re.M)
    assert re.search(r"^downstream +none$", out, re.M)
    assert run(fake, "jobs", "get", "backup") == 0
    out = capsys.readouterr().out
    assert re.search(r"^downstream +report \(on failed\), notify \(on completed\)$", out, re.M)
    assert run(fake, "jobs", "list") == 0
    [report_row] = [line for line in capsys.readouterr().out.splitlines()
                    if line.startswith("report ")]
    assert "after backup (failed)" in report_row


def test_a_cycle_is_one_line_on_stderr(capsys) -> None:
    message = "chain cycle a → b → a: job 'a' would run after a job that runs after it"
    fake = FakeMaster({("PUT", "/api/v1/jobs/a"): error(422, "chain_cycle", message, "after")})
    code = run(fake, "jobs", "put", "a", "--command", "x", "--after", "b")
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err
