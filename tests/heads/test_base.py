"""`Head.table_part`: every head's part of predictions.csv, joined into one table's
fields, as `ser.train.record.fold_predictions` writes them."""

from __future__ import annotations

import numpy as np

from ser.heads.base import Side, TablePart
from ser.heads.targets import Targets
from ser.runs.predictions import PredictionTable, predictions_csv

CLASSES = ("neu", "ang")


def _table(
    targets: Targets, outputs: tuple[np.ndarray, ...], golds: tuple[np.ndarray, ...]
) -> PredictionTable:
    """Two rows of the heads' parts, as `fold_predictions` joins them."""
    classes = CLASSES if targets.category else ()
    decided = (np.array([0, 1]), np.array([1, 1]))
    parts = [
        h.table_part(Side(o, g, h.names(classes), decided))
        for h, o, g in zip(targets.heads, outputs, golds, strict=True)
    ]
    return PredictionTable.of(
        classes, 0, "f1", ["a", "b"], ["F", "M"], [3, 5], **TablePart.joined(parts, 2)
    )


def test_every_heads_part_lands_in_its_columns() -> None:
    targets = Targets.parse("emotion+arousal+sentiment")
    probs = np.array([[0.75, 0.25], [0.5, 0.5]], dtype=np.float32)
    arousal = (np.array([[2.5], [np.nan]]), np.array([[3.0], [1.25]]))
    sentiment = (np.array([[0.0], [2.0]]), np.array([[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]]))
    table = _table(
        targets,
        (probs, arousal[1], sentiment[1]),
        (np.array([[0.0], [1.0]]), arousal[0], sentiment[0]),
    )
    assert predictions_csv(table).splitlines() == [
        "seed,fold,utt_id,speaker,row,gold,pred,p_neu,p_ang,gold_arousal,pred_arousal,"
        "sentiment_gold,sentiment_negative,sentiment_neutral,sentiment_positive",
        "0,f1,a,F,3,neu,ang,0.750000,0.250000,2.500000,3.000000,negative,0.5,0.25,0.25",
        "0,f1,b,M,5,ang,ang,0.500000,0.500000,,1.250000,positive,0,0.5,0.5",
    ]


def test_a_run_without_the_category_leaves_its_columns_empty() -> None:
    table = _table(Targets.parse("valence"), (np.array([[4.0], [2.0]]),), (np.ones((2, 1)),))
    assert (table.gold == -1).all() and table.probs.shape == (2, 0)
    assert table.attributes == ("valence",) and table.attr_pred[:, 0].tolist() == [4.0, 2.0]
    assert table.further == () and table.cells.shape == (2, 0)
