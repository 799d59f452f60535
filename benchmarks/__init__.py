"""Benchmarks of the scheduler (issue 5): one command each, results in ``benchmarks/results``.

    python -m benchmarks.latency   fire lateness of the cluster beside APScheduler 3, a bare
                                   spawn loop (the floor) and, with --peers aps4, APScheduler 4
    python -m benchmarks.scale     1k / 10k / 100k jobs: load time, RSS, CPU per fire
    python -m benchmarks.sink      run records/s through the LogSink into MariaDB, and a
                                   MariaDB outage: records lost, time to drain
    python -m benchmarks.faults    kill latency, SIGKILL of one of three workers, etcd quorum loss

Each starts its own throw-away servers (``scripts/services.py``) so that its load never
disturbs tests that share the long-running ones, prints a progress line on stderr, and
writes JSON and Markdown (plus PNG plots where a plot says more) under
``benchmarks/results/``. Defaults finish in about a minute on a 2-core machine; flags
make longer runs. ``BENCHMARKS.md`` at the repository root holds the latest figures.
"""
