"""Enough file descriptors for the worker's own bound, asked for once at start-up.

Why: a fire that cannot open its pipes fails with "Too many open files". The worker
bounds what it holds: per running run a few pipe ends and a pidfd (``capacity`` runs at
most), the metrics port's connections (``metrics_max_connections``; further ones wait
in the kernel's listen queue, unaccepted, holding none of ours), etcd and the run
store. Python starts with the soft limit the shell gave it, often 1024, which a large
``capacity`` can exceed; so the soft limit is raised to what the bound needs, never
past the hard limit (an unprivileged process cannot), and never lowered.

Not to the hard limit outright: jobs inherit the limit (there is no way to give them
another without a pre-exec hook, which costs the fast spawn), and some programs walk
every possible fd up to the soft limit when they start.
"""

from __future__ import annotations

import logging
import resource

from cluster.config import Config

log = logging.getLogger(__name__)

# stdout and stderr (read ends, and our write-end copies until bash exits: ``spawn``),
# their epoll, the commit pipe's write end (until the commit), the pidfd: 7; one spare.
FDS_PER_RUN = 8
FDS_BASE = 256  # etcd channels and watches, the store, logs, the listener, libraries


def fds_needed(config: Config) -> int:
    return FDS_BASE + FDS_PER_RUN * config.capacity + config.metrics_max_connections


def raise_fd_limit(config: Config) -> int:
    """Raise RLIMIT_NOFILE's soft limit to ``fds_needed`` if lower; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = fds_needed(config)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
        if soft < wanted:
            log.warning("open-file limit %d is below the %d this worker may need "
                        "(capacity %d): raise the hard limit (LimitNOFILE=)",
                        soft, wanted, config.capacity)
    return soft
