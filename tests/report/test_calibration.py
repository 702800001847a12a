"""`ser report --calibration`'s table: ECE from the predictions, the recorded temperature
and the votes' JSDs; fold entries keep both only where a run recorded them."""

from __future__ import annotations

import doctest

import numpy as np

import ser.report.calibration
from ser.report.calibration import calibration_table
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import PredictionTable
from ser.runs.record import RunRecord

SCORES = {"wa": 50.0, "ua": 50.0, "f1": 50.0, "per_class_recall": {"neu": 50.0, "ang": 50.0},
          "confusion": [[1, 1], [1, 1]], "n": 4}  # fmt: skip


def _table() -> PredictionTable:
    probs = np.array([[0.95, 0.05]] * 4 + [[0.45, 0.55]] * 2)  # as tests/heads' ECE case
    gold, pred = [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 1]
    ids = [f"u{i}" for i in range(6)]
    return PredictionTable.of(("neu", "ang"), 0, "f1", ids, ids, range(6), gold, pred, probs)


def _run(*folds: dict[str, object]) -> RunRecord:
    return RunRecord.from_json({"name": "r", "protocol": "loso", "classes": ["neu", "ang"],
                                "config": {}, "folds": list(folds)})  # fmt: skip


def test_doctests() -> None:
    assert doctest.testmod(ser.report.calibration).failed == 0


def test_the_table_shows_ece_temperature_and_votes() -> None:
    folds = [
        {"seed": 0, "fold": "f1", "metrics": SCORES, "temperature": 1.5,
         "votes": {"model": 0.2, "majority": 0.4, "n": 3}},
        {"seed": 0, "fold": "f2", "metrics": SCORES, "temperature": 2.5,
         "votes": {"model": 0.1, "majority": 0.1, "n": 1}},
    ]  # fmt: skip
    run = _run(*folds)
    out = calibration_table([(run, ("r", _table()))], "csv")
    ece = 100 * (4 / 6 * 0.2 + 2 / 6 * 0.05)
    # the JSDs weighted by each fold's voted utterances: (0.2 * 3 + 0.1) / 4, (0.4 * 3 + 0.1) / 4
    assert out.splitlines()[1] == f"r,{ece:.2f},6,2.00,0.1750,0.3250,4"
    md = calibration_table([(run, ("r", _table()))])
    assert f"| r | {ece:.2f} | 6 | 2.00 | 0.1750 | 0.3250 | 4 |" in md
    plain = _run({"seed": 0, "fold": "f1", "metrics": SCORES})
    assert f"| r | {ece:.2f} | 6 | - | - | - | - |" in calibration_table([(plain, ("r", _table()))])


def test_fold_entries_keep_temperature_and_votes_only_where_recorded() -> None:
    plain = {"seed": 0, "fold": "f1", "metrics": SCORES}
    entry = FoldEntry.from_json(plain)
    assert entry.temperature is None and not entry.votes
    assert "temperature" not in entry.to_json() and "votes" not in entry.to_json()
    scaled = FoldEntry.from_json({**plain, "temperature": 1.25, "votes": {"model": 0.5, "n": 2}})
    again = scaled.to_json()
    assert again["temperature"] == 1.25 and again["votes"] == {"model": 0.5, "n": 2}
    assert FoldEntry.from_json(again) == scaled
