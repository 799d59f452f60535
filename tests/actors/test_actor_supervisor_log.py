"""What a supervisor logs when a child fails: enough to debug the crash from the log."""

from __future__ import annotations

import logging

import pytest
import trio
from trio.testing import MockClock

from actor_testkit import Boom, Scripted
from actors import ChildSpec, Restart, RestartIntensityExceeded, Supervisor

LOGGER = "actors.supervisor"


def formatted(record: logging.LogRecord) -> str:
    """The record as a handler writes it: message, then the traceback."""
    return logging.Formatter().format(record)


def supervisor_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


async def test_each_crash_is_logged_with_name_traceback_restart_count_and_window(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    supervisor = Supervisor(
        [ChildSpec("crasher", lambda: Scripted("crasher", [], outcome="crash", after_s=1))],
        name="root", max_restarts=2, max_seconds=10,
    )
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)

    records = supervisor_records(caplog)
    assert len(records) == 3  # one per crash: restart 1, restart 2, then giving up
    expected = [
        ("restart 1", "1 failure(s) in the last 10 s"),
        ("restart 2", "2 failure(s) in the last 10 s"),
        ("after 2 restarts; giving up", "3 failure(s) in the last 10 s"),
    ]
    for record, (count, window) in zip(records, expected, strict=True):
        text = formatted(record)
        assert record.levelno == logging.ERROR
        assert "supervisor 'root': child 'crasher' crashed" in text
        assert count in text
        assert window in text and "at most 2 restarts allowed" in text
        assert record.exc_info is not None and isinstance(record.exc_info[1], Boom)
        assert "Traceback (most recent call last)" in text
        assert "raise Boom(self.name)" in text  # the child's own frame, not ours
        assert text.rstrip().endswith("actor_testkit.Boom: crasher")


async def test_a_crash_before_started_is_logged_with_its_traceback(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spec = ChildSpec("early", lambda: Scripted("early", [], outcome="crash-before-start"))
    supervisor = Supervisor([spec], name="root", max_restarts=1, max_seconds=5)
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
    texts = [formatted(r) for r in supervisor_records(caplog)]
    assert len(texts) == 2
    assert "child 'early' crashed; restart 1 (1 failure(s) in the last 5 s" in texts[0]
    assert "child 'early' crashed after 1 restarts; giving up (2 failure(s)" in texts[1]
    assert all("Traceback (most recent call last)" in t for t in texts)


async def test_a_temporary_childs_crash_is_logged_though_it_is_not_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spec = ChildSpec("once", lambda: Scripted("once", [], outcome="crash"), Restart.TEMPORARY)
    async with trio.open_nursery() as nursery:
        await nursery.start(Supervisor([spec], name="root").run)
    [record] = supervisor_records(caplog)
    text = formatted(record)
    assert "child 'once' crashed after 0 restarts; not restarted (temporary)" in text
    assert "Traceback (most recent call last)" in text and "raise Boom" in text


async def test_a_permanent_child_returning_is_a_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spec = ChildSpec("quitter", lambda: Scripted("quitter", [], outcome="return"))
    supervisor = Supervisor([spec], name="root", max_restarts=0)
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
    [record] = supervisor_records(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert ("child 'quitter' returned (a permanent child must not) after 0 restarts;"
            " giving up (1 failure(s) in the last 5 s, at most 0 restarts allowed"
            in record.getMessage())
