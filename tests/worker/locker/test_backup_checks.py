"""A backup's check is a read, not a losing claim write (issue 14, target 4): in a fleet
of three with every fire's first choice alive, each fire costs etcd one claim
transaction that writes, and its two backups one read-only check each, also when the
checks go alone (spread fires). Against real etcd, with the Fleet of test_locker."""

from __future__ import annotations

import trio

from cluster.etcd import Delete, Put, open_etcd
from worker.clock import SystemClock
from worker.locker.messages import Claim

from test_locker import IDS, Fleet, fire, granted, spec

T0 = 1_700_000_000_000


class CountingEtcd:
    """The real etcd client, with every transaction noted as a write (it has a put or a
    delete in either branch: etcd takes it through raft) or a read."""

    def __init__(self, etcd) -> None:
        self._etcd = etcd
        self.writes = 0
        self.reads = 0

    def __getattr__(self, name: str):
        return getattr(self._etcd, name)

    async def txn(self, compare, success=(), failure=(), **kw):
        if any(isinstance(op, (Put, Delete)) for op in (*success, *failure)):
            self.writes += 1
        else:
            self.reads += 1
        return await self._etcd.txn(compare, success, failure, **kw)


async def every_lock_lease_granted(fleet: Fleet) -> None:
    """Has each worker win a claim of a throw-away job, so that each has granted its lock
    lease (a lease is granted by a worker's first claim, a raft write before the claim's
    own, which would leave its backups' checks too early)."""
    winners: set[str] = set()
    for i in range(60):
        # Planned apart from the counted fires, so that a late reply cannot pass for one.
        await fleet.everyone(Claim(fire(spec(f"warm-{i}", concurrency="allow"), T0 - 1000)))
        winners |= {w for w, _ in granted(await fleet.replies(0.25))}
        if winners == set(IDS):
            await trio.sleep(0.35)  # the last backups' checks answered, not counted
            return
    raise AssertionError(f"only {sorted(winners)} won a claim of 60 jobs")


async def test_spread_fires_cost_one_claim_write_each_and_a_read_per_backup(
        etcd_endpoint, etcd_prefix):
    fires = 12
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        counting = CountingEtcd(etcd)
        fleet = Fleet(counting, etcd_prefix)
        # A backup checks one step (rank 1) or two (rank 2) after the hand-over, plus
        # up to a due tick; a claim not yet committed by then is a second write. The
        # step leaves the winner's claim 100 ms to commit, not 20.
        await fleet.start(nursery, claim_step_s=0.1, session_ttl_s=60)
        await every_lock_lease_granted(fleet)  # granted lazily, by a first claim
        counting.writes = counting.reads = 0
        job = spec("spread-checks", concurrency="allow")
        for i in range(fires):  # one at a time: each backup's check goes alone
            await fleet.everyone(Claim(fire(job, T0 + i * 1000)))
            await trio.sleep(0.35)  # > rank 2's wait and a tick: every check answered
        replies = await fleet.replies(0.5)
        nursery.cancel_scope.cancel()
    wins = granted(replies)
    assert sorted(m.run.fire.planned_ms for _, m in wins) == [T0 + i * 1000 for i in range(fires)]
    assert counting.writes == fires  # the winners' claims; before: 3 per fire
    assert counting.reads == (len(IDS) - 1) * fires  # one check per backup per fire


async def test_a_window_of_fires_handed_over_ahead_shares_claims_and_checks(
        etcd_endpoint, etcd_prefix):
    """Claim a window, not a fire (issue 14): fires handed over together, ahead of their
    time, are claimed by each first choice in one transaction, and each backup's checks
    wait for company (while they leave 100 ms before the fire), so that a window of ten
    fires 10 ms apart costs a few reads, not one per backup per fire."""
    fires = 10
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        counting = CountingEtcd(etcd)
        fleet = Fleet(counting, etcd_prefix)
        await fleet.start(nursery, claim_step_s=0.02, session_ttl_s=60)
        await every_lock_lease_granted(fleet)
        counting.writes = counting.reads = 0
        base = SystemClock().now_ms() + 300  # the window: 300 to 390 ms from now
        for i in range(fires):  # ten jobs (a transaction claims one fire per job)
            await fleet.everyone(Claim(fire(spec(f"w{i}", concurrency="allow"), base + i * 10)))
        replies = await fleet.replies(0.8)
        nursery.cancel_scope.cancel()
    wins = granted(replies)
    assert sorted(m.run.fire.planned_ms for _, m in wins) == [base + i * 10 for i in range(fires)]
    # Each worker's first choices in one or two claim transactions, not one a fire (3
    # on a quiet machine, 6 without the claims' 5 ms wait for company, up to 6 on a
    # loaded one: test_claim_batch tests that wait under a mock clock).
    assert counting.writes <= 2 * len(IDS), counting.writes
    # 20 backup checks (two backups a fire), each alone without the wait (17-19 reads
    # measured); gathered, a few per worker and rank (6-7 measured, fewer under load).
    assert counting.reads <= 10, counting.reads
