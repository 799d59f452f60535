"""What the master, the workers and the CLI share: the configuration (``config``), the
etcd client and key layout (``etcd``, ``etcd_access``, ``keyspace``, ``presence``), job
specs and cron (``spec``, ``cron``), the run-history store (``store``), and small
helpers (``backoff``, ``metrics``, ``private_files``, ``tokens``).

Import the modules themselves (``from cluster.spec import JobSpec``): this package
re-exports nothing, so that importing one module does not load the others (the store's
database drivers, say). Everything may import it; it imports neither ``worker`` nor
``master``.
"""
