"""The shard model of ``python -m benchmarks.scale --model`` (issue 14): pure Python, no
server, no worker. A model, not a measurement: the slot figures come from the real
``cluster.slots``; the per-fire counts are read off the code (each names where), not
counted on the wire (``python -m benchmarks.scale --fleet`` counts them there).

Per fire of an ``allow`` job, today and with slots (corrected after the counts on the
wire, docs/perf-baseline-14.md §2: every request below is a raft write, the backups'
included):

    etcd writes    claim (1 txn: running/, lock/, state/), the first choice
                                                            worker/locker/transport.py claim_batch
                   one losing claim txn per backup before issue 14's read check: a
                   backup's check that went alone (checks were batched only when two
                   were ready at once, ``min_batch=2``) was sent as the full claim
                   transaction, a raft write; since, a lone check is the read-only
                   ``check_batch`` (this model counts the code it was made for)
                                                            worker/locker/transport.py claim_once
                   start mark (CAS running/ -> started), group-committed: ~3 marks per
                   txn at 100 fires/s, ~1 at 20/s           worker/executor/start_marks.py
                   release (delete running/, once durable), batched: ~50 per txn at
                   100 fires/s                               worker/claims.py release_running
                   + 1 for forbid/replace: the guard        worker/claims.py release_guard
    etcd reads     none per fire in the spread shape: the read-only ``check_batch``
                   serves only checks that coincide         worker/locker/transport.py check_batch
    watch events   each worker's running/ watch got the run's deletion (puts filtered
                   out by etcd: deletions_only), the W and R modelled here; since the
                   lost-runs read running/ is not watched at all, 0 per fire either way
                                                            worker/job_watcher/lost_runs.py
                   the master's watch of the whole prefix gets every key change: the
                   claim's 3 puts, the mark, the delete, the lock's expiry with its
                   rotating lease                            master/event_feeds.py

So the writes of a fire grow with the servers of its job: W today (1 claim + W - 1
losing backup claims), R with slots, plus at most one mark and one release, which the
batchers share among fires ready together (``MARKS_PER_FIRE`` and ``RELEASES_PER_FIRE``
are the upper bound, one each; measured at 100 fires/s on 2 workers: 0.30 and 0.02).
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.slots import SlotTable, ranges, slot_of

MARKS_PER_FIRE = 1  # at most: group-committed (0.30 per fire measured at 100 fires/s)
RELEASES_PER_FIRE = 1  # at most: batched (0.02 per fire measured at 100 fires/s)
MASTER_EVENTS_PER_FIRE = 6  # 3 claim puts + mark + delete + lock expiry
PRESENCE_PERIOD_S = 10 / 3  # session_ttl_s / 3: each worker republishes workers/<id>
MASTER_WORKER_WATCHES = 3  # master/workers.py, schedulable_watch.py, event_feeds.py
# Worker RSS against jobs planned, fitted to BENCHMARKS.md "scale" (benchmarks/results/
# scale.md): 56 MB with 1k jobs, 161 MB with 100k.
RSS_BASE_MB = 56 - 1000 * (161 - 56) / 99_000
RSS_PER_JOB_KB = (161 - 56) * 1000 / 99_000
JOB_COUNTS = (100_000, 1_000_000)


@dataclass(frozen=True)
class FleetModel:
    workers: int
    slots: int
    replicas: int
    slots_owned: tuple[int, float, int]  # min, mean, max
    jobs: dict[int, tuple[int, float, int]]  # job count -> planned per worker min/mean/max
    moved_join: int  # a new worker joins
    moved_leave: int  # worker-000 leaves
    watch_ranges: int  # runs of neighbouring slots of the worker with most (a watch each)

    @property
    def servers(self) -> int:
        return min(self.replicas, self.workers)

    def events_per_fire(self, sharded: bool) -> int:
        """Watch events the workers receive per fire, all of them together."""
        return self.servers if sharded else self.workers

    def backup_claims_per_fire(self, sharded: bool) -> int:
        """Losing claim transactions: every eligible worker but the first (raft writes)."""
        return (self.servers if sharded else self.workers) - 1

    def writes_per_fire(self, sharded: bool) -> int:
        """Upper bound, unbatched: the claim, the backups' claims, a mark, a release."""
        return 1 + self.backup_claims_per_fire(sharded) + MARKS_PER_FIRE + RELEASES_PER_FIRE

    def rss_mb(self, jobs: int, sharded: bool) -> float:
        planned = self.jobs[jobs][2] if sharded else jobs
        return RSS_BASE_MB + planned * RSS_PER_JOB_KB / 1000

    def presence_events_per_s(self) -> float:
        return self.workers * (self.workers + MASTER_WORKER_WATCHES) / PRESENCE_PERIOD_S


