"""An etcd stand-in whose ``has_quorum`` follows a script in time: for the quorum
watches of the worker (``worker/locker/quorum.py``) and of the master
(``master/workers.py``), run on trio's mock clock."""

from __future__ import annotations

import trio

from cluster.etcd import EtcdUnavailable


class ScriptedEtcd:
    """``has_quorum`` answers by the time (seconds from the start): each (until_s,
    answer) holds until then; True after the last. "down" raises EtcdUnavailable.
    ``status_asked`` counts its calls."""

    def __init__(self, script: list[tuple[float, object]]) -> None:
        self.script = script
        self.t0 = trio.current_time()
        self.status_asked = 0
        # ``Etcd.leader_answered_at``: a test's calls set it (None: none answered yet).
        self.leader_answered_at: float | None = None

    async def has_quorum(self) -> bool:
        self.status_asked += 1
        at = trio.current_time() - self.t0
        for until_s, answer in self.script:
            if at < until_s:
                if answer == "down":
                    raise EtcdUnavailable("status", "no member answered")
                return bool(answer)
        return True
