"""Threads that follow the machine during a run (`--threads follow` only, an opt-in whose
results depend on the machine's load; every other choice is fixed, ser/runtime/threads.py).

A job that starts later on our cores makes every operator's barrier wait for the thread
that shares a core with it (the demo's MSMSER on 2 cores: ~2.4x its quiet time, ~1.35x
with one thread). So between epochs `ThreadWatch.check` counts the busy ticks of the
process's cores (/proc/stat) less its own (/proc/self/stat) and sets torch's thread count
to the cores left over; windows shorter than `MIN_WINDOW` are pooled with the next.

>>> ticks = iter([_sample(0, 0, 0), _sample(100, 100, 80)])
>>> watch = ThreadWatch(ceiling=2, current=2, cpus=[0, 1], apply=lambda n: None,
...                     min_window=0.0, reader=ticks.__next__)
>>> watch.check()  # both cores busy, 0.8 of that ours: someone else took ~1.2 cores
Change(count=1, previous=2, others=1.2)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.runtime.threads import PROC_STAT, ThreadChoice, cpu_ticks, tick_deltas

PROC_SELF_STAT = Path("/proc/self/stat")
#: Seconds a window must last before it is judged.
MIN_WINDOW = 1.0


@dataclass(frozen=True)
class Sample:
    """Ticks so far: per core (idle + iowait, all), and this process's own (user + system)."""

    cores: dict[int, tuple[int, int]]
    own: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class Change:
    """torch's thread count moved; `others`: cores someone else kept busy meanwhile."""

    count: int
    previous: int
    others: float

    def describe(self) -> str:
        return (
            f"torch threads {self.previous} -> {self.count}: other processes kept "
            f"{self.others:.1f} of this run's cores busy"
        )

    def record(self) -> dict[str, Any]:
        return {"count": self.count, "previous": self.previous, "others": round(self.others, 2)}


def read_sample(stat: Path = PROC_STAT, self_stat: Path = PROC_SELF_STAT) -> Sample | None:
    """Now's ticks, None where /proc cannot be read (not Linux)."""
    try:
        cores = cpu_ticks(stat.read_text())
        # After the command name (which may hold spaces), fields 14-15 of proc(5):
        # utime and stime, in the same clock ticks as /proc/stat.
        fields = self_stat.read_text().rsplit(")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return Sample(cores, own, time.monotonic())


def _sample(busy: int, total: int, own: int) -> Sample:
    """Two cores that each counted `total` ticks, `busy` of them busy (for examples)."""
    return Sample({0: (total - busy, total), 1: (total - busy, total)}, own, float(total))


class ThreadWatch:
    """Moves torch's thread count between 1 and `ceiling` as other processes take or
    leave this process's cores (module doc)."""

    def __init__(
        self,
        *,
        ceiling: int,
        current: int,
        cpus: list[int] | None = None,
        apply: Callable[[int], None] | None = None,
        min_window: float = MIN_WINDOW,
        reader: Callable[[], Sample | None] = read_sample,
    ) -> None:
        if ceiling < 1 or current < 1:
            raise ValueError(f"thread counts must be at least 1, got {ceiling}, {current}")
        self.ceiling, self.current = ceiling, current
        self.cpus = cpus if cpus is not None else sorted(os.sched_getaffinity(0))
        self.apply = apply if apply is not None else _set_torch_threads
        self.min_window, self.reader = min_window, reader
        self.last = reader()
        self.changes: list[Change] = []

    def check(self) -> Change | None:
        """Judge the window since the last judged one; apply and return a change."""
        if self.last is None:
            return None
        now = self.reader()
        if now is None or now.at - self.last.at < self.min_window:
            return None
        others = self.others_busy(self.last, now)
        self.last = now
        if others is None:
            return None
        free = len(self.cpus) - others
        count = min(self.ceiling, max(1, math.floor(free + 0.5)))
        if count == self.current:
            return None
        change = Change(count, self.current, others)
        self.apply(count)
        self.current = count
        self.changes.append(change)
        return change

    def others_busy(self, before: Sample, after: Sample) -> float | None:
        """Cores of `cpus` that other processes kept busy between the samples."""
        deltas = tick_deltas(before.cores, after.cores, self.cpus)
        per_core = sum(ticks for _, ticks in deltas) / len(deltas) if deltas else 0
        if per_core <= 0:
            return None
        busy = sum(ticks - idle for idle, ticks in deltas)
        return max(0.0, (busy - (after.own - before.own)) / per_core)


def watch_for(choice: ThreadChoice, device: str) -> ThreadWatch | None:
    """The watch of a run on `device` ("cpu", "cuda") whose threads are `choice`: None
    unless the choice follows the load, and off the CPU."""
    if device != "cpu" or choice.ceiling is None:
        return None
    return ThreadWatch(ceiling=choice.ceiling, current=choice.count)


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)
