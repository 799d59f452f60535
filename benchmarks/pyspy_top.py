"""Where a worker's time goes, from py-spy's raw (collapsed) stacks.

    python -m benchmarks.pyspy_top benchmarks/results/<stem>.pyspy.txt [--top 25] [--match TEXT]

Prints the functions with the most samples on the stack (inclusive) and at its top
(self), as a share of all samples; ``--match`` keeps only stacks through a frame
containing TEXT (e.g. ``locker/actor.py``), to read one actor's path alone.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def load(path: Path, match: str | None) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames_text, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = frames_text.split(";")
        if match is None or any(match in f for f in frames):
            stacks.append((frames, int(count)))
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match")
    args = parser.parse_args()
    stacks = load(args.path, args.match)
    total = sum(n for _, n in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in stacks:
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n-- {title}")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
