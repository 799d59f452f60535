"""How the LogSink's local files fail it: the SpillError tree.

::

    SpillError                  base: the spill directory failed us (disk full, I/O, rights)
    ├── SpillFileBusy           another live process holds this worker's spill file:
    │                           two workers share one id and one spill_dir
    ├── SpillDirUnsafe          the directory is not ours with mode 0700
    ├── SpillFileUnsafe         our own file's name is a symlink, or not our regular file
    └── SpillIOError            a file operation failed; nothing was marked durable
"""

from __future__ import annotations

from pathlib import Path

from cluster.private_files import UnsafeDirectory


class SpillError(Exception):
    """Base class: the LogSink's local files failed us."""


class SpillFileBusy(SpillError):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"spill file {path} is held by another live process: "
                         "two workers share one worker id and spill_dir")


class SpillDirUnsafe(SpillError):
    def __init__(self, path: Path, uid: int, mode: int) -> None:
        self.path = path
        super().__init__(str(UnsafeDirectory("spill directory", path, uid, mode,
                                             "with mode 0700")))


class SpillFileUnsafe(SpillError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"spill file {path} {reason}: a worker uses only regular files "
                         "of its own user there; move it away")


class SpillIOError(SpillError):
    def __init__(self, path: Path, action: str, error: OSError) -> None:
        self.path = path
        self.action = action
        self.errno = error.errno  # ENOSPC: the disk is full (``worker.spill_room``)
        super().__init__(f"spill file {path}: {action} failed: {error}")
