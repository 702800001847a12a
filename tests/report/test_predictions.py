"""predictions.csv: a run's per-utterance test predictions, written and read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.errors import ConfigError
from ser.report.predictions import (
    PREDICTIONS,
    PredictionTable,
    concat,
    predictions_csv,
    read_predictions,
)


def small_table() -> PredictionTable:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    return PredictionTable.of(
        ("neu", "hap", "ang"), 2, "fold1", ["a", "b"], ["F1", "M1"], [4, 9], [0, 2], [0, 2], probs
    )


def test_a_table_reads_back_as_written(tmp_path: Path) -> None:
    other = replace(small_table(), fold=np.array(["f2", "f2"]))
    table = concat([small_table(), other], ("neu", "hap", "ang"))
    path = tmp_path / PREDICTIONS
    path.write_text(predictions_csv(table))
    back = read_predictions(path)
    assert back.classes == table.classes and back.runs() == [(2, "fold1"), (2, "f2")]
    for column in ("seed", "fold", "utt_id", "speaker", "row", "gold", "pred", "probs"):
        assert (getattr(back, column) == getattr(table, column)).all()
    empty = concat([], table.classes)
    path.write_text(predictions_csv(empty))
    assert len(read_predictions(path)) == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("utt,label\n", "not a predictions file"),
        ("seed,fold,utt_id,speaker,row,gold,pred,p_neu\n0,f,a,s,1,neu,sad,1.0\n", "a class"),
        ("seed,fold,utt_id,speaker,row,gold,pred,p_neu\n0,f,a,s,1,neu\n", "line 2 has 6 cells"),
        ("seed,fold,utt_id,speaker,row,gold,pred,p_neu\nx,f,a,s,1,neu,neu,1\n", "invalid"),
    ],
)
def test_a_damaged_file_is_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / PREDICTIONS
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem) as error:
        read_predictions(path)
    assert str(path) in str(error.value)
