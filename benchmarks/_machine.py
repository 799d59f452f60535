"""What a result was measured on: machine, load, code version, command line.

A figure without its machine and the load beside it is not comparable with another,
so every results file carries this block.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ._servers import ROOT


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def machine_info(module: str) -> dict[str, object]:
    """``module``: the benchmark's module name, to write down the exact command."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "commit": git_commit(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "command": " ".join(["python", "-m", module, *sys.argv[1:]]),
    }


def machine_line(info: dict[str, object]) -> str:
    return (f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
            f"Linux {info['kernel']}, Python {info['python']}, commit {info['commit']}, "
            f"load before {info['loadavg_before']}")
