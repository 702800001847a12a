"""Progress on stderr, as `ser extract`, `ser train` and `ser sweep` show it.

On a terminal, a live rich bar (`live_bar`): what, the bar, done / total, then each
command's own columns. On a stderr that is not a terminal (`2>log`, a batch job) a live
bar would be nothing (rich disables it) or thousands of lines, so instead plain lines,
each complete in itself (what, how far, how fast, elapsed, ETA), at most every
`interval` seconds, the first and last of each pass always. There a log line is one line
however long (`log_console`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ser.runtime.units import human_bytes

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


@contextlib.contextmanager
def working(console: Console, what: str) -> Iterator[None]:
    """`what` said with a spinner and the time it has taken, while the block runs, on a
    terminal (a step whose length is not known before it ends, e.g. a corpus read: it
    is never silent there); nothing elsewhere or with `-q`: such a step says its result."""
    columns = (SpinnerColumn(), TextColumn(what), TimeElapsedColumn())
    live = on_terminal(console) and not console.quiet
    with Progress(*columns, console=console, disable=not live, transient=True) as bar:
        bar.add_task(what, total=None)
        yield


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


#: Training steps whose times a `Pace` keeps (their median is the steady step).
STEPS_KEPT = 64


@dataclass
class Pace:
    """A fold's (or a stage's) pace from its steady-state steps, not its first: the
    first training step ends after the set-up (models built, the training side's
    statistics, streamed, a pass over its rows) and holds a compilation or a graph
    capture, so timed from the fold's start it says a step takes many times what the
    next ones do. A step's time is the gap between two consecutive training steps of an
    epoch, the steady step the median of the last `STEPS_KEPT` (a step that met a new
    shape and compiled is one of many); an epoch's, from the first epoch's end on, or
    the first epoch less the set-up before it. The set-up is the time to the fold's
    first step less one steady step.

    >>> pace = Pace(0.0)  # set-up 20 s, then 1 s a step, 10 steps an epoch
    >>> for done in range(1, 11):
    ...     pace.step("train", done, 20.0 + done)
    >>> pace.step_seconds(), pace.setup()
    (1.0, 20.0)
    >>> pace.epoch(1, 31.0); pace.left(31.0, epochs=100)  # 99 more of 11 s (1 s validation)
    1089.0
    """

    started: float  # the fold's or stage's start
    fold_started: float = math.nan  # the fold's start, where its set-up began
    fold_first: float = math.nan  # the end of the fold's first training step
    first: float = math.nan  # the end of this stage's first training step
    done: int = 0  # training steps of the current epoch done
    stepped: float = math.nan  # the end of the last training step
    times: deque[float] = field(default_factory=lambda: deque(maxlen=STEPS_KEPT))
    epochs_done: int = 0
    first_epoch: float = math.nan  # the end of this stage's first epoch
    last_epoch: float = math.nan  # the end of its last epoch

    def __post_init__(self) -> None:
        if math.isnan(self.fold_started):
            self.fold_started = self.started

    def stage(self, now: float) -> Pace:
        """The pace of the fold's next stage, beginning `now` (another model's steps)."""
        return Pace(now, self.fold_started, self.fold_first)

    def step(self, phase: str, done: int, now: float) -> None:
        """Training step `done` of the current epoch ended `now` (other phases: ignored)."""
        if phase != "train":
            return
        if math.isnan(self.first):
            self.first = now
            if math.isnan(self.fold_first):
                self.fold_first = now
        elif done == self.done + 1:  # consecutive steps of one epoch: a step's time
            self.times.append(now - self.stepped)
        self.done, self.stepped = done, now

    def epoch(self, epoch: int, now: float) -> None:
        """Epoch `epoch` of this stage ended `now`: the next step's time is from here."""
        if math.isnan(self.first_epoch):
            self.first_epoch = now
        self.epochs_done, self.last_epoch, self.done, self.stepped = epoch, now, 0, now

    def step_seconds(self) -> float:
        """The steady step's seconds (NaN until two consecutive steps were timed)."""
        return statistics.median(self.times) if self.times else math.nan

    def setup(self) -> float:
        """Seconds of the fold's set-up before its first step (NaN until known)."""
        return max(self.fold_first - self.fold_started - self.step_seconds(), 0.0)

    def epoch_seconds(self) -> float:
        """An epoch's steady seconds (NaN before an epoch ended)."""
        if self.epochs_done >= 2:
            return (self.last_epoch - self.first_epoch) / (self.epochs_done - 1)
        if self.epochs_done == 1:
            if math.isnan(self.first):  # no steps told: the epoch as it was
                return self.first_epoch - self.started
            step = self.step_seconds()  # the first step's own share, where it is known
            return self.first_epoch - self.first + (0.0 if math.isnan(step) else step)
        return math.nan

    def left(self, now: float, epochs: int, steps: int | None = None) -> float:
        """Seconds left of `epochs` at the steady pace (`steps`: training steps an epoch,
        for the first epoch, whose validation is not timed yet); NaN when unknown."""
        if self.epochs_done:
            per_epoch = self.epoch_seconds()
            return max(per_epoch * (epochs - self.epochs_done) - (now - self.last_epoch), 0.0)
        if steps:
            return max(self.step_seconds() * (steps * epochs - self.done), 0.0)
        return math.nan


