"""Fixtures of the Executor tests (their helpers are in executor_testkit)."""

import os
from pathlib import Path

import pytest


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pid.fifo"
    os.mkfifo(path)
    return path
