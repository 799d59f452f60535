"""A 3-member etcd cluster loses quorum (two members stopped) for 20 s while two workers
run 20 jobs every second: no fire runs twice, the fleet says "no quorum" once per
change of state, and scheduling resumes as soon as quorum is back.

Every process gets all three endpoints (``--etcd a,b,c``). Two members are SIGKILLed
at once and restarted 20 s later; the one left has no leader and answers nothing that
needs one. Meanwhile /healthz and /api/v1/workers are polled every 0.5 s. The jobs
have a ``startingDeadline`` of 30 s and the default ``catchUp: last``: once the cluster
has a leader again each job runs once for the fires of the outage, and its record says
how many were missed and the first (``catchUp: all``, a run per missed fire: the
catch-up e2e and tests/worker/scheduler).
A job of 3 s (``long``) is running when quorum goes: it finishes and is recorded.
The log of what happened when is printed (pytest shows it when the test fails).

Boundaries come from what was recorded, not from fixed delays: the test polls the
members' own Status (``leader_changes``) for when the cluster lost and regained a
leader, and each worker says in one line which planned times it caught up. So the
expected catch-up set, the window in which the master must say "no quorum" and the
number of state changes each process logs are computed, exactly, from those times.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid

import httpx
import pytest
import trio

from cluster.config import Config
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, RunTrigger, open_store
from e2e_harness import Cluster, Timeline, all_records, check_fires, start_fleet, wall_ms
from master.workers import LOST_AFTER_S as MASTER_LOST_AFTER_S
from master.workers import QUORUM_POLL_S as MASTER_POLL_S
from worker.locker.quorum import LOST_AFTER_S, QUORUM_POLL_S
from worker.scheduler.plan import WINDOW_REACH_MS

import services

pytestmark = pytest.mark.slow

JOBS = 20
NAMES = [f"q{j:02d}" for j in range(JOBS)]
OUTAGE_S = 20.0
SETTLE_S = 4.0
AFTER_S = 10.0
STARTING_DEADLINE_S = 30
RESUME_TARGET_S = 5.0
POLL_S = 0.5
LEADER_POLL_S = 0.1
PROBE_S = 0.5  # a Status probe's deadline (the etcd adapter's QUORUM_PROBE_S)
# How long after the cluster lost its leader the master may take to say so: no
# leader for LOST_AFTER_S, from the poll that first saw it gone to the one that
# passes the limit, each poll a sleep and a probe late at most.
MASTER_SAYS_S = MASTER_LOST_AFTER_S + 2 * (MASTER_POLL_S + PROBE_S)
CATCHUP_LINE = re.compile(r"etcd quorum back: catching up (\d+) fires of (\d+) jobs missed since "
                          r"(\S+), planned (\S+) to (\S+) \(")


async def poll_master(api: httpx.AsyncClient, seen: list[tuple[int, str, int, str]]) -> None:
    """(wall ms, /healthz code and etcd error, /api/v1/workers code and message)."""
    while True:
        at = wall_ms()
        try:
            health = await api.get("/healthz", timeout=5)
            workers = await api.get("/api/v1/workers", timeout=5)
            etcd_error = health.json().get("etcd", {}).get("error", "")
            message = "" if workers.status_code == 200 else workers.text[:200]
            seen.append((at, health.status_code, etcd_error, workers.status_code, message))
        except httpx.TransportError as exc:
            seen.append((at, -1, str(exc), -1, ""))
        await trio.sleep(POLL_S)


async def leader_changes(etcd_cluster, changes: list[tuple[int, bool | None]]) -> None:
    """(wall ms, whether a member knows a leader) at each change, every LEADER_POLL_S."""
    while True:
        state = await trio.to_thread.run_sync(etcd_cluster.knows_leader)
        if not changes or changes[-1][1] != state:
            changes.append((wall_ms(), state))
        await trio.sleep(LEADER_POLL_S)


def leaderless_stretches(changes: list[tuple[int, bool | None]], end_ms: int, *,
                         through_silence: bool) -> list[int]:
    """How long (ms) each stretch lasted in which members answered and none knew a
    leader; a poll no member answered ends it, or not (``through_silence``)."""
    out: list[int] = []
    since = None
    for at, state in [*changes, (end_ms, True)]:
        if state is False or (state is None and through_silence and since is not None):
            since = at if since is None else since
        elif since is not None:
            out.append(at - since)
            since = None
    return out


def state_changes_expected(changes: list[tuple[int, bool | None]], end_ms: int) -> range:
    """How many times a process polling every QUORUM_POLL_S may say "no quorum": at
    least once per stretch surely long enough (LOST_AFTER_S, plus a poll to see it
    begin, ours, and the Status call), at most once per stretch that may be."""
    surely = LOST_AFTER_S + QUORUM_POLL_S + LEADER_POLL_S + 0.5
    may = LOST_AFTER_S - LEADER_POLL_S
    lo = sum(d >= surely * 1000 for d in leaderless_stretches(changes, end_ms, through_silence=False))
    hi = sum(d >= may * 1000 for d in leaderless_stretches(changes, end_ms, through_silence=True))
    return range(lo, hi + 1)


def catchup_lines(log_text: str) -> list[tuple[int, int, int, int, int]]:
    """(fires, jobs, lost since, first planned, last planned) of each catch-up line."""
    def ms(text: str) -> int:
        return round(datetime.datetime.fromisoformat(text).timestamp() * 1000)
    return [(int(m[1]), int(m[2]), ms(m[3]), ms(m[4]), ms(m[5]))
            for m in CATCHUP_LINE.finditer(log_text)]


async def metric(port: int, name: str) -> str:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


async def test_quorum_lost_for_20s_nothing_doubled_caught_up_after(
        etcd_cluster_factory, etcd_prefix, mysql_url, tmp_path):
    timeline, t0_ms = Timeline(), wall_ms()
    etcd_cluster = etcd_cluster_factory()
    cluster = Cluster(etcd_cluster.etcd_arg, etcd_prefix, mysql_url, tmp_path)
    ks = Keyspace(etcd_prefix)
    ports = {w: services.free_port() for w in ("w0", "w1")}
    master_port, token = services.free_port(), "e2e-" + uuid.uuid4().hex
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{master_port}",
                            headers={"Authorization": f"Bearer {token}"})
    seen: list[tuple[int, int, str, int, str]] = []
    changes: list[tuple[int, bool | None]] = []
    gauges: dict[str, str] = {}
    try:
        async with open_etcd(etcd_cluster.endpoints) as etcd, trio.open_nursery() as nursery:
            await start_fleet(cluster, etcd, ks, ports, master_port, token)
            for name in NAMES:
                spec = {"name": name, "command": "sleep 0.2; echo fired",
                        "cronExpr": "* * * * * *", "concurrency": "allow",
                        "startingDeadline": STARTING_DEADLINE_S}
                await etcd.put(ks.job(name), json.dumps(spec))
            await etcd.put(ks.job("long"), json.dumps({
                "name": "long", "command": "sleep 3; echo done", "cronExpr": "*/5 * * * * *",
                "concurrency": "allow"}))
            window_start = (wall_ms() // 1000 + 2) * 1000
            timeline.note(f"2 workers, {JOBS} jobs every second; window from {window_start}")
            await trio.sleep((window_start - wall_ms()) / 1000 + SETTLE_S)
            nursery.start_soon(poll_master, api, seen)
            nursery.start_soon(leader_changes, etcd_cluster, changes)

            leader = await trio.to_thread.run_sync(etcd_cluster.wait_leader)
            await trio.sleep(((6500 - wall_ms() % 5000) % 5000) / 1000)  # `long` runs 1.5 s
            victims = [m for m in etcd_cluster.members if m is not leader]
            lost_ms = wall_ms()
            for victim in victims:
                etcd_cluster.kill(victim)
            timeline.note(f"SIGKILL {[v.name for v in victims]}: quorum lost; "
                          f"{leader.name} left alone")
            await trio.sleep(OUTAGE_S / 2)
            for worker_id, port in ports.items():
                gauges[worker_id] = await metric(port, "scheduler_worker_etcd_no_quorum")
            await trio.sleep(OUTAGE_S / 2)
            restart_ms = wall_ms()  # quorum cannot be back before this
            for victim in victims:
                await trio.to_thread.run_sync(etcd_cluster.restart, victim)
            back_ms = wall_ms()
            timeline.note(f"{[v.name for v in victims]} restarted: quorum back "
                          f"after {(back_ms - lost_ms) / 1000:.1f} s")
            await trio.sleep(AFTER_S)
            window_end = (wall_ms() // 1000 - 2) * 1000
            await trio.sleep(2.0)
            end_ms = wall_ms()
            nursery.cancel_scope.cancel()
        for at, state in changes:
            timeline.note(f"members' Status: {'a leader' if state else 'no leader' if state is False else 'no answer'}",
                          at=timeline.t0 + (at - t0_ms) / 1000)
        for worker in cluster.workers:
            assert worker.alive(), cluster.logs()
        cluster.stop_all()
        timeline.note("workers stopped")
    finally:
        await api.aclose()
        cluster.stop_all()
        print(timeline)
    async with open_store(mysql_url) as store:
        every = await all_records(store)
    records = [r for r in every if window_start <= r.plan_time < window_end
               and r.job_name != "long"]
    long_runs = [r for r in every if r.job_name == "long" and r.start_time is not None
                 and r.start_time < lost_ms < (r.end_time or 0)]
    logs = {w.worker_id: (tmp_path / f"{w.worker_id}.log").read_text() for w in cluster.workers}

    fires = check_fires(records, NAMES, window_start, window_end)
    outage = range((lost_ms // 1000 + 1) * 1000, back_ms, 1000)
    # When etcd itself lost its leader and had one again (the members' Status).
    leaderless_ms = next(at for at, state in changes if at > lost_ms and state is False)
    leader_ms = next(at for at, state in changes if at > leaderless_ms and state)
    ran = [r for r in records if r.status is RunStatus.SUCCEEDED]
    resumed = sorted(r.start_time for r in ran if r.start_time and r.start_time >= leader_ms
                     and r.trigger is RunTrigger.SCHEDULE)
    caught_up = [r for r in records if r.trigger is RunTrigger.CATCHUP]
    # What each worker caught up: every fire a job from a misfire grace before the loss
    # up to when it saw quorum back; two workers see it at different instants, so the
    # union.
    said = {w: catchup_lines(logs[w]) for w in ports}
    catchup_due = {t for lines in said.values() for _, _, _, first, last in lines
                   for t in range(first, last + 1, 1000)}
    missed_in_outage = [f for f in fires.missed if f[1] in outage]
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
    print(f"fires expected {JOBS * (window_end - window_start) // 1000}, records "
          f"{len(records)} {statuses}, missed {len(fires.missed)} (in the outage "
          f"{len(missed_in_outage)} of {JOBS * len(outage)}), doubled {len(fires.repeated)}, "
          f"caught up {len(caught_up)}; no leader {(leaderless_ms - lost_ms) / 1000} s after "
          f"the kill, a leader again {(leader_ms - back_ms) / 1000:+} s from the restarts' "
          f"end; first scheduled start after it {(resumed[0] - leader_ms) / 1000 if resumed else None} s")
    print("catch-up lines:", said)
    for at, hcode, herr, wcode, wmsg in seen:
        print(f"{(at - lost_ms) / 1000:7.2f} s  healthz {hcode} {herr!r}  workers {wcode} {wmsg!r}")
    print("gauges during the outage:", gauges)
    for worker_id, text in logs.items():
        lines = text.splitlines()
        print(f"{worker_id}: {len(lines)} log lines; no quorum: "
              f"{sum('quorum' in line for line in lines)}; misfire grace: "
              f"{sum('misfire grace' in line for line in lines)}; error: "
              f"{sum(' ERROR ' in line for line in lines)}")
        print("\n".join(lines[-40:]))
    print("runs going when quorum was lost:", [(r.status.value, r.output.strip()) for r in long_runs])
    assert fires.repeated == []  # 0 doubled
    assert fires.unexpected == set()
    # Every run that started succeeded. A fire claimed before the loss whose start mark
    # (§6.3: what makes a start once only) had not landed yet never starts: it is
    # recorded lost when the session is fenced. Only fires claimed before the kill (at
    # most claim_lead_s ahead, and a thin window's reach: ``scheduler.plan``) can be
    # such; on a loaded machine some of them are.
    lead_ms = round(Config().claim_lead_s * 1000) + WINDOW_REACH_MS
    never_started = [r for r in records if r.status is not RunStatus.SUCCEEDED]
    assert all(r.status is RunStatus.LOST and r.start_time is None and "fenced" in r.err
               and r.plan_time < lost_ms + lead_ms for r in never_started), never_started
    # Runs already going finish, and their records are kept.
    assert [(r.status, r.output.strip()) for r in long_runs] == [(RunStatus.SUCCEEDED, "done")]
    # Before and after the outage nothing is missed; the outage's fires, all within
    # startingDeadline, are caught up by one run a job (catchUp: last).
    assert [f for f in fires.missed if f[1] < outage.start - 1000 or f[1] >= back_ms] == []
    for worker_id, lines in said.items():  # one catch-up per worker: one fire a job
        assert [(n, jobs, first == last) for n, jobs, _, first, last in lines] == \
            [(JOBS, JOBS, True)], (worker_id, lines)
        assert lost_ms <= lines[0][2] <= back_ms, (worker_id, lines)
    # One start of the outage for the fleet (the first back wrote it: its catch-up
    # claims' one outage key), though each worker saw the leader go at its own poll.
    assert len({lines[0][2] for lines in said.values()}) == 1, said
    last_due = max(catchup_due)
    late_missed = sorted((f[1] - lost_ms, f[0]) for f in fires.missed if f[1] >= last_due)
    assert late_missed == [], (last_due - lost_ms, late_missed)  # all ran once (ms from the loss)
    # One run a job for the outage, though the two workers may have picked different
    # times: its catch-up run, which stands for every second from a misfire grace
    # before the loss to its own; or, when that time is also the first fire claimed
    # after the return (the Locker was back before the Scheduler heard), the scheduled
    # run of that time, which takes the fire's lock first (no record then says how many
    # were missed: a known gap, DESIGN §12).
    names = [r.job_name for r in caught_up]
    assert names and len(names) == len(set(names)) and set(names) <= set(NAMES), caught_up
    for name in set(NAMES) - set(names):
        assert any(r.job_name == name and r.plan_time in catchup_due
                   and r.trigger is RunTrigger.SCHEDULE for r in ran), name
    for r in caught_up:
        assert r.plan_time in catchup_due and r.first_missed is not None, r
        assert r.first_missed <= outage.start and \
            r.missed_fires == (r.plan_time - r.first_missed) // 1000 + 1, r
    # Scheduling resumes within 5 s of quorum's return.
    assert resumed and resumed[0] - leader_ms <= RESUME_TARGET_S * 1000
    # The master says so: 503 "etcd: no quorum" on /healthz and /api/v1/workers,
    # from when its polls can have seen the leader gone for LOST_AFTER_S until the
    # members are restarted; 200 again within 5 s after the leader is back.
    during = [s for s in seen if leaderless_ms + MASTER_SAYS_S * 1000 <= s[0] < restart_ms]
    assert during and all(h == 503 and herr.startswith("etcd: no quorum") and w == 503
                          and "etcd: no quorum" in wmsg for _, h, herr, w, wmsg in during), during
    assert [s[1:4:2] for s in seen if s[0] >= leader_ms + RESUME_TARGET_S * 1000][-3:] == \
        [(200, 200)] * 3
    # Workers: a 0/1 gauge, and one line per change of state, not one per fire:
    # as many as etcd had leaderless stretches long enough (one here, normally).
    states = state_changes_expected(changes, end_ms)
    print(f"'no quorum' lines expected per process: {list(states)}")
    assert all(text.endswith(" 1.0") for text in gauges.values()), gauges
    for name, text in logs.items():
        lines = text.splitlines()
        lost_lines = sum("etcd: no quorum" in line for line in lines)
        assert lost_lines in states and lost_lines >= 1, (name, list(states), lines)
        assert sum("etcd: quorum is back" in line for line in lines) == lost_lines, lines
        assert not any("misfire grace" in line for line in lines), lines
