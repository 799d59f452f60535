"""The two load shapes of the latency benchmark, the probe command, and job registration.

    spread  M jobs ``@every 1s``, anchors (``createdAt``) spread evenly over the second:
            one fire every 1000/M ms, the steady load of a large crontab.
    burst   M jobs ``* * * * * *``: all M due at the same instant every second, the
            worst case of a crontab where everything says ``0 * * * *``.

Every system runs the same probe command, which prints how late the child process
itself started: bash's ``$EPOCHREALTIME`` (no extra fork, unlike ``date``) minus the
planned fire time that the scheduler hands it in ``SCHEDULER_PLAN_TIME_MS``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from cluster.etcd import Etcd, Put
from cluster.keyspace import Keyspace

PROBE_COMMAND = "echo $(( ${EPOCHREALTIME//[!0-9]/} / 1000 - SCHEDULER_PLAN_TIME_MS ))"
MODES = ("spread", "burst")
PERIOD_MS = 1000
ETCD_TXN_OPS = 128  # etcd's default --max-txn-ops


def job_name(i: int) -> str:
    return f"bench-{i:06d}"


def parse_child_ms(output: str) -> int | None:
    """The probe's own lateness from its output, None if it printed something else."""
    text = output.strip()
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Load:
    """M jobs of one shape; ``anchor_ms`` is the ``createdAt`` base of the spread shape."""

    mode: str
    jobs: int
    anchor_ms: int

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.jobs < 1:
            raise ValueError("at least one job")

    def offset_ms(self, i: int) -> int:
        """Phase of job i within the second (0 for every job of a burst)."""
        return (i * PERIOD_MS) // self.jobs if self.mode == "spread" else 0

    def spec(self, i: int, command: str = PROBE_COMMAND) -> dict[str, object]:
        spec: dict[str, object] = {
            "name": job_name(i), "command": command, "concurrency": "allow",
        }
        if self.mode == "spread":
            spec["cronExpr"] = "@every 1s"
            spec["createdAt"] = self.anchor_ms + self.offset_ms(i)
        else:
            spec["cronExpr"] = "* * * * * *"
        return spec

    def fires(self, start_ms: int, end_ms: int) -> list[tuple[int, str]]:
        """Every (planned ms, job) with start_ms <= planned < end_ms, in time order."""
        return sorted(self._fires(start_ms, end_ms))

    def _fires(self, start_ms: int, end_ms: int) -> Iterator[tuple[int, str]]:
        first_second = start_ms - start_ms % PERIOD_MS
        for second in range(first_second - PERIOD_MS, end_ms + PERIOD_MS, PERIOD_MS):
            for i in range(self.jobs):
                phase_ms = (self.anchor_ms + self.offset_ms(i)) % PERIOD_MS
                planned = second + phase_ms if self.mode == "spread" else second
                if start_ms <= planned < end_ms:
                    yield planned, job_name(i)

    def to_args(self) -> list[str]:
        """The same load for a peer process's command line."""
        return ["--mode", self.mode, "--jobs", str(self.jobs), "--anchor-ms", str(self.anchor_ms)]


async def put_jobs(etcd: Etcd, ks: Keyspace, specs: list[dict[str, object]]) -> None:
    """Write job specs in transactions of at most etcd's op limit (100k jobs in seconds)."""
    for start in range(0, len(specs), ETCD_TXN_OPS):
        chunk = specs[start:start + ETCD_TXN_OPS]
        await etcd.txn([], [Put(ks.job(str(s["name"])), json.dumps(s)) for s in chunk])
