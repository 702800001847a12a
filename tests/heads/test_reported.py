"""What ser report reads of a head: how its scores' keys read as column headers."""

from __future__ import annotations

import doctest

import pytest

import ser.heads.reported
from ser.heads.reported import shown


@pytest.mark.parametrize(
    ("key", "header"),
    [
        ("sentiment_wf1", "sentiment WF1"),
        ("multilabel_micro_f1", "multilabel micro F1"),
        ("multilabel_map", "multilabel mAP"),
        # a short word that is not an abbreviation (an emotion's name) stays as it is
        ("emotions_wa_sad", "emotions WA sad"),
        ("emotions_f1_fear", "emotions F1 fear"),
        ("sentiment-score_acc7", "sentiment-score Acc-7"),
        ("sentiment-score_mae", "sentiment-score MAE"),
    ],
)
def test_a_scores_key_reads_as_its_header(key: str, header: str) -> None:
    assert shown(key) == header


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.heads.reported).failed == 0
