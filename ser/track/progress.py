"""Progress hooks of a training run, and the heartbeat that keeps long epochs from going
silent: what `ser train`, `ser sweep` and the Python API show a run by, below the
trainer and the sweep."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ser.runs.fold_entry import FoldEntry
from ser.runtime.progress import INTERVAL, Clock, EpochLines, Pace, clock_time

PHASES = {"train": "training", "val": "validation", "test": "test"}
# A `Published` line: {"keys": [what it is about, ...], "text": line}; msgpack-able.
Message = dict[str, Any]


class Progress:
    """Hooks a front end overrides to show progress; the defaults stay silent."""

    #: Whether the front end shows every epoch's end (a bar, or lines at most every 30
    #: s): a `Heartbeat` then counts an epoch's end as a line.
    shows_epochs = False

    def message(self, text: str) -> None:
        """A one-line note (dropped utterances, folds, resume state)."""

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        """Training of one (seed, fold) begins."""

    def stage(self, n: int, total: int, name: str) -> None:
        """Stage `n` of `total` of a staged model begins; a message unless overridden."""
        self.message(f"stage {n} of {total}: {name}")

    def selects_on(self, score: str) -> None:
        """What the epochs' validation score is from here on: "UA" (percent) or "CCC"
        (the mean over attributes, a run on attributes alone)."""

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        """One epoch of the current fold finished (`val_ua`: the `selects_on` score)."""

    def step(self, phase: str, done: int, total: int | None) -> None:
        """Batch `done` of `total` (None: unknown) of the current epoch's `phase`
        ("train", "val" or "test") finished. Called from the batch loop: keep it cheap."""

    def heartbeat(self, text: str) -> None:
        """A `Heartbeat` line; a message unless overridden."""
        self.message(text)

    def fold_end(self, seed: int, fold: str, entry: FoldEntry) -> None:
        """The (seed, fold) finished; `entry` is its record entry."""


class Heartbeat(Progress):
    """`inner`'s hooks, and a line (`inner.heartbeat`: fold, stage, step, pace, ETA) when
    training showed nothing for `interval` s, the first `first` s into a stage. The pace
    and ETA are the steady steps' (`ser.runtime.progress.Pace`): the set-up before the
    first step (models, the training side's statistics, a compilation) is left out of
    them and said apart, once, in the first line that knows it."""

    def __init__(
        self,
        inner: Progress,
        interval: float = 60.0,
        first: float = 15.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.inner, self.shows_epochs = inner, inner.shows_epochs
        self.interval, self.first, self.clock = interval, first, clock
        self.what, self.staged, self.epochs = "training", "", 0
        self.pace = Pace(clock())
        self.setup_said = False
        self._begin()

    def _begin(self) -> None:
        """A fold or stage starts: its clock, epochs and steps from zero."""
        now = self.clock()
        self.started = self.last = self.epoch_ended = self.phase_started = self.stepped = now
        self.epochs_done, self.beats = 0, 0
        self.phase, self.done = "train", 0
        self.total: int | None = None
        self.steps: int | None = None  # training steps an epoch, once told

    def message(self, text: str) -> None:
        self.inner.message(text)

    def heartbeat(self, text: str) -> None:
        self.inner.heartbeat(text)

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.inner.fold_start(seed, fold, epochs)
        self.what, self.staged, self.epochs = fold_label(seed, fold), "", epochs
        self._begin()
        self.pace, self.setup_said = Pace(self.started), False

    def stage(self, n: int, total: int, name: str) -> None:
        self.inner.stage(n, total, name)
        self.staged = f", stage {n} of {total} ({name})"
        self._begin()
        self.pace = self.pace.stage(self.started)

    def selects_on(self, score: str) -> None:
        self.inner.selects_on(score)

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        self.inner.epoch(epoch, epochs, train_loss, val_ua)
        now = self.clock()
        self.epochs_done, self.epochs, self.epoch_ended = epoch, epochs, now
        self.pace.epoch(epoch, now)
        self.phase, self.done, self.total = "train", 0, None
        self.phase_started = self.stepped = now
        if self.shows_epochs:
            self.last = now

    def step(self, phase: str, done: int, total: int | None) -> None:
        self.inner.step(phase, done, total)
        now = self.clock()
        if phase != self.phase or done < self.done:  # a new phase began after the last step
            self.phase_started = self.stepped
        self.phase, self.done, self.total, self.stepped = phase, done, total, now
        self.pace.step(phase, done, now)
        if phase == "train":
            self.steps = total
        quiet = now - self.last
        if self.epochs_done == 0 and self.beats == 0:
            # The first line once a steady step is timed (a first step's pace would be
            # its set-up's), or a minute in without one.
            due = quiet >= self.interval or (quiet >= self.first and self._timed())
        else:
            due = quiet >= self.interval
        if due:
            self.last, self.beats = now, self.beats + 1
            self.inner.heartbeat(self.line(now))

    def _timed(self) -> bool:
        return math.isfinite(self.pace.step_seconds())

    def fold_end(self, seed: int, fold: str, entry: FoldEntry) -> None:
        self.inner.fold_end(seed, fold, entry)
        self.what, self.staged = "training", ""
        self._begin()

    def line(self, now: float) -> str:
        of = f"/{self.total}" if self.total else ""
        if self.phase == "train":
            rate = self.pace.step_seconds()
        else:
            rate = (now - self.phase_started) / self.done if self.done else math.nan
        pace = f", {rate:.2f} s a step" if math.isfinite(rate) else ""
        epoch = min(self.epochs_done + 1, max(self.epochs, 1))
        eta = "stage eta" if self.staged else "eta"
        left = self.left(now)
        eta += f" ~{clock_time(left)}" if math.isfinite(left) else " -- (timing its steps)"
        return (
            f"{self.what}{self.staged}: epoch {epoch}/{self.epochs}, "
            f"{PHASES.get(self.phase, self.phase)} step {self.done}{of}{pace}, "
            f"{self._setup()}elapsed {clock_time(now - self.started)}, {eta}"
        )

    def _setup(self) -> str:
        """``set-up 0:21, `` once a fold, when first known."""
        setup = self.pace.setup()
        if self.setup_said or math.isnan(setup):
            return ""
        self.setup_said = True
        return f"set-up {clock_time(setup)}, "

    def left(self, now: float) -> float:
        """Seconds left in the stage at the steady pace (NaN when nothing is timed yet;
        in the first epoch, its training steps alone: its validation is not timed yet)."""
        return self.pace.left(now, self.epochs, self.steps)


def seconds_said(entry: FoldEntry) -> str:
    """A fold's training seconds as its line says them. The record's `seconds` of a member
    trained stacked with others is its share (the stacked model's time / `stacked`),
    beside a fold trained alone in the same run it would look several times faster than
    it was: the line gives the stacked model's whole time first.

    >>> seconds_said(FoldEntry(0, "fold1", seconds=26.2))
    '26.2 s'
    >>> seconds_said(FoldEntry(0, "fold2", seconds=5.3, stacked=5))
    '26.5 s for 5 stacked members, 5.3 s a member'
    """
    if entry.stacked <= 1:
        return f"{entry.seconds:.1f} s"
    whole = entry.seconds * entry.stacked
    return f"{whole:.1f} s for {entry.stacked} stacked members, {entry.seconds:.1f} s a member"


def fold_label(seed: int, fold: str) -> str:
    """How progress lines name a fold: "seed 0 session5", or a stacked group's own
    description, which names its seeds ("fold1..fold5 x seeds 0-2 (...)": "seed 0"
    before it would say the group is seed 0's).

    >>> fold_label(0, "session5"), fold_label(0, "fold1..fold5 x seeds 0-2")
    ('seed 0 session5', 'fold1..fold5 x seeds 0-2')
    """
    return fold if " x seed" in fold else f"seed {seed} {fold}"


class Published(Progress):
    """`ser train`'s plain progress lines of work done elsewhere (a sweep task's cells on
    a dask worker, a piece of a run in a pool process), each sent as a `Message`."""

    shows_epochs = True  # a Heartbeat wrapping it counts epoch lines as lines

    def __init__(
        self, keys: Sequence[str], send: Callable[[Message], None], interval: float = INTERVAL
    ) -> None:
        self.keys, self.send = list(keys), send
        self.lines = EpochLines(self._say, interval=interval)

    def _say(self, text: str) -> None:
        self.send({"keys": self.keys, "text": text})

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.lines.start(fold_label(seed, fold))

    def stage(self, n: int, total: int, name: str) -> None:
        self._say(f"stage {n} of {total}: {name}")
        self.lines.stage()

    def step(self, phase: str, done: int, total: int | None) -> None:
        self.lines.step(phase, done)

    def selects_on(self, score: str) -> None:
        self.lines.score = score

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        self.lines.epoch(epoch, epochs, train_loss, val_ua)

    def heartbeat(self, text: str) -> None:
        self._say(text)

    def fold_end(self, seed: int, fold: str, entry: FoldEntry) -> None:
        self.lines.end()
