"""predictions.csv: a run's per-utterance test predictions, written and read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.errors import ConfigError
from ser.runs.predictions import (
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


def attribute_table(classes: tuple[str, ...] = ("neu", "ang")) -> PredictionTable:
    """Two utterances with arousal and valence, the second without gold valence."""
    gold, pred = (np.array([0, 1]), np.array([0, 0])) if classes else (-np.ones(2),) * 2
    return PredictionTable.of(
        classes, 0, "fold1", ["a", "b"], ["F1", "M1"], [4, 9], gold, pred,
        np.eye(len(classes))[[0, 0]] if classes else np.zeros((2, 0)),
        ("arousal", "valence"),
        np.array([[2.5, 3.0], [4.0, np.nan]]),
        np.array([[2.75, 3.5], [3.25, 2.0]]),
    )  # fmt: skip


def test_attribute_columns_follow_the_probabilities_and_read_back(tmp_path: Path) -> None:
    text = predictions_csv(attribute_table())
    assert text.splitlines() == [
        "seed,fold,utt_id,speaker,row,gold,pred,p_neu,p_ang,"
        "gold_arousal,pred_arousal,gold_valence,pred_valence",
        "0,fold1,a,F1,4,neu,neu,1.000000,0.000000,2.500000,2.750000,3.000000,3.500000",
        "0,fold1,b,M1,9,ang,neu,1.000000,0.000000,4.000000,3.250000,,2.000000",
    ]
    path = tmp_path / PREDICTIONS
    path.write_text(text)
    back = read_predictions(path)
    assert back.attributes == ("arousal", "valence") and back.classes == ("neu", "ang")
    np.testing.assert_array_equal(back.attr_gold, attribute_table().attr_gold)
    np.testing.assert_array_equal(back.attr_pred, attribute_table().attr_pred)
    both = concat([back, back.take(np.array([1]))], back.classes)
    assert both.attr_gold.shape == (3, 2) and np.isnan(both.attr_gold[2, 1])


def test_a_run_without_classes_leaves_gold_and_pred_empty(tmp_path: Path) -> None:
    text = predictions_csv(attribute_table(()))
    assert text.splitlines()[:2] == [
        "seed,fold,utt_id,speaker,row,gold,pred,gold_arousal,pred_arousal,gold_valence,pred_valence",
        "0,fold1,a,F1,4,,,2.500000,2.750000,3.000000,3.500000",
    ]
    path = tmp_path / PREDICTIONS
    path.write_text(text)
    back = read_predictions(path)
    assert back.classes == () and (back.gold == -1).all() and back.probs.shape == (2, 0)
    assert back.attr_pred[1].tolist() == [3.25, 2.0]


def test_a_table_without_attributes_has_empty_attribute_arrays() -> None:
    table = small_table()
    assert table.attributes == () and table.attr_gold.shape == (2, 0)
    with pytest.raises(ValueError, match="different attributes"):
        concat([table, attribute_table(("neu", "hap", "ang"))], table.classes)


def test_attribute_columns_out_of_pairs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / PREDICTIONS
    path.write_text("seed,fold,utt_id,speaker,row,gold,pred,p_neu,gold_arousal\n")
    with pytest.raises(ConfigError, match="not a predictions file"):
        read_predictions(path)


def test_further_heads_columns_come_last_and_read_back(tmp_path: Path) -> None:
    probs = np.array([[0.7, 0.3], [0.4, 0.6]])
    cells = [["negative", "0.9", "0.1"], ["", "0.2", "0.8"]]
    further = ("sentiment_gold", "sentiment_negative", "sentiment_positive")
    table = PredictionTable.of(("neu", "ang"), 0, "f1", ["a", "b"], ["F1", "M1"], [4, 9],
                               [0, 1], [0, 1], probs, further=further, cells=cells)  # fmt: skip
    text = predictions_csv(table)
    assert text.splitlines()[0].endswith(
        ",p_ang,sentiment_gold,sentiment_negative,sentiment_positive"
    )
    assert text.splitlines()[2].endswith(",0.400000,0.600000,,0.2,0.8")
    path = tmp_path / PREDICTIONS
    path.write_text(text)
    back = read_predictions(path)
    assert back.further == further and back.cells.tolist() == cells
    both = concat([back, back.take(np.array([1]))], back.classes)
    assert both.cells.shape == (3, 3) and predictions_csv(both).count("\n") == 4
    with pytest.raises(ValueError, match="different attributes or heads"):
        concat([back, replace(back, further=())], back.classes)
