"""What live output costs a run: the same chatty commands read with and without a tap.

    python -m benchmarks.live_output

Each command runs through ``start_process`` as the Executor runs it (pipes read to EOF,
the record's cap), ROUNDS times with no tap and ROUNDS times with a ``LiveOutput`` tap
that a flusher-like task empties every 250 ms (into memory: the store write is the
flusher's, off the run's path). Prints the median wall time of each and the overhead.
"""

from __future__ import annotations

import statistics
import time

import trio

from worker.clock import SystemClock
from worker.executor.process import start_process
from worker.live_output import FLUSH_S, LiveOutput

ROUNDS = 7
COMMANDS = {
    "100k short lines": "seq 1 100000",
    "2k echo lines": "for i in $(seq 1 2000); do echo line $i; done",
    "64 MB in big writes": "head -c 67108864 /dev/zero",
}


async def one(command: str, live: LiveOutput | None) -> float:
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        if live is not None:
            async def flush() -> None:
                while True:
                    await trio.sleep(FLUSH_S)
                    live.take()
            nursery.start_soon(flush)
        process = await start_process(["bash", "-c", command], env={"PATH": "/usr/bin:/bin"},
                                      cap_bytes=65536, kill_grace_s=1,
                                      tap=None if live is None else live.tap("bench"))
        await process.wait()
        if live is not None:
            live.take()
        nursery.cancel_scope.cancel()
    return time.perf_counter() - started


async def main() -> None:
    for name, command in COMMANDS.items():
        plain, tapped = [], []
        for _ in range(ROUNDS):
            plain.append(await one(command, None))
            tapped.append(await one(command, LiveOutput(SystemClock())))
        p, t = statistics.median(plain), statistics.median(tapped)
        print(f"{name:24} no tap {p * 1000:8.1f} ms   tap {t * 1000:8.1f} ms   "
              f"overhead {(t - p) * 1000:+7.1f} ms ({(t / p - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    trio.run(main)
