"""CMU-MOSI's and CMU-MOSEI's sentiment score as a head: the field's metrics against the
published evaluation's steps (MulT's `eval_mosei_senti`) written out again in plain numpy,
folds pooled exactly, and `ser train --target
sentiment-score` end to end on the synthetic CMU-MOSEI corpus (record, predictions.csv,
`ser report`, `ser predict`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from ser.heads.sentiment_score import SCORES, SentimentScoreHead
from tests.heads.conftest import ser

PERCENT = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7")


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


def _draw(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = np.round(rng.uniform(-3, 3, n) * 3) / 3
    gold[: n // 10] = 0.0
    return gold + rng.normal(0, 1.0, n), gold


@pytest.mark.parametrize("seed", [0, 1])
def test_the_heads_metrics_are_the_fields_and_pool_exactly(seed: int) -> None:
    head = SentimentScoreHead()
    pred, gold = _draw(seed, 120)
    got = head.metrics(pred[:, None], gold[:, None], ())
    want = _reference(pred, gold)
    for key in SCORES:
        scale = 100 if key in PERCENT else 1
        assert got[key] == pytest.approx(scale * want[key], rel=1e-9), key
    folds = [head.metrics(pred[a:b, None], gold[a:b, None], ()) for a, b in ((0, 50), (50, 120))]
    pooled = head.pool(folds)
    for key in SCORES:
        assert pooled[key] == pytest.approx(got[key], rel=1e-9), key
    assert head.score(got) == -got["mae"]


@pytest.mark.slow
def test_sentiment_score_trains_reports_and_predicts(mosei_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, shown = ser("train", "--store", mosei_store, "--features", "logmel",
                      "--fusion", "none", "--epochs", "3", "--batch-size", "8", "--out", out,
                      "--target", "emotion+sentiment-score", "--name", "run")  # fmt: skip
    assert code == 0, shown
    record = json.loads((out / "run" / "run.json").read_text())
    assert record["protocol"] == "standard"
    (fold,) = record["folds"]
    scores = fold["heads"]["sentiment-score"]
    assert scores["n"] == fold["sizes"]["test"] and scores["mae"] >= 0
    assert record["summary"]["sentiment-score_mae"] == pytest.approx(scores["mae"])
    rows = list(csv.DictReader((out / "run" / "predictions.csv").open()))
    assert len(rows) == fold["sizes"]["test"]
    assert all(float(r["sentiment-score_gold"]) == float(r["sentiment-score_gold"]) for r in rows)
    code, shown = ser("report", out / "run", "--format", "csv")
    assert code == 0, shown
    (table,) = csv.DictReader(io.StringIO(shown[shown.index("run,") :]))
    assert float(table["mean_sentiment-score_mae"]) == round(scores["mae"], 2)
    wav = next((mosei_store.parent / "mosei").rglob("*.wav"))
    code, shown = ser("predict", "--run", out / "run", wav, "--json")
    assert code == 0, shown
    (made,) = json.loads(shown[shown.index("{") :])["predictions"]
    assert isinstance(made["heads"]["sentiment-score"], float)
