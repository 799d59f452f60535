"""What every peer process shares: the plan file it reads and the results file it writes.

The peers are the systems we measure ourselves against (APScheduler 3, APScheduler 4, a
bare spawn loop). Each runs as a script in a process of its own, possibly in another
virtualenv (APScheduler 4 cannot share one with APScheduler 3), so this module uses
the standard library only and the peers import it as a sibling file.

Plan file (JSON, written by the harness)::

    {"mode": "spread"|"burst", "command": "...", "bash": "/bin/bash",
     "jobs": [["bench-000000", phase_ms], ...],   # phase within the second (spread)
     "anchor_ms": ..., "stop_ms": ...}            # stop firing and exit after stop_ms

Results file (JSON): ``{"node": ..., "runs": [[job, planned_ms, start_ms, child_ms], ...],
"cpu_s": ...}``, where start_ms is when the child had been spawned and child_ms what the
probe printed (null when it printed nothing usable).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

EXIT_MARGIN_MS = 1500  # after stop_ms: the last children finish and are collected


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def cpu_s() -> float:
    """CPU seconds of this process (threads included, children excluded)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Plan:
    mode: str
    command: str
    bash: str
    jobs: list[tuple[str, int]]
    anchor_ms: int
    stop_ms: int

    @classmethod
    def load(cls, path: str) -> "Plan":
        data = json.loads(Path(path).read_text())
        return cls(data["mode"], data["command"], data["bash"],
                   [(name, int(phase)) for name, phase in data["jobs"]],
                   int(data["anchor_ms"]), int(data["stop_ms"]))

    def probe_env(self, planned_ms: int, run_id: str) -> dict[str, str]:
        """The child's environment, as our workers give it (the probe reads the plan time)."""
        return {**os.environ, "SCHEDULER_PLAN_TIME_MS": str(planned_ms),
                "SCHEDULER_RUN_ID": run_id}


def parse_child_ms(output: bytes) -> int | None:
    try:
        return int(output.strip())
    except ValueError:
        return None


@dataclass
class Recorder:
    node: str
    runs: list[list[object]] = field(default_factory=list)

    def add(self, job: str, planned_ms: int, start_ms: int, output: bytes) -> None:
        self.runs.append([job, planned_ms, start_ms, parse_child_ms(output)])

    def dump(self, path: str, **extra: object) -> None:
        data = {"node": self.node, "runs": self.runs, "cpu_s": cpu_s(), **extra}
        Path(path).write_text(json.dumps(data))

    def dump_on_sigterm(self, path: str) -> None:
        """A saturated peer may not wind down in time: when the harness gives up on
        it (SIGTERM), what it recorded is still written, then it exits at once."""
        def dump_and_exit(signum: int, frame: object) -> None:
            self.dump(path, terminated=True)
            os._exit(0)
        signal.signal(signal.SIGTERM, dump_and_exit)
