"""The sentiment field's metrics against their definitions written out again: the
published evaluation's steps (MulT's `eval_mosei_senti`) in plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from ser.heads.score_metrics import emotion_metrics, sentiment_metrics


def _reference(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    non_zeros = np.array([i for i, e in enumerate(gold) if e != 0])
    clipped = np.clip(pred, -3.0, 3.0), np.clip(gold, -3.0, 3.0)
    return {
        "mae": float(np.mean(np.absolute(pred - gold))),
        "corr": float(np.corrcoef(pred, gold)[0][1]),
        "acc7": float(np.sum(np.round(clipped[0]) == np.round(clipped[1])) / len(gold)),
        "acc2_non0": accuracy_score(gold[non_zeros] > 0, pred[non_zeros] > 0),
        "f1_non0": f1_score(gold[non_zeros] > 0, pred[non_zeros] > 0, average="weighted"),
        "acc2_has0": accuracy_score(gold >= 0, pred >= 0),
        "f1_has0": f1_score(gold >= 0, pred >= 0, average="weighted"),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sentiment_metrics_are_the_published_evaluations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = np.round(rng.uniform(-3, 3, 200) * 3) / 3  # the mean of three raters
    gold[:20] = 0.0
    pred = gold + rng.normal(0, 1.2, 200) + 0.3 * rng.standard_t(2, 200)  # beyond ±3 too
    got, want = sentiment_metrics(pred, gold), _reference(pred, gold)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["acc2_non0"] != got["acc2_has0"]  # the conventions differ on this data


def test_degenerate_sides_give_nan_not_an_error() -> None:
    zeros = np.zeros(4)
    m = sentiment_metrics(np.array([0.1, -0.2, 0.3, 0.0]), zeros)
    assert np.isnan(m["acc2_non0"]) and np.isnan(m["corr"]) and m["acc2_has0"] == 0.75
    with pytest.raises(ValueError, match=r"\[N\] and \[N\]"):
        sentiment_metrics(np.zeros(3), np.zeros(4))


def test_emotion_presence_weighted_accuracy_and_f1() -> None:
    gold = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [1.3, 0.6]])
    pred = np.array([[0.2, 0.5], [1.0, -0.1], [-0.3, 0.4], [0.0, 0.0]])
    m = emotion_metrics(pred, gold, ("happy", "sad"))
    # happy: present 2 (1 found), absent 2 (1 right): WA (1/2 + 1/2) / 2
    assert m["happy"]["wa"] == pytest.approx(0.5)
    # sad: present 2 (1 found), absent 2 (1 right)
    assert m["sad"]["wa"] == pytest.approx(0.5)
    assert m["happy"]["f1"] == pytest.approx(
        f1_score(gold[:, 0] > 0, pred[:, 0] > 0, average="weighted")
    )
    assert np.isnan(emotion_metrics(pred, np.zeros_like(gold), ("a", "b"))["a"]["wa"])
