"""The flow diagram in docs/DESIGN.md is the wiring's own: generated, and kept equal."""

from __future__ import annotations

import re
from pathlib import Path

from worker.flow import messages_accepted, arrows, render

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "DESIGN.md"
BLOCK = re.compile(r"<!-- flow:begin -->\n```\n(.*?)\n```\n<!-- flow:end -->", re.S)


def test_design_shows_the_flow_the_code_has() -> None:
    shown = BLOCK.search(DESIGN.read_text(encoding="utf-8"))
    assert shown is not None, "docs/DESIGN.md lost its flow block"
    assert shown.group(1) == render(arrows()), "run: python -m worker.flow"


def test_every_actor_holds_only_addresses_it_sends_messages_to() -> None:
    found = arrows()
    assert {a.sender for a in found} == {"job-watcher", "scheduler", "locker", "executor",
                                         "registrar"}  # the LogSink sends to nobody
    assert all(a.messages for a in found), [a for a in found if not a.messages]


def test_the_flow_carries_a_fire_from_the_watcher_to_the_sink() -> None:
    sends = {(a.sender, a.receiver): set(a.messages) for a in arrows()}
    assert "JobSaved" in sends["job-watcher", "scheduler"]
    assert "Claim" in sends["scheduler", "locker"]
    assert "Granted" in sends["locker", "scheduler"]
    assert "StartRun" in sends["scheduler", "executor"]
    assert "Write" in sends["executor", "log-sink"]


def test_the_map_lists_what_each_actor_is_sent() -> None:
    rows = re.findall(r"^\| (JobWatcher|Scheduler|Locker|Executor|LogSink|Registrar) \|"
                      r"[^|]*\| ([^|]*) \|$", DESIGN.read_text(encoding="utf-8"), re.M)
    mailbox = {"JobWatcher": "job-watcher", "Scheduler": "scheduler", "Locker": "locker",
               "Executor": "executor", "LogSink": "log-sink", "Registrar": "registrar"}
    assert [actor for actor, _ in rows] == list(mailbox)
    for actor, cell in rows:
        assert set(re.findall(r"`(\w+)`", cell)) == messages_accepted(mailbox[actor]), actor
