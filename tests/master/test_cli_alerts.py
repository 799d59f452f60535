"""schedctl alerts: channels (the secret read from a file, never a flag), a test event,
and a job's alerts from flags."""

from __future__ import annotations

import json
import re

import pytest

from cli_testkit import FakeMaster, ok, run, utc_and_token  # noqa: F401 (autouse)

CHANNEL = {"name": "ops", "type": "webhook", "url": "https://hooks.example/x",
           "hasSecret": True}


def test_channels_list_shows_where_and_whether_signed(capsys: pytest.CaptureFixture[str]):
    fake = FakeMaster({("GET", "/api/v1/alert-channels"): ok({"channels": [
        CHANNEL, {"name": "mail", "type": "email", "host": "smtp.example", "port": 587,
                  "from": "a@example.org", "to": ["ops@example.org"]}]})})
    assert run(fake, "alerts", "channels", "list") == 0
    out = capsys.readouterr().out
    assert re.search(r"^ops +webhook +https://hooks.example/x +yes$", out, re.M)
    assert re.search(r"^mail +email +smtp.example:587 -> ops@example.org +-$", out, re.M)


def test_channels_put_reads_the_secret_from_a_file(tmp_path, capsys):
    secret = tmp_path / "ops.secret"
    secret.write_text("s3cr3t\n")
    fake = FakeMaster({("PUT", "/api/v1/alert-channels/ops"): ok({"channel": CHANNEL}, 201)})
    assert run(fake, "alerts", "channels", "put", "ops", "--webhook",
               "https://hooks.example/x", "--format", "slack", "--secret-file",
               str(secret)) == 0
    assert json.loads(fake.last.content) == {"type": "webhook", "url": "https://hooks.example/x",
                                             "format": "slack", "secret": "s3cr3t"}
    assert capsys.readouterr().out == "created alert channel ops\n"
    assert run(fake, "alerts", "channels", "put", "ops") == 2  # nothing to put


def test_alerts_test_queues_a_test_event(capsys):
    fake = FakeMaster({("POST", "/api/v1/alert-channels/ops/test"): ok(
        {"channel": "ops", "eventId": "test:1:ab"}, 202)})
    assert run(fake, "alerts", "test", "ops") == 0
    assert capsys.readouterr().out.startswith("test alert test:1:ab queued for channel ops")


def test_jobs_put_sends_alerts_from_flags(capsys):
    fake = FakeMaster({("PUT", "/api/v1/jobs/backup"): ok({"job": {"name": "backup"}}, 201)})
    assert run(fake, "jobs", "put", "backup", "--command", "true", "--cron", "@daily",
               "--alerts-on", "failed,recovered", "--alerts-channels", "ops") == 0
    assert json.loads(fake.last.content)["alerts"] == {"on": ["failed", "recovered"],
                                                       "channels": ["ops"]}
