"""Read the systemd units in deploy/: their settings, and their ExecStart rendered.

A unit is read as systemd reads it, as far as these tests need: sections, ``Key=value``
lines (a key may repeat), ``#`` comments, and lines continued with a trailing ``\\``.
``render`` writes a copy whose ExecStart points at an installed venv (systemd-analyze
verify wants the program to exist) and ``exec_argv`` expands the specifiers the units
use (``%d`` the credentials directory, ``%S`` the state root).
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_PREFIX = "/opt/scheduler"  # where the units expect the venv (README)
UNITS = {"master": DEPLOY / "scheduler-master.service",
         "worker": DEPLOY / "scheduler-worker.service"}


def logical_lines(text: str) -> list[str]:
    lines, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "a unit ends inside a continued line"
    return lines


def settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given to it, in order."""
    out: dict[str, list[str]] = defaultdict(list)
    section = ""
    for line in logical_lines(path.read_text()):
        if match := re.fullmatch(r"\[(\w+)\]", line):
            section = match[1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a setting: {line!r}"
        out[f"{section}.{key.strip()}"].append(value.strip())
    return dict(out)


def one(unit: dict[str, list[str]], key: str) -> str:
    values = unit.get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def credentials(unit: dict[str, list[str]]) -> dict[str, str]:
    """LoadCredential= ids -> the host file each is read from."""
    pairs = (value.split(":", 1) for value in unit.get("Service.LoadCredential", []))
    return {cred_id: path for cred_id, path in pairs}


def exec_argv(unit: dict[str, list[str]], *, credentials_dir: Path,
              state_root: Path) -> list[str]:
    text = one(unit, "Service.ExecStart")
    text = text.replace("%d", str(credentials_dir)).replace("%S", str(state_root))
    assert "%" not in text, f"a specifier this test does not know: {text}"
    return shlex.split(text)


def render(path: Path, prefix: str, into: Path) -> Path:
    """A copy of the unit whose programs come from the venv at ``prefix``."""
    out = into / path.name
    out.write_text(path.read_text().replace(INSTALL_PREFIX + "/", prefix.rstrip("/") + "/"))
    return out


def seconds(value: str) -> float:
    """A systemd time span of the forms the units use: ``90s``, ``2min``, ``90``."""
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|)", value)
    assert match, f"not a time span this test reads: {value!r}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


def env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile= of the simple form: ``NAME=value`` lines and comments."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name] = value
    return out
