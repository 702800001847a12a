"""Plain progress lines (`ser.runtime.progress`), as a log gets them."""

from __future__ import annotations

import doctest
import io
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import TaskID

import ser.runtime.progress
from ser.runtime.progress import BYTES, CountLines, Passes, read_progress


def _lines(times: Iterator[float]) -> tuple[CountLines, list[str]]:
    said: list[str] = []
    return CountLines(said.append, interval=30, clock=lambda: next(times)), said


def test_an_advance_by_nothing_says_nothing_and_the_first_line_comes_once() -> None:
    lines, said = _lines(iter([0.0, 2.0, 4.0]))  # add_task, then per advance that moves
    task = lines.add_task("asr", total=10)
    lines.advance(task, 0)  # a resume with nothing done yet
    lines.advance(task, 2)
    lines.advance(task, 2)  # within 30 s of the line before: throttled
    assert said == ["asr: 2/10 utterances  -- utt/s  elapsed 0:02  eta --"]


def test_items_done_before_a_resume_count_towards_the_total_but_not_the_rate() -> None:
    lines, said = _lines(iter([0.0, 4.0, 10.0]))
    task = lines.add_task("asr", total=100, completed=60)
    lines.advance(task, 8)  # the first line: no pace yet (the first advance holds the start)
    lines.advance(task, 32)  # the end of the pass
    assert said == [
        "asr: 68/100 utterances  -- utt/s  elapsed 0:04  eta --",
        "asr: 100/100 utterances  5.3 utt/s  elapsed 0:10  eta 0:00",
    ]  # the pace from the first advance on: 32 in 6 s


def test_a_slow_first_advance_leaves_the_eta_right() -> None:
    """Opening a store, loading a model, a first batch: what comes before the first advance
    and within it is not the pace of the rest."""
    lines, said = _lines(iter([0.0, 100.0, 131.0]))
    task = lines.add_task("verify", total=101)
    lines.advance(task, 1)  # 100 s: 100 times the others
    lines.advance(task, 31)  # 1 a second since
    assert said[-1] == "verify: 32/101 utterances  1.0 utt/s  elapsed 2:11  eta 1:09"


def test_bytes_are_counted_as_sizes() -> None:
    said: list[str] = []
    times = iter([0.0, 1.0, 3.0])
    lines = CountLines(said.append, interval=0, clock=lambda: next(times))
    task = lines.add_task("verify", total=8 * 2**30, unit=BYTES)
    lines.advance(task, 2**30)
    lines.advance(task, 2**30)
    assert said[-1] == "verify: 2.0 GiB/8.0 GiB  512.0 MiB/s  elapsed 0:03  eta 0:12"


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.runtime.progress).failed == 0


def test_a_pass_shorter_than_after_says_nothing_and_a_longer_one_starts_then() -> None:
    said: list[str] = []
    times = iter([0.0, 1.0, 2.0, 10.0, 20.0, 21.0, 32.0])
    lines = CountLines(said.append, interval=30, clock=lambda: next(times), after=10)
    short = lines.add_task("verify", total=2)
    lines.advance(short, 1)
    lines.advance(short, 1)  # over in 2 s: nothing said
    long = lines.add_task("rechunk", total=4)  # at 10 s
    lines.advance(long, 1)  # 10 s into it: its first line
    lines.advance(long, 1)
    lines.advance(long, 2)  # its end
    assert said == [
        "rechunk: 1/4 utterances  -- utt/s  elapsed 0:10  eta --",
        "rechunk: 4/4 utterances  0.2 utt/s  elapsed 0:22  eta 0:00",  # 3 in 12 s
    ]


def test_a_task_counts_its_own_unit() -> None:
    """`ser store import` counts its file's checksum pass in MiB."""
    lines, said = _lines(iter([0.0, 2.0, 4.0]))
    task = lines.add_task("emb.npz sha256", total=64, unit="MiB")
    lines.advance(task, 32)
    lines.advance(task, 32)  # 32 in 2 s since the first
    assert said[-1] == "emb.npz sha256: 64/64 MiB  16.0 MiB/s  elapsed 0:04  eta 0:00"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_step_of_unknown_length_is_said_with_its_time_on_a_terminal_alone() -> None:
    from rich.console import Console

    from ser.runtime.progress import working

    shown = Terminal()
    with working(Console(file=shown, force_terminal=True, width=100), "reading the corpus"):
        time.sleep(0.3)  # rich redraws it ten times a second
    assert "reading the corpus" in shown.getvalue() and "0:00:00" in shown.getvalue()
    logged = io.StringIO()  # a log (2>file): its result line says it, not a spinner
    with working(Console(file=logged, width=100), "reading the corpus"):
        pass
    assert logged.getvalue() == ""


class _Bar:
    """A `Counter` that keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, object, float]] = []

    def add_task(
        self, description: str, *, total: float, completed: int = 0, unit: str = ""
    ) -> TaskID:
        self.told.append(("add", description, total))
        return TaskID(sum(what == "add" for what, _, _ in self.told) - 1)

    def advance(self, task: TaskID, advance: float = 1) -> None:
        self.told.append(("advance", task, advance))


def test_a_read_s_passes_are_a_task_each_told_at_most_every_tenth_of_a_second() -> None:
    """A corpus read calls its hook per file: the display hears of it ten times a second,
    and of each pass's end."""
    bar, times = _Bar(), iter([0.0, 0.05, 0.06, 0.2, 0.25, 0.3, 0.4])
    told = Passes(bar, clock=lambda: next(times))
    for done in (1, 2, 3):  # 2: 0.05 s after 1; 3: the pass's end
        told("transcripts", done, 3)
    for done in (1, 2):
        told("audio headers", done, 2)
    for done in (1, 2):  # a pass of the same name again (a kind that reads twice)
        told("audio headers", done, 2)
    assert bar.told == [
        ("add", "transcripts", 3),
        ("advance", 0, 1),
        ("advance", 0, 2),
        ("add", "audio headers", 2),
        ("advance", 1, 1),
        ("advance", 1, 1),
        ("add", "audio headers", 2),
        ("advance", 2, 1),
        ("advance", 2, 1),
    ]


def test_a_long_read_in_a_log_says_its_count_rate_and_eta_a_short_one_nothing() -> None:
    now, out = [0.0], io.StringIO()
    with read_progress(Console(file=out), clock=lambda: now[0]) as told:
        assert told is not None
        for done in range(1, 5):  # 2 s in all: shorter than SHORT
            now[0] = done / 2
            told("audio headers", done, 4)
        for done in range(1, 101):  # one a second from 3 s on
            now[0] = 2.0 + done
            told("transcripts", done, 100)
    assert out.getvalue().splitlines() == [
        "transcripts: 11/100 utterances  1.0 utt/s  elapsed 0:10  eta 1:29",
        "transcripts: 41/100 utterances  1.0 utt/s  elapsed 0:40  eta 0:59",
        "transcripts: 71/100 utterances  1.0 utt/s  elapsed 1:10  eta 0:29",
        "transcripts: 100/100 utterances  1.0 utt/s  elapsed 1:39  eta 0:00",
    ]
    with read_progress(Console(file=out), enabled=False) as told:  # -q
        assert told is None
