"""``benchmarks._workers.Fleet.stop``: one SIGTERM per worker, never two.

A worker takes a second SIGTERM as "stop at once" (``actors.run_until_signalled``): its
runs held for their instant and those running are cut, their records and ``running``
keys left behind, its session lease not revoked. So a fleet stopped with two signals
looks like a worker that did not finish its graceful stop (BENCHMARKS.md, 'Writes at
8 workers'). The workers here are stand-ins: a graceful stop of a set length, cut short
(exit 3) by a second SIGTERM.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("psutil", reason="the bench extra (benchmarks._workers)")

from benchmarks._workers import Fleet, Worker  # noqa: E402

STAND_IN = """\
import signal, sys, time
drain_s = float(sys.argv[sys.argv.index("--drain") + 1])
terms = []
def on_term(signum, frame):
    terms.append(time.monotonic())
    if len(terms) > 1:
        sys.exit(3)  # the second signal: no more waiting
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while not terms:
    time.sleep(0.01)
while time.monotonic() < terms[0] + drain_s:  # the graceful stop
    time.sleep(0.01)
sys.exit(0)
"""


def stand_in(tmp_path, worker_id: str, drain_s: float) -> Worker:
    (tmp_path / "stand_in_worker.py").write_text(STAND_IN)
    worker = Worker(worker_id, ["--drain", str(drain_s)], tmp_path / f"{worker_id}.log",
                    env={"PYTHONPATH": str(tmp_path)}, module="stand_in_worker").start()
    deadline = time.monotonic() + 30
    while "ready" not in worker.log_tail():
        assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.02)
    return worker


def test_stop_signals_each_worker_once(tmp_path):
    # w0 stops quickly; w1 is still draining when w0 is gone (the wait moves on to it).
    fleet = Fleet("unused", "/unused/", "sqlite://", tmp_path)
    fleet.workers = [stand_in(tmp_path, "w0", 0.2), stand_in(tmp_path, "w1", 1.5)]
    codes = fleet.stop()
    assert [w.process.returncode for w in fleet.workers] == [0, 0]  # 3: signalled twice
    assert codes == {"w0": 0, "w1": 0}


def test_stop_kills_a_worker_past_the_deadline(tmp_path):
    fleet = Fleet("unused", "/unused/", "sqlite://", tmp_path)
    fleet.workers = [stand_in(tmp_path, "w0", 0.1), stand_in(tmp_path, "w1", 60)]
    started = time.monotonic()
    codes = fleet.stop(timeout_s=1.0)
    assert time.monotonic() - started < 10
    assert codes == {"w0": 0, "w1": -9}


def test_stop_leaves_stopped_workers_alone(tmp_path):
    fleet = Fleet("unused", "/unused/", "sqlite://", tmp_path)
    fleet.workers = [stand_in(tmp_path, "w0", 0.1)]
    assert fleet.stop() == {"w0": 0}
    assert fleet.stop() == {"w0": 0}  # already gone: no signal, its code again
