"""`ser train`'s progress on the console (`ConsoleProgress`): its notes on stderr, a
live bar per fold on a terminal, else epoch lines at most every 30 s, and each fold's
scores as it ends; what `ser train` and `ser.train(progress=True)` show alike."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.progress import TextColumn, TimeElapsedColumn

from ser.heads.recorded import entry_heads
from ser.heads.reported import Reported
from ser.runs.fold_entry import FoldEntry
from ser.runtime.progress import INTERVAL, Clock, EpochLines, clock_time, live_bar, val_text
from ser.track.progress import Progress, fold_label, seconds_said

REDRAW_SECONDS = 0.25  # the live progress bar's redraw interval, at most


class ConsoleProgress(Progress):
    """Notes on stderr; a live bar per fold on a terminal, else (`plain`) epoch lines
    (a log would otherwise show nothing between a fold's first line and its result).
    Both say the ETA at the steady pace, the fold's set-up apart (`EpochLines`)."""

    def __init__(
        self,
        console: Console,
        live: bool,
        plain: bool = False,
        interval: float = INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        self.console, self.live, self.plain = console, live, plain
        self.shows_epochs = live or plain
        # A live bar's status takes the lines' ETA; only a log gets the lines themselves.
        self.lines = EpochLines(self.message if plain else _unsaid, interval, clock)
        # Redrawn from the epoch hook instead of a 10 Hz thread: that thread takes the GIL
        # from the training loop between its many small ops.
        columns = (TextColumn("{task.fields[status]}"), TimeElapsedColumn())
        self.bar = live_bar(console, live, "{task.description}", *columns, refresh=False)
        self.task: Any = None
        self.clock = clock
        self.drawn = -math.inf  # self.clock() at the last redraw
        self.score = "UA"  # the validation score the epochs show
        self.setup = ""  # the fold's set-up, as its bar says it

    def message(self, text: str) -> None:
        # soft_wrap: one line in a log (rich wraps a file at 80 columns otherwise)
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        label = fold_label(seed, fold)
        self.task = self.bar.add_task(label, total=epochs, status="")
        self.lines.start(label)
        self.setup = ""

    def stage(self, n: int, total: int, name: str) -> None:
        super().stage(n, total, name)
        self.lines.stage()

    def selects_on(self, score: str) -> None:
        self.score = score
        self.lines.score = score

    def step(self, phase: str, done: int, total: int | None) -> None:
        if self.shows_epochs:
            self.lines.step(phase, done)

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        if self.shows_epochs:
            self.lines.epoch(epoch, epochs, train_loss, val_ua)
        if self.task is not None and self.live:  # a disabled bar needs no redraws
            if not self.setup and math.isfinite(setup := self.lines.setup()):
                self.setup = f"set-up {clock_time(setup)}"
            left = clock_time(self.lines.left(epochs))
            status = f"loss {train_loss:.3f} {val_text(self.score, val_ua)}  eta {left}"
            status += f"  ({self.setup})" if self.setup else ""
            self.bar.update(self.task, completed=epoch, status=status)
            now = self.clock()
            if now - self.drawn >= REDRAW_SECONDS or epoch == epochs:
                self.bar.refresh()
                self.drawn = now

    def fold_end(self, seed: int, fold: str, entry: FoldEntry) -> None:
        self.lines.end()
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        scores = fold_scores(entry)
        said = seconds_said(entry)  # trained stacked: the model's time and its share
        self.message(f"seed {seed} {fold}: {scores}(best epoch {entry.best_epoch}, {said})")


def _unsaid(text: str) -> None:
    """Where a live bar's `EpochLines` say their lines: nowhere (the bar shows them)."""


def fold_scores(entry: FoldEntry) -> str:
    """``UA 61.00 WA 62.00 F1 60.00 sentiment-score MAE 1.13 `` of a finished fold."""
    parts = []
    for head in entry_heads(entry):
        metrics = head.recorded(entry)
        for key, header in head.console_columns():
            parts.append(f"{header} {score_text(head.number(metrics, key), head)} ")
    return "".join(parts)


def score_text(value: float | None, head: Reported) -> str:
    """A score to the head's decimals; "-": none."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{head.decimals}f}"
