"""The worker raises its open-file soft limit to what its bound needs (worker.fd_limit)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import resource, sys
from cluster.config import Config
from worker.fd_limit import fds_needed, raise_fd_limit
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), hard))
config = Config(capacity=int(sys.argv[2]))
print(fds_needed(config), raise_fd_limit(config), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def run(soft: int, capacity: int) -> list[int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(soft), str(capacity)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [int(x) for x in out.split()]


def test_a_low_soft_limit_is_raised_to_what_the_capacity_needs() -> None:
    needed, got, now = run(256, 500)
    assert needed == 256 + 8 * 500 + 32 and got == now == needed


def test_a_sufficient_soft_limit_is_never_lowered() -> None:
    needed, got, now = run(4096, 10)
    assert needed < 4096 and got == now == 4096
