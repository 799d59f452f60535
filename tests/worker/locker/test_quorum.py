"""QuorumWatch: an election is not an outage; an outage is one state, said once each
way, and its end hands the Scheduler the time it began. Calls a leader answered spare
its Status polls, and do not move the time it reports later than polling would."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from quorum_kit import ScriptedEtcd

from worker.clock import TrioWallClock
from worker.locker.quorum import LOST_AFTER_S, QUORUM_POLL_S, QuorumWatch

T0 = 1_700_000_000_000


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def watch(script, run_for_s: float) -> tuple[list[int], list[bool]]:
    backs: list[int] = []
    states: list[bool] = []
    etcd = ScriptedEtcd(script)
    quorum = QuorumWatch(etcd, TrioWallClock(T0), on_back=lambda since: _note(backs, since))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(quorum.run)
        for _ in range(round(run_for_s / QUORUM_POLL_S)):
            await trio.sleep(QUORUM_POLL_S)
            states.append(quorum.lost)
        nursery.cancel_scope.cancel()
    return backs, states


async def _note(backs: list[int], since_ms: int) -> None:
    backs.append(since_ms)


async def test_an_election_shorter_than_the_limit_is_not_quorum_lost(autojump_clock, caplog):
    caplog.set_level(logging.WARNING)
    backs, states = await watch([(1.0, True), (1.0 + LOST_AFTER_S - 0.6, False)], 8.0)
    assert not any(states) and backs == []
    assert "quorum" not in caplog.text


async def test_an_etcd_that_does_not_answer_is_not_quorum_lost(autojump_clock):
    backs, states = await watch([(1.0, True), (10.0, "down")], 12.0)
    assert not any(states) and backs == []


async def test_quorum_lost_is_one_state_said_once_each_way(autojump_clock, caplog):
    caplog.set_level(logging.WARNING)
    backs, states = await watch([(1.0, True), (21.0, False)], 25.0)
    assert backs == [T0 + 1000]  # when no leader was first seen
    lost_at = states.index(True) * QUORUM_POLL_S + QUORUM_POLL_S
    assert LOST_AFTER_S + 1.0 <= lost_at <= LOST_AFTER_S + 1.0 + 2 * QUORUM_POLL_S
    back_at = (len(states) - states[::-1].index(True)) * QUORUM_POLL_S + QUORUM_POLL_S
    assert 21.0 <= back_at <= 21.0 + 2 * QUORUM_POLL_S  # seen back within a poll
    assert caplog.text.count("etcd: no quorum") == 1
    assert caplog.text.count("etcd: quorum is back") == 1


async def judged_at(script, ask_at_s: float) -> tuple[bool, float]:
    """``judged_lost()`` asked at ``ask_at_s``: its answer, and when it came."""
    quorum = QuorumWatch(ScriptedEtcd(script), TrioWallClock(T0), on_back=lambda since: _note([], since))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(quorum.run)
        t0 = trio.current_time()
        await trio.sleep(ask_at_s)
        answer = await quorum.judged_lost()
        at = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    return answer, at


async def test_a_claim_ending_while_leaderless_waits_for_the_judgement(autojump_clock):
    # No leader from 1 s on: asked at 1.6 s, it is lost once no leader was seen for
    # LOST_AFTER_S (a poll to see it go, one to pass the limit).
    lost, at = await judged_at([(1.0, True), (30.0, False)], 1.6)
    assert lost and 1.0 + LOST_AFTER_S <= at <= 1.0 + LOST_AFTER_S + 2 * QUORUM_POLL_S
    # An election (a leader again at 2 s): not lost, said as soon as the leader is seen.
    lost, at = await judged_at([(1.0, True), (2.0, False)], 1.6)
    assert not lost and 2.0 <= at <= 2.0 + 2 * QUORUM_POLL_S
    # A leader all along: no wait.
    lost, at = await judged_at([], 1.6)
    assert not lost and at == pytest.approx(1.6)


async def answered_calls(etcd: ScriptedEtcd, every_s: float, until_s: float) -> None:
    """The worker's claims and marks, as the watch sees them: sent every ``every_s``
    (at odd offsets, never at a poll's instant) and answered, until ``until_s``."""
    await trio.sleep(every_s / 2)
    while trio.current_time() - etcd.t0 < until_s:
        etcd.leader_answered_at = trio.current_time()
        await trio.sleep(every_s)


async def test_answered_calls_spare_the_status_polls_until_they_stop(autojump_clock):
    etcd = ScriptedEtcd([])
    quorum = QuorumWatch(etcd, TrioWallClock(T0), on_back=lambda since: _note([], since))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answered_calls, etcd, 0.2, 5.0)
        nursery.start_soon(quorum.run)
        await trio.sleep(5.0)
        asked_while_busy = etcd.status_asked
        await trio.sleep(5.0)
        nursery.cancel_scope.cancel()
    assert asked_while_busy == 1  # the first poll, before any call was answered
    # Idle again: a poll each QUORUM_POLL_S (the first one a poll after the last call).
    assert etcd.status_asked - asked_while_busy == pytest.approx(5.0 / QUORUM_POLL_S, abs=1)
    assert not quorum.lost


