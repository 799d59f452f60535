"""The master's view of etcd's quorum (WorkerManager): one state, said once each way.
A Status probe that goes unanswered while quorum is lost (a loaded machine, a member
slow to answer) is no news of a leader: it must not flip the state back, nor log a
second pair of lines, nor let /api/v1/workers answer a stale list for a moment."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from quorum_kit import ScriptedEtcd

from actors import open_mailbox
from cluster.config import Config
from master.context import MasterContext
from master.errors import NoQuorum
from master.workers import LOST_AFTER_S, QUORUM_POLL_S, WorkerManager


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def lost_states(script, run_for_s: float) -> tuple[WorkerManager, list[bool]]:
    _, inbox = open_mailbox(4, name="workers")
    manager = WorkerManager(inbox, MasterContext.create(Config()), ScriptedEtcd(script))
    states: list[bool] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager._watch_quorum)
        for _ in range(round(run_for_s / QUORUM_POLL_S)):
            await trio.sleep(QUORUM_POLL_S)
            states.append(manager._quorum_lost)
        nursery.cancel_scope.cancel()
    return manager, states


async def test_an_unanswered_probe_during_the_outage_keeps_quorum_lost(autojump_clock, caplog):
    caplog.set_level(logging.WARNING)
    # No leader from 1 s to 21 s; at 10-11.5 s nobody answers Status at all.
    script = [(1.0, True), (10.0, False), (11.5, "down"), (21.0, False)]
    manager, states = await lost_states(script, 25.0)
    lost_from = states.index(True)
    back_from = len(states) - states[::-1].index(True)
    assert all(states[lost_from:back_from])  # one state, unbroken by the silence
    lost_at, back_at = (lost_from + 1) * QUORUM_POLL_S, (back_from + 1) * QUORUM_POLL_S
    assert 1.0 + LOST_AFTER_S <= lost_at <= 1.0 + LOST_AFTER_S + 2 * QUORUM_POLL_S
    assert 21.0 <= back_at <= 21.0 + 2 * QUORUM_POLL_S  # seen back within a poll
    assert caplog.text.count("etcd: no quorum") == 1
    assert caplog.text.count("etcd: quorum is back") == 1
    assert manager._ctx.metrics.etcd_no_quorum._value.get() == 0


async def test_an_unreachable_etcd_is_not_quorum_lost(autojump_clock, caplog):
    caplog.set_level(logging.WARNING)
    _, states = await lost_states([(1.0, True), (10.0, "down")], 12.0)
    assert not any(states)
    assert "quorum" not in caplog.text


async def test_while_lost_the_worker_list_answers_no_quorum(autojump_clock):
    _, inbox = open_mailbox(4, name="workers")
    manager = WorkerManager(inbox, MasterContext.create(Config()),
                            ScriptedEtcd([(10.0, False)]))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager._watch_quorum)
        await trio.sleep(LOST_AFTER_S + 2 * QUORUM_POLL_S)
        with pytest.raises(NoQuorum):
            await manager._wait_fresh()
        assert manager._ctx.metrics.etcd_no_quorum._value.get() == 1
        nursery.cancel_scope.cancel()
