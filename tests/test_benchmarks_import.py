"""Every benchmark module imports: benchmarks are run by hand, not by the suite, so a
rename in src/ (ORPHAN_NOTE moved to worker.scheduler.records) broke
``python -m benchmarks.faults`` unseen until someone ran it."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import benchmarks

MODULES = sorted(m.name for m in pkgutil.iter_modules([str(Path(benchmarks.__file__).parent)]))


def test_the_benchmarks_are_found():
    assert {"faults", "latency", "fault_quorum", "fault_partition", "stats"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_a_benchmark_module_imports(name):
    try:
        importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:  # an optional extra (the bench extra's psutil)
        if exc.name not in {"psutil", "py_spy"}:
            raise
        pytest.skip(f"needs {exc.name} (pip install -e '.[bench]')")
