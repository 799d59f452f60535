"""schedctl against a stand-in master: runs (filters, cursor, follow), one run's
output, workers and preview.
"""

from __future__ import annotations

import json

import pytest

from cli_testkit import NOW_MS, RUN, FakeMaster, ok, run, run_with
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)


# ---------------------------------------------------------------- runs


def test_runs_sends_filters_and_prints_the_cursor(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/runs"): ok({"runs": [RUN], "nextCursor": "cur-2"})})
    code = run(fake, "runs", "--job", "backup", "--status", "failed", "--since", "-1h30m",
               "--until", "2024-05-01T11:00:00+00:00", "--limit", "10", "--cursor", "cur-1")
    assert code == 0
    assert dict(fake.last.url.params) == {
        "job": "backup", "status": "failed", "since": str(NOW_MS - 5_400_000),
        "until": str(NOW_MS - 3_600_000), "limit": "10", "cursor": "cur-1"}
    out = capsys.readouterr().out
    assert "b" * 32 in out and "succeeded" in out and "1.500s" in out
    assert out.rstrip().endswith("(more: add --cursor cur-2)")


def test_status_choices_are_the_stores_statuses_replaced_included() -> None:
    from cluster.store import RunStatus
    from master.cli._parser import RUN_STATUSES
    assert RUN_STATUSES == tuple(s.value for s in RunStatus)
    fake = FakeMaster({("GET", "/api/v1/runs"): ok({"runs": [RUN], "nextCursor": None})})
    assert run(fake, "runs", "--status", "replaced") == 0
    assert dict(fake.last.url.params)["status"] == "replaced"


def test_follow_prints_each_new_run_once_oldest_first_until_ctrl_c(
        capsys: pytest.CaptureFixture[str]) -> None:
    newest = [run_with("r2", NOW_MS - 1000), run_with("r1", NOW_MS - 2000)]
    follow_pages = {
        "now": {"runs": [], "after": "c0", "caughtUp": True},
        # r2 landed between the cursor and the newest page: it comes twice, printed once
        "c0": {"runs": [run_with("r2", NOW_MS - 1000), run_with("r3", NOW_MS)],
               "after": "c1", "caughtUp": False},
        "c1": {"runs": [run_with("r4", NOW_MS + 1)], "after": "c2", "caughtUp": True},
        "c2": {"runs": [], "after": "c2", "caughtUp": True},
    }

    def answer(request):
        after = request.url.params.get("after")
        if after is None:
            return ok({"runs": newest, "nextCursor": "older"})
        return ok(follow_pages[after])

    fake = FakeMaster({("GET", "/api/v1/runs"): answer})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    assert run(fake, "runs", "--job", "backup", "--follow", "--limit", "2", sleep=sleep) == 0
    assert sleeps == [0.5, 0.5]  # only once caught up: c0's full page is followed at once
    params = [dict(r.url.params) for r in fake.requests]
    assert params == [{"job": "backup", "after": "now"}, {"job": "backup", "limit": "2"},
                          {"job": "backup", "after": "c0", "limit": "1000"},
                          {"job": "backup", "after": "c1", "limit": "1000"},
                          {"job": "backup", "after": "c2", "limit": "1000"}]
    assert all("cursor" not in p for p in params)  # never re-reads the newest page
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("RUN ID")
    assert [line.split()[0] for line in lines[1:]] == ["r1", "r2", "r3", "r4"]


def test_follow_json_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    def answer(request):
        if request.url.params.get("after") is None:
            return ok({"runs": [RUN], "nextCursor": None})
        return ok({"runs": [], "after": "c", "caughtUp": True})

    fake = FakeMaster({("GET", "/api/v1/runs"): answer})

    def stop(seconds: float) -> None:
        raise KeyboardInterrupt

    assert run(fake, "--json", "runs", "-f", sleep=stop) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [RUN]


def test_run_shows_output_with_control_characters_escaped(
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", f"/api/v1/runs/{RUN['runId']}"): ok({"run": RUN})})
    assert run(fake, "run", str(RUN["runId"])) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred\\x1b[0m" in out
    assert "--- output ---\ndone\n" in out and "--- err: empty ---" in out
    assert "2024-05-01T11:59:00+00:00" in out  # planned


def test_workers_table_warns_about_skew(capsys: pytest.CaptureFixture[str]) -> None:
    workers = [{"id": "w1", "host": "h1", "pid": 10, "labels": {"zone": "eu"},
                "version": "0.1.0", "startedAt": NOW_MS - 3_600_000, "running": 1,
                "capacity": 8, "wallClock": NOW_MS, "lastSeen": NOW_MS - 2000, "skewMs": 12},
               {"id": "w2", "host": "h2", "pid": 11, "labels": {}, "version": "0.1.0",
                "startedAt": NOW_MS, "running": 0, "capacity": 4, "wallClock": NOW_MS,
                "lastSeen": NOW_MS, "skewMs": -2500}]
    fake = FakeMaster({("GET", "/api/v1/workers"): ok({"workers": workers})})
    assert run(fake, "workers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "zone=eu" in lines[1] and "1/8" in lines[1] and "2s ago" in lines[1]
    assert lines[1].endswith("+12ms") and lines[2].endswith("-2500ms !! above 1s")


def test_workers_table_warns_beyond_the_masters_limit(capsys: pytest.CaptureFixture[str]) -> None:
    workers = [{"id": "w1", "skewMs": -2500}, {"id": "w2", "skewMs": 4000}]
    fake = FakeMaster({("GET", "/api/v1/workers"): ok({"workers": workers,
                                                       "maxClockSkewMs": 3000})})
    assert run(fake, "workers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("-2500ms") and lines[2].endswith("+4000ms !! above 3s")


def test_workers_table_lists_each_workers_problems_below(
        capsys: pytest.CaptureFixture[str]) -> None:
    workers = [{"id": "w1", "skewMs": 0, "problems": ["spill: disk full"]},
               {"id": "w2", "skewMs": 0, "problems": []}, {"id": "old", "skewMs": 0}]
    fake = FakeMaster({("GET", "/api/v1/workers"): ok({"workers": workers})})
    assert run(fake, "workers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[1].endswith("+0ms")
    assert lines[4] == "!! worker w1: spill: disk full"


def test_preview_passes_expr_zone_and_count(capsys: pytest.CaptureFixture[str]) -> None:
    times = [NOW_MS + 60_000, NOW_MS + 120_000]
    fake = FakeMaster({("GET", "/api/v1/cron/preview"):
                       ok({"expr": "* * * * *", "timezone": "Asia/Tokyo", "times": times})})
    assert run(fake, "preview", "* * * * *", "--tz", "Asia/Tokyo", "-n", "2") == 0
    assert dict(fake.last.url.params) == {"expr": "* * * * *", "tz": "Asia/Tokyo", "n": "2"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["#", "TIME", "(Asia/Tokyo)"]
    assert "2024-05-01T21:01:00+09:00" in lines[1] and "2024-05-01T12:01:00+00:00" in lines[1]
    assert lines[2].endswith("in 2m")


def test_workers_table_shows_a_seed_worker_with_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    seed = {"id": "10.0.0.7", "host": "10.0.0.7", "pid": None, "labels": {}, "version": "",
            "startedAt": None, "running": None, "capacity": None, "wallClock": None,
            "lastSeen": NOW_MS, "skewMs": None, "seed": True}
    fake = FakeMaster({("GET", "/api/v1/workers"): ok({"workers": [seed]})})
    assert run(fake, "workers") == 0
    [_, row] = capsys.readouterr().out.splitlines()
    assert row.split() == ["10.0.0.7", "10.0.0.7", "-", "-", "-/-", "seed", "-", "now", "-"]
