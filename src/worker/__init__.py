"""The worker (``python -m worker``): six actors that run the cluster's jobs, and the app
that wires them. This docstring is the map.

The actors, one package each (``actor.py`` its handling, ``messages.py`` what it is sent):

- ``job_watcher``: watches etcd (jobs, triggers, kills, retries, live workers) and
  tells the others what changed (``fleet``, ``jobs``, ``run_requests``: one listener per
  prefix), and which runs a departed worker left (``lost_runs``: one read, no watch).
  Is sent nothing (``JobWatcherMsg`` is empty).
- ``scheduler``: owns the plan, which job fires when (``plan``, ``misfires``); hands fires
  to the Locker (``outbox``), records skips, retries and lost runs. ``SchedulerMsg``.
- ``locker``: claims fires in etcd, one worker per fire, ranked among the live workers
  (``placement``, ``due_fires``, ``transport``, ``claim_batch``, ``single_path``,
  ``lock_leases``, ``replace``). ``LockerMsg``.
- ``executor``: starts, watches and kills the processes of the runs it won (``launch``,
  ``start_at``, ``start_marks``, ``active``, ``early_kills``, ``record``, ``environment``,
  ``releases``, ``process``, ``spawn``, ``run_as``, ``drop``, ``run_tally``, ``orphan``
  and ``orphan_access``). ``ExecutorMsg``.
- ``log_sink``: writes run records to the store in batches (``ledger``,
  ``store_writer``); spills them to disk while the store is down (``spill``).
  ``LogSinkMsg``.
- ``registrar``: keeps the worker's session lease and its presence in etcd; fences the
  runs when the lease is lost. Is sent nothing (``RegistrarMsg`` is empty); it defines
  ``SessionChanged``, which it sends to the Locker and the Executor.

Shared modules, at the top level:

- ``__main__`` (command line, start-up checks), ``app`` (wires the actors: each gets the
  addresses it sends to; starts and supervises them), ``mailboxes`` (one per actor,
  opened before any actor exists), ``context`` (what every actor is given:
  configuration, identity, keyspace, clock), ``clock``, ``flow`` (draws the message
  flow from the wiring: ``python -m worker.flow``);
- ``messages``: the payloads several actors' messages carry (``Fire``, ``Run``,
  ``SkipTally``);
- ``claims``: the etcd transactions of a claim (Locker, the Executor's ``start_marks``
  and ``app``); ``outages``: a catch-up claim's outage key, one view of an outage
  fleet-wide; ``skips``: the fires skipped while a run goes on, one tally and one
  record per run (the Locker counts, the Scheduler records); ``group_commit``: one etcd
  transaction for many requests (the Executor's ``start_marks``; the Locker's
  ``claim_batch`` does the same for fires nobody waits on); ``last_fires``: ``state/<name>`` for the fires whose claim does
  not write it (manual, retry, recovered, chain); ``chains``: job chains, the index of
  who runs after whom (Scheduler), the end mark with the chained runs' triggers
  (Executor, through ``app``) and those of a lost run (Locker);
- ``spill_room``: whether the spill directory has room (the LogSink changes it; the
  Locker claims no new fire while it is full; the Registrar and ``/healthz`` say so);
- ``shards``: which jobs this worker serves in a sharded cluster (DESIGN §6b; the
  JobWatcher changes it, the Locker ranks fires by it, the Registrar publishes its
  ``serving``; inert with shards off);
- ``app`` also runs ``alerts``, the deliverer of ``cluster.alert_delivery`` (no actor:
  a supervisor child of its own, which sends alerts from the run store's outbox);
- ``live_output`` (what running commands print, per run: the Executor's pipe readers
  write into its taps) and ``live_output_flusher`` (a supervisor child of ``app``, no
  actor: writes it to the run store's ``run_output`` every 250 ms);
- ``metrics``, ``metrics_http`` (read the actors' statistics from outside; /healthz),
  ``fd_limit``, ``shutdown_budget`` (how the stop time is shared among the actors).

Who may import what: an actor's modules import ``actors``, ``cluster``, the shared
modules and other actors' ``messages`` (to send them), never another actor's ``actor``
or parts. A ``messages`` module imports only ``actors``, ``cluster``,
``worker.messages`` and other ``messages`` (``mailboxes`` imports every actor's). Only
``app``, ``flow``, ``metrics`` and ``__main__`` import actors' ``actor`` modules and
parts from outside, and ``shutdown_budget`` the Executor's ``process`` (its pipe-drain
time). The master and the CLI never
import the worker (they talk to it through etcd); tests and benchmarks may import any
module.

This package imports nothing: ``import worker`` (and ``python -m worker --help``) does
not load the actors. The actors' packages re-export their names lazily
(``worker._lazy``), so that importing one actor's ``messages`` loads no actor.
"""
