"""A short timed probe of a sweep cell: what its family costs on this machine now.

The estimate's FLOPs and read rates (`ser.sweep.estimate`) are one machine's, and count
neither a run's fixed costs (its data read, each member's set-up: the model built, its
training side's z-scores, a first step's compilation) nor a step's own overhead, which for
a small model is most of its time: the unimodal MLP's step is a few hundred thousand
parameters, and a cell of them trained 8-30x slower than estimated. Where no cell of a
family has trained in the sweep's folder to calibrate it, `--dry-run` trains its first
member for a few steady steps in a temporary folder (`time_cell`) and extrapolates: the
data read once, then each member's set-up and its epochs at the steady step's pace
(`ser.runtime.progress.Pace`: not the first step, which holds the set-up). Validation
passes are counted where the probe saw a whole epoch, else left out.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field, replace

from ser.errors import SerError
from ser.runtime.progress import Clock, Pace
from ser.sweep.cells import ResolvedCell
from ser.track.progress import Progress

#: Steady training steps a probe times before it stops, and the seconds it times them
#: for at most (a slow model's steps are timed for as long, however few).
PROBE_STEPS = 20
PROBE_SECONDS = 15.0


@dataclass(frozen=True)
class Timed:
    """What a probe measured of one member (seconds) and what it makes of the cell."""

    load: float  # the run's data read, before its first member began
    setup: float  # a member's set-up, before its first steady step
    epoch: float  # a member's epoch at the steady pace
    epochs: int  # the cell's epochs a member
    passes: int = 1  # staged models: the branches alone, then the whole model

    def seconds(self, members: int) -> float:
        """The cell's seconds: its data read once, then each member one after another."""
        return self.load + members * (self.setup + self.epoch * self.epochs * self.passes)


class _Enough(Exception):
    """Raised from a step hook once the probe has timed what it needs."""


@dataclass
class _Watch(Progress):
    """The probe's hooks: the run's start, its first member's pace; `_Enough` once
    `PROBE_STEPS` steady steps are timed, or `PROBE_SECONDS` after the first, or once an
    epoch that timed a step has ended (its validation then counted)."""

    clock: Clock = time.monotonic
    steps: int = PROBE_STEPS
    limit: float = PROBE_SECONDS
    started: float = field(default=math.nan)
    pace: Pace | None = None
    per_epoch: int | None = None  # training steps an epoch

    def __post_init__(self) -> None:
        self.started = self.clock()

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.pace = Pace(self.clock())

    def step(self, phase: str, done: int, total: int | None) -> None:
        if self.pace is None:
            return
        now = self.clock()
        self.pace.step(phase, done, now)
        if phase == "train":
            self.per_epoch = total
        timed = len(self.pace.times)
        if timed >= self.steps or (timed and now - self.pace.first >= self.limit):
            raise _Enough

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        if self.pace is None:
            return
        self.pace.epoch(epoch, self.clock())
        # An epoch of one step times none: the next epoch's is timed from this one's end.
        if self.pace.times or self.pace.epochs_done >= 2:
            raise _Enough

    def timed(self, epochs: int, passes: int) -> Timed | str:
        """What the hooks saw, or why they cannot say."""
        pace = self.pace
        if pace is None or not math.isfinite(step := pace.step_seconds()):
            return "its training took too few steps to time"
        # A whole epoch seen: its time, its validation in it; else its training steps.
        epoch = pace.epoch_seconds() if pace.epochs_done else step * (self.per_epoch or pace.done)
        return Timed(pace.started - self.started, pace.setup(), epoch, epochs, passes)


def time_cell(cell: ResolvedCell, passes: int = 1, clock: Clock = time.monotonic) -> Timed | str:
    """Train `cell`'s first member (its first seed, first fold, alone, in one process) in a
    temporary folder until `_Watch` has timed it; what it measured, or why it cannot be
    timed (a refusal `ser train` would give, said in one line)."""
    from ser.train.recipe import train  # the trainer, only when a probe runs

    watch = _Watch(clock)
    with tempfile.TemporaryDirectory(prefix="ser-probe-") as folder:
        config = replace(
            cell.config, out=folder, name="probe", seeds=1, members_at_once=1, processes=1
        )
        try:
            train(config, watch)
        except _Enough:
            pass
        except SerError as error:
            return str(error)
    return watch.timed(cell.settings.epochs, passes)