@dataclass
class EpochLines(_Lines):
    """`ser train`'s lines: one per epoch at most every `interval` seconds, the first and
    the last epoch of each fold (or stage) always; the ETA at the steady pace (`Pace`:
    the training steps told by `step`), the fold's set-up said apart, once.

    >>> t = iter([0.0, 10.0])
    >>> lines = EpochLines(print, interval=0, clock=lambda: next(t))
    >>> lines.start("seed 0 fold1")
    >>> lines.epoch(1, 2, 1.2345, 41.27)
    seed 0 fold1: epoch 1/2  loss 1.234  val UA 41.3  elapsed 0:10  eta 0:10
    """

    description: str = "training"
    score: str = "UA"  # the validation score: "UA" (percent) or "CCC"
    pace: Pace | None = None  # the current fold's or stage's; None: none began
    last_epoch: int = 0
    ended: float = math.nan  # clock() at the last epoch's end
    setup_said: bool = False

    def start(self, description: str) -> None:
        self.description = description
        self.pace, self.last_epoch, self.setup_said = Pace(self.clock()), 0, False

    def stage(self) -> None:
        """The fold's next stage begins (its epochs count from 1 again)."""
        now = self.clock()
        self.pace = self.pace.stage(now) if self.pace else Pace(now)
        self.last_epoch = 0

    def end(self) -> None:
        """The fold is over: epochs without a `start` (--final's) are not counted as its."""
        self.description, self.pace, self.last_epoch = "training", None, 0
        self.ended = math.nan

    def step(self, phase: str, done: int) -> None:
        """A step of the current epoch ended (`ser.track.progress.Progress.step`)."""
        if self.pace is None:
            self.pace = Pace(self.clock())  # no `start` (--final): from its first step
        self.pace.step(phase, done, self.clock())

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        now = self.clock()
        if epoch <= self.last_epoch and self.pace is not None:
            # A new stage not told by `stage` (staged training restarts at epoch 1): it
            # began when the last stage's last epoch ended.
            self.pace = self.pace.stage(self.ended)
        if self.pace is None:
            # No `start` (--final): its time so far is unknown, so count from here.
            self.pace = Pace(now)
        self.pace.epoch(epoch, now)
        self.last_epoch, self.ended = epoch, now
        if not self._ready(now, force=epoch in (1, epochs)):
            return
        val = val_text(self.score, val_ua) if math.isfinite(val_ua) else "no validation"
        self.say(
            f"{self.description}: epoch {epoch}/{epochs}  loss {train_loss:.3f}  {val}  "
            f"{self.setup_text()}elapsed {clock_time(now - self.pace.started)}  "
            f"eta {clock_time(self.pace.left(now, epochs))}"
        )

    def setup_text(self) -> str:
        """``set-up 0:21  `` the first time the fold's set-up is known, else nothing."""
        setup = self.setup()
        if self.setup_said or math.isnan(setup):
            return ""
        self.setup_said = True
        return f"set-up {clock_time(setup)}  "

    def setup(self) -> float:
        """Seconds of the fold's set-up (NaN: not known yet)."""
        return self.pace.setup() if self.pace else math.nan

    def left(self, epochs: int) -> float:
        """Seconds left of the fold's (or stage's) `epochs` (NaN: unknown yet)."""
        return self.pace.left(self.clock(), epochs) if self.pace else math.nan


