"""Fixtures of the LogSink tests (their helpers are in log_sink_testkit)."""

import pytest
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
