"""RunRecord, URL parsing and cursors: the store's pure parts, no database."""

from __future__ import annotations

import base64
import re

import asyncmy.cursors
import pytest

from cluster.config import MysqlUrl, SqliteUrl
from cluster.store import (InvalidCursor, InvalidRunRecord, RunRecord, RunStatus, RunTrigger,
                           StoreConfigError, StoreError, redact)
from cluster.store._cursor import decode_cursor, encode_cursor
from cluster.store._schema import MYSQL
from cluster.store._open import parse_store_url


def record(**overrides: object) -> RunRecord:
    fields: dict[str, object] = dict(
        run_id="r-1", job_name="backup", worker="w1", command="echo hi", output="hi\n",
        err="", exit_code=0, status="succeeded", trigger="schedule", attempt=1,
        plan_time=1_700_000_000_000, schedule_time=1_700_000_000_005,
        start_time=1_700_000_000_010, end_time=1_700_000_000_500,
    )
    fields.update(overrides)
    return RunRecord(**fields)  # type: ignore[arg-type]


def test_strings_become_enums():
    r = record(status="timeout", trigger="retry")
    assert r.status is RunStatus.TIMEOUT and r.trigger is RunTrigger.RETRY
    assert r == record(status=RunStatus.TIMEOUT, trigger=RunTrigger.RETRY)


def test_to_json_speaks_the_seed_camel_case():
    data = record(exit_code=None, start_time=None, end_time=None, status="skipped").to_json()
    for seed_key in ("jobName", "command", "err", "output", "planTime", "scheduleTime",
                     "startTime", "endTime"):
        assert seed_key in data
    assert data["runId"] == "r-1" and data["status"] == "skipped" and data["exitCode"] is None
    assert data["outputTruncated"] is False
    assert type(data["status"]) is str and type(data["trigger"]) is str


def test_from_json_inverts_to_json():
    r = record(output="x😀\x00y", output_truncated=True, exit_code=-9, status="killed")
    assert RunRecord.from_json(r.to_json()) == r


def test_a_skip_record_round_trips_and_an_older_spill_line_still_loads():
    r = record(status="skipped", start_time=None, end_time=None, exit_code=None,
               skip_count=9, first_skip_time=1, last_skip_time=9)
    assert RunRecord.from_json(r.to_json()) == r
    older = record().to_json()  # as a worker before the skip fields wrote it
    for key in ("skipCount", "firstSkipTime", "lastSkipTime"):
        del older[key]
    assert RunRecord.from_json(older) == record()
    with pytest.raises(InvalidRunRecord, match="skip_count"):
        record(skip_count=None)


def test_from_json_names_a_missing_field():
    data = record().to_json()
    del data["planTime"]
    with pytest.raises(InvalidRunRecord, match="planTime"):
        RunRecord.from_json(data)


@pytest.mark.parametrize("overrides, field", [
    ({"status": "done"}, "status"),
    ({"trigger": "cron"}, "trigger"),
    ({"run_id": ""}, "run_id"),
    ({"job_name": "j" * 129}, "job_name"),
    ({"attempt": True}, "attempt"),
    ({"plan_time": 1.5}, "plan_time"),
    ({"start_time": "now"}, "start_time"),
    ({"output": None}, "output"),
    ({"output_truncated": 1}, "output_truncated"),
])
def test_impossible_fields_are_rejected(overrides, field):
    with pytest.raises(InvalidRunRecord, match=field) as info:
        record(**overrides)
    assert isinstance(info.value, ValueError) and isinstance(info.value, StoreError)


def test_sort_time_is_start_or_else_schedule():
    assert record().sort_time == 1_700_000_000_010
    assert record(start_time=None, status="skipped").sort_time == 1_700_000_000_005


@pytest.mark.parametrize("url, target", [
    ("mysql://u:p%40ss@db.example:3307/runs",
     MysqlUrl("db.example", 3307, database="runs", user="u", password="p@ss")),
    ("mariadb://u@127.0.0.1/runs", MysqlUrl("127.0.0.1", 3306, database="runs", user="u")),
    ("sqlite:///data/runs.db", SqliteUrl("data/runs.db")),
    ("sqlite:////var/lib/runs.db", SqliteUrl("/var/lib/runs.db")),
])
def test_urls_parse(url, target):
    assert parse_store_url(url) == target


@pytest.mark.parametrize("url", [
    "postgres://u:secret@h/db", "mysql://u:secret@h", "mysql://u:secret@h/a/b",
    "mysql://u:secret@h:notaport/db", "mysql://h/db", "sqlite:///", "sqlite://relative.db",
    "mysql://u:secret@h/db?ssl=1",
])
def test_bad_urls_fail_without_showing_the_password(url):
    with pytest.raises(StoreConfigError) as info:
        parse_store_url(url)
    assert "secret" not in str(info.value)


def test_redact_hides_only_the_password():
    assert redact("mysql://u:secret@h:1/db") == "mysql://u:***@h:1/db"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"
    assert "secret" not in repr(parse_store_url("mysql://u:secret@h/db"))


def test_cursor_round_trips_and_rejects_forgeries():
    assert decode_cursor(encode_cursor(1_700_000_000_000, 42)) == (1_700_000_000_000, 42)
    for bad in ("", "!!!", encode_cursor(1, 2)[:-3], "eDoxOjI"):  # last: wrong version
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_a_cursor_naming_numbers_no_column_can_hold_is_refused():
    """Forged cursors with numbers beyond 64 bits made SQLite raise OverflowError (a 500)."""
    top, bottom = 2**63 - 1, -(2**63)
    assert decode_cursor(encode_cursor(top, top)) == (top, top)
    assert decode_cursor(encode_cursor(bottom, 0)) == (bottom, 0)
    forged = [encode_cursor(top + 1, 1), encode_cursor(1, bottom - 1), encode_cursor(10**30, 1)]
    raw = ["k1:+5:1", "k1: 5:1", "k1:5_0:1", "k1:1:2:3", "k1:1", "k1::1", "k1:0x5:1"]
    forged += [base64.urlsafe_b64encode(text.encode()).decode() for text in raw]
    for bad in forged:
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_mysql_upsert_is_rewritten_into_one_multi_row_statement():
    # asyncmy turns executemany into one INSERT only when this pattern matches.
    match = asyncmy.cursors.RE_INSERT_VALUES.match(MYSQL.upsert)
    assert match is not None
    assert re.fullmatch(r"\((%s, )+%s\)", match.group(2))
    assert match.group(3).strip().startswith("ON DUPLICATE KEY UPDATE")
