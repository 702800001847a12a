"""What the runner shows on stderr while it works: the disk estimate and a progress bar
(utterances/s, ETA), or plain lines when stderr is no terminal (`ser.runtime.progress`).

A terminal is the stream's own ``isatty``: rich also takes a file for one under
FORCE_COLOR, and a log would keep a live bar's redraws as escape codes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from ser.runtime.progress import INTERVAL, Clock, CountLines, task_bar
from ser.runtime.units import human_bytes


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
