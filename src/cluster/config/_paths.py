"""Where a process keeps its own files when the config does not say.

Never the working directory: a master or worker started in a directory another user
can write would then read that user's files (a planted web UI, a forged spill file)
and write its own where that user can read them. The default is the XDG state
directory of the process's user, or /var/lib/scheduler for root (a system service).
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SYSTEM_STATE_DIR", "WEBAPP_PACKAGE", "default_state_dir", "installed_webapp_dir"]

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


WEBAPP_PACKAGE = "scheduler_webapp"  # the top-level webapp/, installed (pyproject.toml)


def installed_webapp_dir() -> Path:
    """The web UI installed with the package, found by the import system: in a wheel,
    site-packages/scheduler_webapp; in an editable install, the checkout's webapp/
    (through the link src/scheduler_webapp).
    Never looked up from the working directory."""
    root = importlib.resources.files(WEBAPP_PACKAGE)
    # Invariant: a regular package on a file system, so its files are a real directory.
    assert isinstance(root, Path), root
    return root
