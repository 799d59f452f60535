"""The ledger the fault benchmarks' jobs write themselves: their ground truth.

A SIGKILLed or cut-off worker may lose or hold back its run records; a line the job
appended to a file (O_APPEND: lines stay whole) says the fire ran, whatever the store
holds. Each line is "job planned-ms lateness-ms".
"""

from __future__ import annotations

from pathlib import Path


def ledger_command(path: Path | str) -> str:
    """The probe, appending "job planned lateness" to ``path`` (bash expands ``$VARS`` in it)."""
    lateness = "$(( ${EPOCHREALTIME//[!0-9]/} / 1000 - SCHEDULER_PLAN_TIME_MS ))"
    return f'echo "$SCHEDULER_JOB_NAME $SCHEDULER_PLAN_TIME_MS {lateness}" >> {path}'


def read_ledger(path: Path) -> list[tuple[str, int, int]]:
    """(job, planned ms, lateness ms) of each whole line; none if the file is missing."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 3 and all(p.lstrip("-").isdigit() for p in parts[1:]):
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out
