"""The LogSink's files on local disk: the spill file, and the file of rejected records.

``file`` is the spill file (``SpillFile``: append, replay, commit, reject); its parts:
``lines`` (the format: one JSON record per line; torn tails), ``ownership`` (the flock,
adopting orphans left by other processes), ``trust`` (only our 0700 directory and our
regular files, through checked fds), ``rejected`` (records refused for good, with the
reason), ``errors`` (the ``SpillError`` tree).

Who may import it: the LogSink (``worker.log_sink``), ``worker.__main__`` (the start-up
check of the worker's own files: ``check_own_files``, ``SpillError``), tests.
"""

from __future__ import annotations

from .errors import SpillDirUnsafe, SpillError, SpillFileBusy, SpillFileUnsafe, SpillIOError
from .file import ReplayBatch, SpillFile
from .rejected import Rejection
from .trust import REJECTED_SUFFIX, SPILL_SUFFIX, check_own_files, is_spill_name

__all__ = [
    "REJECTED_SUFFIX",
    "SPILL_SUFFIX",
    "Rejection",
    "ReplayBatch",
    "SpillDirUnsafe",
    "SpillError",
    "SpillFile",
    "SpillFileBusy",
    "SpillFileUnsafe",
    "SpillIOError",
    "check_own_files",
    "is_spill_name",
]