class Counter(Protocol):
    """What a long step counts its work on: rich's `Progress` (a live bar) or `CountLines`
    (plain lines), as `task_bar` (or `ser.extract.progress.progress_bar`) gives one; a
    task's `unit` is what it counts (`UTTERANCES`, `BYTES`, or any noun)."""

    def add_task(
        self, description: str, *, total: float, completed: int = 0, unit: str = ...
    ) -> TaskID: ...

    def advance(self, task: TaskID, advance: float = 1) -> None: ...


@dataclass
class Tally:
    """One pass's task on a `Counter` (None: shown nowhere): `advance` by what was done,
    and `finish` where the pass skipped some (a set it could not read) to end it whole."""

    bar: Counter | None
    description: str
    total: float
    unit: str = UTTERANCES
    done: float = 0
    task: TaskID | None = None

    def __post_init__(self) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task(self.description, total=self.total, unit=self.unit)

    def advance(self, amount: float) -> None:
        self.done += amount
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, amount)

    def finish(self) -> None:
        if self.done < self.total:
            self.advance(self.total - self.done)


#: Seconds into a pass before a log hears of it: a store's own commands' passes over a
#: small store end sooner and say nothing but their result.
SHORT = 10.0

#: A task counting bytes, shown as sizes (KiB, MiB, GiB) and a size a second.
BYTES = "bytes"


def amount_text(done: float, total: float, unit: str) -> str:
    """How far a pass is: ``4/10 utterances``, ``1.5 GiB/60.0 GiB``."""
    if unit == BYTES:
        return f"{human_bytes(done)}/{human_bytes(total)}"
    return f"{done:,.0f}/{total:,.0f} {unit}"


def rate_unit(unit: str) -> str:
    """`unit` as a rate gives it: utterances as "utt", anything else as it is."""
    return "utt" if unit == UTTERANCES else unit


def rate_text(rate: float | None, unit: str) -> str:
    """A pace: ``12.5 utt/s``, ``85.0 MiB/s``, ``-- utt/s`` (unknown)."""
    if unit == BYTES:
        return f"{human_bytes(rate)}/s" if rate else "-- B/s"
    return f"{rate:.1f} {rate_unit(unit)}/s" if rate else f"-- {rate_unit(unit)}/s"


class AmountColumn(ProgressColumn):
    """How far a task is, in its `unit` (a rich task field)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", UTTERANCES)
        return Text(amount_text(task.completed, task.total or 0, unit), "progress.download")


class RateColumn(ProgressColumn):
    """The pace over the recent window in the task's `unit` (rich's own speed estimate,
    from the first advance on: the set-up before it is not counted)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", UTTERANCES)
        return Text(rate_text(task.finished_speed or task.speed, unit), "progress.data.speed")


