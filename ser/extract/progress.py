"""What the runner shows on stderr while it works: the disk estimate and a progress bar
(utterances/s, ETA), or plain lines when stderr is no terminal (`ser.runtime.progress`).

A terminal is the stream's own ``isatty``: rich also takes a file for one under
FORCE_COLOR, and a log would keep a live bar's redraws as escape codes."""

from __future__ import annotations

import contextlib
import math
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from ser.runtime.progress import INTERVAL, Clock, CountLines, clock_time, task_bar
from ser.runtime.units import human_bytes

#: Seconds a batch holding a long recording runs before it is said under way.
AFTER = 10.0
#: Seconds between two looks of `Underway`'s thread.
TICK = 1.0


def progress_bar(
    console: Console,
    enabled: bool = True,
    interval: float = INTERVAL,
    clock: Clock = time.monotonic,
) -> Progress | CountLines:
    """A rich progress bar, one line per extractor pass; plain lines at most every
    `interval` seconds on a stderr that is no terminal (`task_bar` of utterances)."""
    return task_bar(console, enabled, interval, clock, after=0.0)


def print_estimate(
    console: Console, sizes: Sequence[tuple[str, int]], store: Path, peak: int | None = None
) -> None:
    """The disk estimate of the feature sets about to be written, and the free space;
    nothing when none is (a repair writes over the damaged rows in place). `peak`: the
    most they take at once, staged shards beside laid-out sets where sets are staged
    (`peak_bytes`); the free space is weighed against it."""
    if not sizes:
        return
    total = sum(size for _, size in sizes)
    peak = max(peak or total, total)
    console.print(f"disk estimate for {store}:")
    width = max(len(name) for name, _ in sizes)
    for name, size in sizes:
        console.print(f"  {name:<{width}}  {human_bytes(size):>10}")
    existing = next(path for path in (store.resolve(), *store.resolve().parents) if path.exists())
    free = shutil.disk_usage(existing).free
    console.print(f"  {'total':<{width}}  {human_bytes(total):>10}")
    console.print(
        f"  {'at most':<{width}}  {human_bytes(peak):>10}  while they are written "
        f"({human_bytes(free)} free)"
    )
    if peak > free:
        console.print(
            "[bold yellow]warning:[/] the estimate exceeds the free space: the run will stop "
            "when the disk fills; finished shards are kept and a re-run resumes."
        )


@dataclass
class Underway:
    """What a pass says while it waits on a batch that holds one of its `long` recordings
    (manifest indices: `plan.still_indices`), which its progress by utterances stands
    still on: the pass's batches land in `order`, each `done` in turn; once the batch
    waited on has run `after` seconds, a line every `interval` seconds names its longest
    recording, how long it has been under way and about how long is left of it at the
    pass's pace (the audio of the batches landed, a second of the pass). `running` says
    the lines from a thread of its own."""

    console: Console
    label: str
    order: list[tuple[int, ...]]
    seconds: Sequence[float]  # [n_utt] each utterance's audio
    ids: Sequence[str]
    long: frozenset[int]
    after: float = AFTER
    interval: float = INTERVAL
    clock: Clock = time.monotonic
    _next: int = field(default=0, init=False)
    _audio: float = field(default=0.0, init=False)  # seconds of audio of the batches landed
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._started = self._since = self.clock()
        self._said = -math.inf

    def done(self) -> None:
        """The batch waited on has landed: the next is waited on from now."""
        with self._lock:
            if self._next < len(self.order):
                self._audio += sum(self.seconds[i] for i in self.order[self._next])
                self._next += 1
            self._since, self._said = self.clock(), -math.inf

    def line(self) -> str | None:
        """The line to say now, if any (and the time it was said, kept)."""
        now = self.clock()
        with self._lock:
            if self._next >= len(self.order):
                return None
            batch = self.order[self._next]
            longest = max(batch, key=lambda i: self.seconds[i])
            waited = now - self._since
            if longest not in self.long or waited < self.after or now - self._said < self.interval:
                return None
            self._said = now
            pace = self._audio / max(self._since - self._started, 1e-9)
            audio = sum(self.seconds[i] for i in batch)
        said = f"{self.label}: {self.ids[longest]} ({clock_time(self.seconds[longest])} of audio)"
        said += f" under way {clock_time(waited)}"
        if not self._audio:
            return said + " (the pass's first batch: no pace yet)"
        left = audio / pace - waited
        if left <= 0:
            return said + ", longer than the pass's pace gave it"
        return said + f", about {clock_time(left)} left at the pass's pace"

    @contextlib.contextmanager
    def running(self) -> Iterator[Underway]:
        """The lines said from a thread while the block runs."""
        stop = threading.Event()

        def look() -> None:
            while not stop.wait(TICK):
                if (said := self.line()) is not None:
                    self.console.print(said, markup=False, highlight=False, soft_wrap=True)

        thread = threading.Thread(target=look, name="ser-underway", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
