"""A worker's ``serving`` in its registration (cluster.presence, issue 14): the membership
its slots are loaded for. Absent for a worker of an earlier release or a cluster with
shards off, and then the registration is byte for byte what earlier releases wrote."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest

from cluster.presence import PresenceDecodeError, Serving, WorkerInfo, fleet_epoch

# A registration as the release before issue 14 wrote it (sorted keys, no spaces).
EARLIER = (b'{"capacity":4,"host":"h1","id":"w1","labels":{"zone":"a"},"pid":42,'
           b'"problems":[],"running":1,"startedAt":1000,"version":"0.9","wallClock":2000}')


def info(**kwargs) -> WorkerInfo:
    return WorkerInfo("w1", "h1", 42, labels={"zone": "a"}, version="0.9", started_ms=1000,
                      running=1, capacity=4, wall_ms=2000, **kwargs)


def test_a_worker_that_serves_nothing_writes_what_earlier_releases_wrote() -> None:
    assert info().to_bytes() == EARLIER
    assert info().serving is None


def test_an_earlier_release_s_registration_reads_as_not_serving() -> None:
    assert WorkerInfo.from_bytes(EARLIER) == info()
    legacy = WorkerInfo.from_bytes(b'{"id":"w0"}')  # the oldest shape: an id only
    assert legacy.serving is None and legacy.worker_id == "w0"
    assert WorkerInfo.from_bytes(EARLIER[:-1] + b',"serving":null}').serving is None


@pytest.mark.parametrize("serving", [
    Serving("0123456789abcdef", 1), Serving(fleet_epoch(["a", "b", "c"]), 3),
    Serving(fleet_epoch(["a", "b"]), 2, leaving=True),
])
def test_serving_round_trips(serving: Serving) -> None:
    published = info(serving=serving)
    raw = published.to_bytes()
    assert WorkerInfo.from_bytes(raw) == published
    assert json.loads(raw)["serving"] == {"fleet": serving.fleet,
                                          "fleetSize": serving.fleet_size,
                                          "leaving": serving.leaving}
    # The fields earlier releases read are unchanged by it: an earlier master decodes
    # every field it knows and ignores the new one (its decoder reads by name).
    without = {k: v for k, v in json.loads(raw).items() if k != "serving"}
    assert without == json.loads(EARLIER)


def test_leaving_may_be_left_out_and_means_not_leaving() -> None:
    raw = EARLIER[:-1] + b',"serving":{"fleet":"ab","fleetSize":2}}'
    assert WorkerInfo.from_bytes(raw).serving == Serving("ab", 2, leaving=False)


@pytest.mark.parametrize("bad", [
    '"yes"', "true", "[]", "{}", '{"fleet":"ab"}', '{"fleetSize":2}', '{"fleet":1,"fleetSize":2}',
    '{"fleet":"ab","fleetSize":"2"}', '{"fleet":"ab","fleetSize":true}',
    '{"fleet":"ab","fleetSize":0}', '{"fleet":"ab","fleetSize":2,"leaving":"no"}',
])
def test_a_serving_that_is_not_ours_is_a_decode_error(bad: str) -> None:
    with pytest.raises(PresenceDecodeError, match="cannot decode worker info: .*serving"):
        WorkerInfo.from_bytes(EARLIER[:-1] + f',"serving":{bad}}}'.encode())


def test_the_fleet_epoch_names_a_set_of_workers() -> None:
    ids = [f"worker-{i:03d}" for i in range(100)]
    epoch = fleet_epoch(ids)
    assert re.fullmatch(r"[0-9a-f]{16}", epoch)
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    assert fleet_epoch(shuffled) == epoch == fleet_epoch(ids + ids[:3])  # a set
    assert fleet_epoch(ids[:-1]) != epoch  # a leave changes it
    assert fleet_epoch([*ids, "worker-100"]) != epoch  # a join too
    # Ids are not run together: "a", "bc" is not "ab", "c".
    assert fleet_epoch(["a", "bc"]) != fleet_epoch(["ab", "c"])
    assert len({fleet_epoch(ids[:n]) for n in range(1, 101)}) == 100


def test_the_fleet_epoch_is_the_same_in_every_process() -> None:
    """Not Python's salted hash(): another interpreter computes the same name."""
    code = "from cluster.presence import fleet_epoch; print(fleet_epoch(['w2', 'w1']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123",
                                          "PYTHONPATH": ":".join(sys.path)}).stdout
    assert out.strip() == fleet_epoch(["w1", "w2"])