def task_bar(
    console: Console,
    enabled: bool = True,
    interval: float = INTERVAL,
    clock: Clock = time.monotonic,
    after: float | None = None,
) -> Progress | CountLines:
    """A live bar per pass on a terminal (how far, the pace, elapsed, ETA), plain lines
    at most every `interval` seconds elsewhere (`CountLines`; none before `after` seconds
    into a pass, None: `SHORT`), nothing unless `enabled` (`-q`). Both are used alike:
    `add_task(description, total=, unit=)`, `advance(task, n)`."""
    after = SHORT if after is None else after
    live = enabled and on_terminal(console)
    if enabled and not live:
        say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
        return CountLines(say, interval, clock, after=after)
    columns = (RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    label = TextColumn("[bold]{task.description:<10}")
    return Progress(label, BarColumn(), AmountColumn(), *columns, console=console, disable=not live)


#: Seconds between two updates of a corpus read's display: the read tells it of each file.
TOLD_EVERY = 0.1


@dataclass
class Passes:
    """A corpus read's hook (`ser.corpus.progress.ReadHook`): each pass it is told of, a
    task on `bar` (`task_bar`'s) added at the pass's first count, its total known then, so
    the bar or the lines give done / total, the pace and the ETA (rich's own estimate over
    its window, or `CountLines`' from the pass's first count on). `bar` is told at most
    every `every` seconds and at the pass's end: a call per file costs a clock read.

    >>> now = [0.0]
    >>> told = Passes(CountLines(print, interval=0, clock=lambda: now[0]), lambda: now[0])
    >>> for done, now[0] in ((1, 0.0), (2, 0.05), (3, 1.0), (4, 2.0)):  # 2: within 0.1 s
    ...     told("audio headers", done, 4)
    audio headers: 1/4 utterances  -- utt/s  elapsed 0:00  eta --
    audio headers: 3/4 utterances  2.0 utt/s  elapsed 0:01  eta 0:00
    audio headers: 4/4 utterances  1.5 utt/s  elapsed 0:02  eta 0:00
    """

    bar: Counter
    clock: Clock = time.monotonic
    every: float = TOLD_EVERY
    what: str = ""  # the current pass
    task: TaskID | None = None
    shown: int = 0  # its count when `bar` was last told
    told: float = -math.inf  # clock() then

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.task is None or what != self.what or done <= self.shown:  # a new pass
            self.task = self.bar.add_task(what, total=total)
            self.what, self.shown, self.told = what, 0, -math.inf
        now = self.clock()
        if done < total and now - self.told < self.every:
            return
        self.bar.advance(self.task, done - self.shown)
        self.shown, self.told = done, now


@contextlib.contextmanager
def read_progress(
    console: Console,
    enabled: bool = True,
    interval: float = INTERVAL,
    clock: Clock = time.monotonic,
) -> Iterator[Passes | None]:
    """The hook to hand `ser.corpus.registry.read_corpus` (None: nothing is shown): its
    passes as `task_bar` shows passes, a live bar each on a terminal, lines in a log
    after `SHORT` seconds of a pass, nothing unless `enabled` (`-q`)."""
    if not enabled:
        yield None
        return
    with task_bar(console, True, interval, clock) as bar:
        yield Passes(bar, clock)


@dataclass
class CountLines(_Lines):
    """Plain lines of passes over items (each task's `unit`: utterances, bytes, ...): done
    of a total per pass, at most every `interval` seconds, the first advance that moves
    and the pass's end always (`after` > 0: none in a pass's first `after` seconds, so a
    pass that ends sooner says nothing); an advance by 0 says nothing. The pace and ETA
    are the steady state's, from the first advance on (before it and within it: opening,
    loading, a first batch), so the first line has none. Items done before this run
    (`add_task(completed=)`) count towards the total but not the rate.

    >>> t = iter([0.0, 4.0, 6.0])
    >>> lines = CountLines(print, interval=0, clock=lambda: next(t))
    >>> task = lines.add_task("hubert", total=10)
    >>> lines.advance(task, 4)
    hubert: 4/10 utterances  -- utt/s  elapsed 0:04  eta --
    >>> lines.advance(task, 4)  # 4 in 2 s since the first
    hubert: 8/10 utterances  2.0 utt/s  elapsed 0:06  eta 0:01
    """

    after: float = 0.0  # seconds into a pass before its first line (`SHORT`)
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
        if first:
            count.first, count.first_done = now, count.done
        if now - count.started < self.after:
            return  # a short pass says nothing
        if not self._ready(now, force=not count.said or count.done >= count.total):
            return
        count.said = True
        elapsed, steady = now - count.started, now - count.first
        # The first advance holds the pass's start (a model loaded, a decoder's first
        # file): no pace is timed before the second.
        rate = (count.done - count.first_done) / steady if steady > 0 else math.nan
        to_go = max(count.total - count.done, 0)
        left = to_go / rate if rate > 0 else 0.0 if not to_go else math.nan
        self.say(
            f"{count.description}: {amount_text(count.done, count.total, count.unit)}  "
            f"{rate_text(rate if math.isfinite(rate) else None, count.unit)}  "
            f"elapsed {clock_time(elapsed)}  eta {clock_time(left)}"
        )


@dataclass
class _Count:
    description: str
    total: float
    started: float
    done: float = 0
    before: float = 0  # done before this run (a resume): not timed
    unit: str = UTTERANCES
    first: float = math.nan  # clock() at the first advance, where the steady pace starts
    first_done: float = 0  # done by then
    said: bool = False  # whether a line said it yet
