"""Where a process keeps its own files when the config does not say.

Never the working directory: a master or worker started in a directory another user
can write would then read that user's files (a planted web UI, a forged spill file)
and write its own where that user can read them. The default is the XDG state
directory of the process's user, or /var/lib/scheduler for root (a system service).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SYSTEM_STATE_DIR", "default_state_dir", "installed_webapp_dir"]

SYSTEM_STATE_DIR = Path("/var/lib/scheduler")


def default_state_dir(env: Mapping[str, str] | None = None, euid: int | None = None) -> Path:
    env = os.environ if env is None else env
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return SYSTEM_STATE_DIR
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg.startswith("/"):  # the XDG spec: a relative value is invalid, ignore it
        return Path(xdg) / "scheduler"
    return Path.home() / ".local" / "state" / "scheduler"


def installed_webapp_dir() -> Path:
    """The web UI installed with the package (never looked up from the working dir)."""
    # Invariant: src/cluster/config/_paths.py -> the checkout's top-level webapp/.
    return Path(__file__).resolve().parents[3] / "webapp"
