"""schedctl stats against a stand-in master: the window sent, the counts and the top
failing jobs printed, --json as the API answered, a bad window a usage error."""

from __future__ import annotations

import json

import pytest

from cli_testkit import FakeMaster, ok, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)

STATS = {"window": "1h", "bucketS": 60,
         "counts": {"jobs": 12, "pausedJobs": 2, "running": 3, "failures24h": 7, "workers": 4},
         "buckets": [0, 60_000], "runs": {"succeeded": [5, 6], "failed": [1, 0]},
         "latenessP50Ms": [0, None], "latenessP99Ms": [3, None],
         "topFailing": [{"job": "backup", "failures": 5}, {"job": "sync", "failures": 2}],
         "failureStatuses": ["failed", "timeout", "lost", "killed"],
         "partial": False, "completeFrom": None}


def test_stats_prints_counts_and_top_failing(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/stats"): ok(STATS)})
    assert run(fake, "stats", "--window", "1h") == 0
    assert dict(fake.last.url.params) == {"window": "1h"}
    out = capsys.readouterr().out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "jobs 12" in lines and "paused 2" in lines and "running now 3" in lines
    assert "failures (24 h) 7" in lines and "live workers 4" in lines
    assert "runs (1h) failed 1, succeeded 11" in lines
    assert lines.index("backup 5") < lines.index("sync 2")


def test_stats_defaults_to_24h_and_json_is_the_answer(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    fake = FakeMaster({("GET", "/api/v1/stats"): ok(STATS)})
    assert run(fake, "stats", "--json") == 0
    assert dict(fake.last.url.params) == {"window": "24h"}
    assert json.loads(capsys.readouterr().out) == STATS


def test_a_bad_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({})
    assert run(fake, "stats", "--window", "2h") == 2
    assert "invalid choice: '2h'" in capsys.readouterr().err
