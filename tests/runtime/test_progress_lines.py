"""Plain progress lines (`ser.runtime.progress`), as a log gets them."""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import ser.runtime.progress
from ser.runtime.progress import CountLines


def _lines(times: Iterator[float]) -> tuple[CountLines, list[str]]:
    said: list[str] = []
    return CountLines(said.append, interval=30, clock=lambda: next(times)), said


def test_an_advance_by_nothing_says_nothing_and_the_first_line_comes_once() -> None:
    lines, said = _lines(iter([0.0, 2.0, 4.0]))  # add_task, then per advance that moves
    task = lines.add_task("asr", total=10)
    lines.advance(task, 0)  # a resume with nothing done yet
    lines.advance(task, 2)
    lines.advance(task, 2)  # within 30 s of the line before: throttled
    assert said == ["asr: 2/10 utterances  1.0 utt/s  elapsed 0:02  eta 0:08"]


def test_items_done_before_a_resume_count_towards_the_total_but_not_the_rate() -> None:
    lines, said = _lines(iter([0.0, 4.0, 10.0]))
    task = lines.add_task("asr", total=100, completed=60)
    lines.advance(task, 8)  # the first line: 8 in 4 s, not 68
    lines.advance(task, 32)  # the end of the pass
    assert said == [
        "asr: 68/100 utterances  2.0 utt/s  elapsed 0:04  eta 0:16",
        "asr: 100/100 utterances  4.0 utt/s  elapsed 0:10  eta 0:00",
    ]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.runtime.progress).failed == 0


def test_a_task_counts_its_own_unit() -> None:
    """`ser store import` counts its file's checksum pass in MiB."""
    lines, said = _lines(iter([0.0, 2.0]))
    lines.advance(lines.add_task("emb.npz sha256", total=64, unit="MiB"), 64)
    assert said == ["emb.npz sha256: 64/64 MiB  32.0 MiB/s  elapsed 0:02  eta 0:00"]
