"""Counting trio task steps and spawned tasks by task name: what ``executor_steps`` and
``locker_steps`` measure (issue 14, target 1: counts, repeatable on a loaded machine,
where CPU seconds are not).

Task names that carry a run id are folded into one name; tasks whose name starts with
``HARNESS`` are the measuring script's own and are counted apart.
"""

from __future__ import annotations

import re
from collections import Counter

import trio

__all__ = ["HARNESS", "Steps"]

HARNESS = "harness"


class Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.on = False
        self.steps: Counter[str] = Counter()
        self.spawned: Counter[str] = Counter()

    @staticmethod
    def _name(task: trio.lowlevel.Task) -> str:
        if task.name.startswith(HARNESS):
            return HARNESS
        return re.sub(r"[ /][^ ]*[0-9a-f]{32}.*$", "", task.name)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.steps[self._name(task)] += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.spawned[self._name(task)] += 1
