"""The docs say how a fire's owner is chosen as the code does it (issue 12, item 9):
a rendezvous hash of the fire, never "the least loaded worker"."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cluster.presence import WorkerInfo
from worker.locker.placement import claim_delay_s, rank_of

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_no_doc_says_the_least_loaded_worker_runs_a_fire() -> None:
    for path in DOCS:
        text = " ".join(path.read_text().split())
        assert not re.search(r"least[ -]loaded|least busy", text, re.I), path


def test_the_design_s_hash_formula_is_the_ranking_the_code_computes() -> None:
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    assert 'blake2b("<name>@<planned_ms>#<attempt>|<worker id>")' in design
    key = "backup@1700000000000#1"
    workers = [WorkerInfo(f"w{i}", host="h", pid=i) for i in range(5)]

    def documented(worker_id: str) -> int:
        digest = hashlib.blake2b(f"{key}|{worker_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    by_doc = sorted((w.worker_id for w in workers), key=documented, reverse=True)
    by_code = sorted((w.worker_id for w in workers),
                     key=lambda w: rank_of(w, {}, key, workers, {}))
    assert by_doc == by_code
    # Load stretches a non-owner's wait; it never stops the owner claiming at once.
    assert claim_delay_s(0, running=63, capacity=64, step_s=0.05) == 0.0
    assert claim_delay_s(2, running=32, capacity=64, step_s=0.05) == 2 * 0.05 * 1.5
    assert claim_delay_s(0, running=64, capacity=64, step_s=0.05) is None
