"""The JobWatcher is sent nothing (``JobWatcherMsg`` is empty): its inbox exists so that
the runtime can stop it (sealing an inbox is the graceful stop). What it sends is
defined by its receivers (Scheduler, Locker, Executor messages).

Its sends await (backpressure): a full peer stalls that watch loop, never a drop.
See ``worker.job_watcher.actor``.
"""

from __future__ import annotations

from typing import Never

JobWatcherMsg = Never