def _spread(values: list[int]) -> tuple[int, float, int]:
    return min(values), sum(values) / len(values), max(values)


def jobs_per_slot(jobs: int, slots: int) -> list[int]:
    counts = [0] * slots
    for i in range(jobs):
        counts[slot_of(f"job-{i:07d}", slots)] += 1
    return counts


def model(workers: int, slots: int, replicas: int,
          per_slot: dict[int, list[int]]) -> FleetModel:
    fleet = [f"worker-{i:03d}" for i in range(workers)]
    table = SlotTable.build(fleet, replicas, slots=slots)
    owned = {w: table.slots_of(w) for w in fleet}
    jobs = {n: _spread([sum(counts[s] for s in owned[w]) for w in fleet])
            for n, counts in per_slot.items()}
    joined = SlotTable.build([*fleet, f"worker-{workers:03d}"], replicas, slots=slots)
    left = SlotTable.build(fleet[1:], replicas, slots=slots)
    return FleetModel(workers, slots, replicas, _spread(list(table.counts().values())), jobs,
                      len(table.moved(joined)), len(table.moved(left)),
                      max(len(ranges(owned[w])) for w in fleet))


def run(fleets: list[int], slots: int, replicas: int,
        job_counts: tuple[int, ...] = JOB_COUNTS) -> list[FleetModel]:
    per_slot = {n: jobs_per_slot(n, slots) for n in job_counts}
    return [model(w, slots, replicas, per_slot) for w in fleets]


def _mmm(spread: tuple[int, float, int], fmt: str = "{:,.0f}") -> str:
    low, mean, high = spread
    return f"{low:,} / {fmt.format(mean)} / {high:,}"


def table(models: list[FleetModel]) -> str:
    first = models[0]
    head = (f"S = {first.slots} slots, R = {first.replicas}. Jobs named `job-0000000`..; "
            "min / mean / max over the workers. Moved: the slots whose owners change when a "
            "new worker joins / when `worker-000` leaves.\n\n"
            "| W | slots per worker | jobs planned per worker, 100k | 1M | slots moved: join "
            "/ leave | watch ranges per worker (max) | watch events per fire, today → slots "
            "| backup claim txns per fire | etcd writes per fire, at most | presence events/s "
            "| RSS per "
            "worker at 1M jobs, MB, today → slots (max) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for m in models:
        rows.append(
            f"| {m.workers} | {_mmm(m.slots_owned, '{:,.1f}')} | {_mmm(m.jobs[100_000])} "
            f"| {_mmm(m.jobs[1_000_000])} | {m.moved_join:,} / {m.moved_leave:,} "
            f"| {m.watch_ranges:,} "
            f"| {m.events_per_fire(False)} → {m.events_per_fire(True)} "
            f"| {m.backup_claims_per_fire(False)} → {m.backup_claims_per_fire(True)} "
            f"| {m.writes_per_fire(False)} → {m.writes_per_fire(True)} "
            f"| {m.presence_events_per_s():,.0f} "
            f"| {m.rss_mb(1_000_000, False):,.0f} → {m.rss_mb(1_000_000, True):,.0f} |")
    notes = (f"\n\nWrites per fire: the claim, the backups' losing claim transactions "
             f"(raft writes: a lone backup check is sent as the full claim), at most one "
             f"start mark and one release (both batched: measured 0.30 and 0.02 per fire "
             f"at 100 fires/s on 2 workers, docs/perf-baseline-14.md). No reads per fire. "
             f"Per fire, beside these: the master's watch of the whole prefix gets "
             f"{MASTER_EVENTS_PER_FIRE} events, whatever W. Presence: each worker "
             f"republishes every {PRESENCE_PERIOD_S:.1f} s to W workers and "
             f"{MASTER_WORKER_WATCHES} master watches (W·(W+3)/3.3 per second), not per "
             f"fire. RSS = {RSS_BASE_MB:.0f} MB + {RSS_PER_JOB_KB:.2f} KB per planned job "
             f"(fitted to the scale benchmark's 1k and 100k rows).")
    return "\n".join([head, *rows]) + notes
