"""Older run records made today's (ser.runs.migrate)."""

from __future__ import annotations

import doctest

import pytest

import ser.runs.migrate
from ser.errors import ReportError
from ser.runs.migrate import FORMAT, current


def test_format_1_becomes_today_s_and_today_s_stays_as_it_is() -> None:
    old = {"name": "r", "folds": [{"seed": 0, "fold": "s5", "test_sessions": [5],
                                   "val_sessions": None}]}  # fmt: skip
    made = current(old, "run.json")
    assert made["format"] == FORMAT == 2 and "format" not in old  # `old` untouched
    assert made["folds"] == [{"seed": 0, "fold": "s5", "test_groups": [5], "val_groups": None,
                              "group": "session", "stacked": 1}]  # fmt: skip
    assert current(made, "run.json") == made


def test_an_entry_that_named_its_group_keeps_it() -> None:
    entry = {"seed": 0, "fold": "f", "test_groups": ["Ses01F"], "group": "speaker",
             "stacked": 4}  # fmt: skip
    assert current({"folds": [entry]}, "x")["folds"] == [entry]


@pytest.mark.parametrize("version", [FORMAT + 1, "2"])
def test_a_newer_or_unknown_format_is_refused_naming_the_file(version: object) -> None:
    with pytest.raises(ReportError, match=r"run\.json: run record format .* newer than"):
        current({"format": version}, "run.json")


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.migrate)
    assert result.attempted > 0 and result.failed == 0
