"""The job spec (DESIGN §5): what an operator registers, stored as JSON under jobs/<name>.

JSON is camelCase as in the seed; only `name`, `command`, `cronExpr` are required, so a
job written by the seed's master is valid here (and the seed reads those three fields
of ours). Validation is strict and happens in one place, `JobSpec.__post_init__`, so a
spec built in Python is checked exactly like one read from etcd or the API: unknown
fields, wrong types, bad names, out-of-bound numbers, unknown zones and unparsable cron
expressions raise SpecError naming the JSON field.

    name              ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (one etcd key segment)
    command           bash -c text, non-empty, <= 64 KiB UTF-8, no NUL
    cronExpr          see cluster.cron (5/6/7 fields, macros, @every)
    timezone          IANA name, default UTC (never the machine's zone)
    timeout           seconds, 0 = none, <= 30 days
    concurrency       allow | forbid | replace (default forbid, the seed's behaviour)
    paused            bool
    retries           0..100 extra attempts after a failure
    retryBackoff      seconds before the first retry, doubled for each next one up to
                      MAX_RETRY_BACKOFF_S (default 10, <= 1 day: the same cap)
    startingDeadline  seconds a missed fire may still be caught up; 0 = no catch-up
    catchUp           last (default: run once for all the missed fires) | all (run each,
                      in order, at most 100)
    selector          labels a worker must have (<= 32, key <= 63 chars, value <= 255)
    env               extra environment (<= 128 names, <= 64 KiB in all)
    createdAt         epoch ms: the `@every` anchor, kept across updates; null = unset
    after             {job, on}: run once per matching finished run of that job
                      (on: succeeded | failed | completed; ``_chains``); with it,
                      cronExpr may be omitted (the job then runs only after it)
    user              run as this user; a worker honours it only if it allows it
                      (`--allowed-users`); null = the worker's `--run-as` (or its own)
    alerts            {on: [failed, timeout, lost, killed, recovered, unschedulable],
                      channels: [names]}; null = the cluster's default (cluster.alerts)

`@every` jobs without createdAt (seed jobs) are anchored on a stable per-name phase,
crc32(name) milliseconds after the epoch, so that such jobs do not all fire together
and every worker computes the same fire times.

Errors:
    ValueError
     └── SpecError   field + reason, e.g. "cronExpr: expected 5, 6 or 7 fields, got 4"

One idea per private module, everything public re-exported here (import from
`cluster.spec`, never from its parts; any package may import it):
  _job      JobSpec itself: construction, schedule, JSON in and out; schedule_changed
  _fields   each field's bounds, value types (CatchUp, Concurrency, FrozenStrMap) and validator
  _chains   ``after``: its value, the matching rule and the cycle check
  _errors   SpecError
"""

from ._chains import (After, ChainOn, chain_cycle, chain_matches, describe_cycle)
from ._errors import SpecError
from ._fields import (ENV_NAME_RE, LABEL_KEY_RE, MAX_COMMAND_BYTES, MAX_CREATED_AT_MS,
                      MAX_DOCUMENT_BYTES, MAX_ENV_BYTES, MAX_ENV_ENTRIES, MAX_LABEL_VALUE_CHARS,
                      MAX_NAME_CHARS, MAX_RETRIES, MAX_RETRY_BACKOFF_S, MAX_SELECTOR_ENTRIES,
                      MAX_CATCHUP_FIRES, MAX_STARTING_DEADLINE_S, MAX_TIMEOUT_S, USER_NAME_RE,
                      CatchUp, Concurrency, FrozenStrMap)
from ._job import JobSpec, schedule_changed

__all__ = ["After", "ChainOn", "chain_cycle", "chain_matches", "describe_cycle",
           "ENV_NAME_RE", "LABEL_KEY_RE", "MAX_COMMAND_BYTES", "MAX_CREATED_AT_MS",
           "MAX_DOCUMENT_BYTES", "MAX_ENV_BYTES", "MAX_ENV_ENTRIES", "MAX_LABEL_VALUE_CHARS",
           "MAX_NAME_CHARS", "MAX_RETRIES", "MAX_RETRY_BACKOFF_S", "MAX_SELECTOR_ENTRIES",
           "MAX_CATCHUP_FIRES", "MAX_STARTING_DEADLINE_S", "MAX_TIMEOUT_S", "USER_NAME_RE",
           "CatchUp", "Concurrency", "FrozenStrMap", "JobSpec", "SpecError", "schedule_changed"]
