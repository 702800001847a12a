"""A run's summary (ser.runs.summary)."""

from __future__ import annotations

import doctest
import math

import pytest

import ser.runs.summary
from ser.errors import ReportError
from ser.heads.metrics import over_seeds
from ser.runs.summary import Score, Summary


def test_the_summary_the_heads_make_reads_and_writes_back() -> None:
    made = over_seeds([(0, {"ua": 60.0, "wa": 70.0}), (1, {"ua": 62.0, "wa": 70.0})])
    summary = Summary.from_json(made)
    assert (summary.seeds, summary.std_over, summary.n) == (2, "seeds", 2)
    assert summary.scores["ua"] == Score(61.0, made["ua_std"]) and made["ua_std"] > 0
    assert summary.to_json() == made and dict(summary) == made


def test_an_older_summary_keeps_its_keys_and_a_lone_key_is_extra() -> None:
    old = {"seeds": 2, "wa": 77.0, "wa_std": 6.0, "note": "x"}
    summary = Summary.from_json(old)
    assert summary.n is None and summary.std_over is None and summary.extra == {"note": "x"}
    assert summary.to_json() == old and "n" not in summary


def test_nan_scores_read_and_a_non_number_is_refused() -> None:
    assert math.isnan(Summary.from_json({"ccc_mean": math.nan, "ccc_mean_std": 0.0})["ccc_mean"])
    with pytest.raises(ReportError, match="'ua' must be a number"):
        Summary.from_json({"ua": "high", "ua_std": 1.0}, "run.json, summary")


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.summary)
    assert result.attempted > 0 and result.failed == 0
