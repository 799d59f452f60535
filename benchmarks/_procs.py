"""Reading processes from /proc: which pids are in a process group, and are they gone.

The kill benchmark times "kill asked" to "process group gone" from outside the worker,
so it needs the group's members (bash and what it forked) and a cheap test of each:
one small read of ``/proc/<pid>/stat`` per member, no scan of every pid.
"""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie (dead, not yet reaped) counts as gone."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live pids whose process group is ``pgid`` (one scan of /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def pids_with_cmdline(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def has_env(pid: int, assignment: str) -> bool:
    """Whether ``NAME=value`` is in the process's environment (our own children only)."""
    try:
        return assignment.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
