"""Progress on stderr, as `ser extract`, `ser train` and `ser sweep` show it.

On a terminal, a live rich bar (`live_bar`): what, the bar, done / total, then each
command's own columns. On a stderr that is not a terminal (`2>log`, a batch job) a live
bar would be nothing (rich disables it) or thousands of lines, so instead plain lines,
each complete in itself (what, how far, how fast, elapsed, ETA), at most every
`interval` seconds, the first and last of each pass always. There a log line is one line
however long (`log_console`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
)

Clock = Callable[[], float]

#: Seconds between two plain progress lines, at most one line per interval.
INTERVAL = 30.0

#: What a count counts unless a task says otherwise.
UTTERANCES = "utterances"


def live_bar(
    console: Console, live: bool, label: str, *columns: ProgressColumn, refresh: bool = True
) -> Progress:
    """A bar on `console` (nothing unless `live`): `label` (a rich format of the task),
    the bar and done / total, then `columns`; `refresh` False: redrawn only when the
    caller says, not by rich's 10 Hz thread."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        *columns,
        console=console,
        disable=not live,
        auto_refresh=refresh,
    )


def on_terminal(console: Console) -> bool:
    """Whether `console` writes to a terminal a live bar can redraw."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return console.is_interactive and isatty is not None and bool(isatty())
    except ValueError:  # a closed stream
        return False


def log_console(quiet: bool = False) -> Console:
    """A console on stderr for a command's log lines: on a terminal rich's own, wrapped to
    its width; elsewhere (`2>log`, a pipe, a batch job) one whose lines are never wrapped,
    where rich would cut each at 80 columns, mid-sentence, as it knows no width."""
    console = Console(stderr=True, quiet=quiet)
    console.soft_wrap = not on_terminal(console)
    return console


@dataclass
class _Lines:
    """Says a line at most once per `interval` seconds, or when forced (`_ready`)."""

    say: Callable[[str], None]
    interval: float = INTERVAL
    clock: Clock = time.monotonic
    last: float = field(default=-math.inf, init=False)  # `now` when `_ready` last said yes

    def _ready(self, now: float, force: bool = False) -> bool:
        if force or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def clock_time(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss; "--" when unknown.

    >>> clock_time(75), clock_time(3725), clock_time(math.nan)
    ('1:15', '1:02:05', '--')
    """
    if not math.isfinite(seconds) or seconds < 0:
        return "--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: Scores that are errors: validation selects on their negative (higher is better), and
#: they are shown as the error itself.
ERRORS = frozenset({"MAE"})


def val_text(score: str, value: float) -> str:
    """An epoch's validation score as lines and bars show it: ``val UA 41.3`` (percent),
    ``val CCC 0.251`` (a fraction), ``val MAE 0.812`` (an error, selected on as -0.812).

    >>> val_text("MAE", -0.8125)
    'val MAE 0.812'
    """
    shown = -value if score in ERRORS else value
    return f"val {score} {shown:.{1 if score == 'UA' else 3}f}"


def eta(elapsed: float, done: float, total: float) -> float:
    """Seconds left at the pace so far (NaN before anything is done)."""
    return elapsed / done * (total - done) if done > 0 else math.nan


@dataclass
class EpochLines(_Lines):
    """`ser train`'s lines: one per epoch at most every `interval` seconds, the first and
    the last epoch of each fold (or stage) always.

    >>> t = iter([0.0, 10.0])
    >>> lines = EpochLines(print, interval=0, clock=lambda: next(t))
    >>> lines.start("seed 0 fold1")
    >>> lines.epoch(1, 2, 1.2345, 41.27)
    seed 0 fold1: epoch 1/2  loss 1.234  val UA 41.3  elapsed 0:10  eta 0:10
    """

    description: str = "training"
    score: str = "UA"  # the validation score: "UA" (percent) or "CCC"
    started: float = math.nan  # clock() when the current fold or stage began
    last_epoch: int = 0
    ended: float = math.nan  # clock() at the last epoch's end

    def start(self, description: str) -> None:
        self.description = description
        self.started, self.last_epoch = self.clock(), 0

    def end(self) -> None:
        """The fold is over: epochs without a `start` (--final's) are not counted as its."""
        self.description, self.started, self.last_epoch = "training", math.nan, 0
        self.ended = math.nan

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        now = self.clock()
        if epoch <= self.last_epoch:
            # A new stage (staged training restarts at epoch 1): it began when the last
            # stage's last epoch ended.
            self.started = self.ended
        if math.isnan(self.started):
            # No `start` (--final): its time so far is unknown, so count from here.
            self.started = now
        self.last_epoch, self.ended = epoch, now
        if not self._ready(now, force=epoch in (1, epochs)):
            return
        elapsed = now - self.started
        val = val_text(self.score, val_ua) if math.isfinite(val_ua) else "no validation"
        self.say(
            f"{self.description}: epoch {epoch}/{epochs}  loss {train_loss:.3f}  {val}  "
            f"elapsed {clock_time(elapsed)}  eta {clock_time(eta(elapsed, epoch, epochs))}"
        )


@dataclass
class CountLines(_Lines):
    """`ser extract`'s lines: items done of a total per pass, at most every `interval`
    seconds, the first advance that moves and the pass's end always; an advance by 0 says
    nothing. Items done before this run (`add_task(completed=)`) count towards the total
    but not the rate.

    >>> t = iter([0.0, 4.0])
    >>> lines = CountLines(print, interval=0, clock=lambda: next(t))
    >>> task = lines.add_task("hubert", total=10)
    >>> lines.advance(task, 4)
    hubert: 4/10 utterances  1.0 utt/s  elapsed 0:04  eta 0:06
    """

    tasks: list[_Count] = field(default_factory=list)

    def __enter__(self) -> CountLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # The two methods of rich's Progress the runner calls, with its signatures; `unit`
    # (one of rich's task fields): what is counted, "utterances" unless said.
    def add_task(
        self, description: str, total: float, completed: float = 0, unit: str = UTTERANCES
    ) -> TaskID:
        count = _Count(description, total, self.clock(), completed, completed, unit)
        self.tasks.append(count)
        return TaskID(len(self.tasks) - 1)

    def advance(self, task: TaskID, advance: float = 1) -> None:
        if advance <= 0:
            return
        now, count = self.clock(), self.tasks[task]
        first = count.done == count.before
        count.done += advance
        if not self._ready(now, force=first or count.done >= count.total):
            return
        elapsed, here = now - count.started, count.done - count.before
        rate = f"{here / elapsed:.1f}" if elapsed > 0 else "--"
        left = eta(elapsed, here, count.total - count.before)
        self.say(
            f"{count.description}: {count.done:,.0f}/{count.total:,.0f} {count.unit}  "
            f"{rate} {rate_unit(count.unit)}/s  elapsed {clock_time(elapsed)}  "
            f"eta {clock_time(left)}"
        )


def rate_unit(unit: str) -> str:
    """`unit` as a rate gives it: utterances as "utt", anything else as it is."""
    return "utt" if unit == UTTERANCES else unit


@dataclass
class _Count:
    description: str
    total: float
    started: float
    done: float = 0
    before: float = 0  # done before this run (a resume): not timed
    unit: str = UTTERANCES


class Counter(Protocol):
    """What a long step counts its work on: rich's `Progress` (a live bar) or `CountLines`
    (plain lines), as `ser.extract.progress.progress_bar` gives one."""

    def add_task(
        self, description: str, *, total: float, completed: int = 0, unit: str = ...
    ) -> TaskID: ...

    def advance(self, task: TaskID, advance: float = 1) -> None: ...