async def test_a_loss_after_the_calls_stop_is_dated_within_a_poll_of_the_last_answer(
        autojump_clock, caplog):
    caplog.set_level(logging.WARNING)
    etcd = ScriptedEtcd([(3.2, True), (25.0, False)])
    backs: list[int] = []
    quorum = QuorumWatch(etcd, TrioWallClock(T0), on_back=lambda since: _note(backs, since))
    lost_at = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answered_calls, etcd, 0.2, 3.2)  # the last one at 3.1 s
        nursery.start_soon(quorum.run)
        while trio.current_time() < 27.0:
            await trio.sleep(0.1)
            if quorum.lost and lost_at is None:
                lost_at = trio.current_time()
        nursery.cancel_scope.cancel()
    # The polls spared by the calls until 3.5 s, the first one without a leader at
    # 4.0 s: the loss is dated one poll after the last answer (3.1 + 0.5), as polling
    # throughout would have dated it at the latest (3.2 + 0.5), and judged only once no
    # leader was seen for LOST_AFTER_S.
    assert backs == [T0 + 3600]
    assert lost_at is not None and 4.0 + LOST_AFTER_S <= lost_at <= 4.0 + LOST_AFTER_S + 0.2
    assert caplog.text.count("etcd: no quorum") == 1
    assert caplog.text.count("etcd: quorum is back") == 1


async def test_a_sign_of_a_leader_from_before_unanswered_polls_dates_no_loss(autojump_clock):
    # Calls answered until 0.9 s, then no member answers (the worker cut off) until
    # 10 s, then members answer without a leader: the loss is dated by the first poll
    # that saw none, not by the stale answer (a catch-up from then would re-run fires
    # whose locks have expired since).
    etcd = ScriptedEtcd([(1.0, True), (10.0, "down"), (30.0, False)])
    backs: list[int] = []
    quorum = QuorumWatch(etcd, TrioWallClock(T0), on_back=lambda since: _note(backs, since))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answered_calls, etcd, 0.2, 1.0)
        nursery.start_soon(quorum.run)
        await trio.sleep(32.0)
        nursery.cancel_scope.cancel()
    assert backs == [T0 + 10_000]


async def test_calls_answered_while_quorum_is_lost_do_not_hide_its_return(autojump_clock):
    # Once judged lost, only a poll may say it is back (and tell the Scheduler when it
    # went): the calls answered after the return spare no poll, even once polls that
    # nobody answered (19 to 19.6 s) have ended the leaderless stretch.
    etcd = ScriptedEtcd([(1.0, True), (19.0, False), (19.6, "down")])
    backs: list[int] = []
    quorum = QuorumWatch(etcd, TrioWallClock(T0), on_back=lambda since: _note(backs, since))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(quorum.run)
        await trio.sleep(19.5)
        assert quorum.lost
        nursery.start_soon(answered_calls, etcd, 0.2, 30.0)  # from 19.6 s on
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()
    assert backs == [T0 + 1000] and not quorum.lost
