"""MELD's sentiment as a head beside the emotion, end to end on the synthetic MELD corpus:
`ser train --target emotion+sentiment`, its record and predictions.csv, `ser report`'s
columns, `ser predict`'s fields; and a store without sentiment refused in one line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from ser.commands.train import summary_table
from ser.heads.sentiment import CLASSES
from ser.runs.record import read
from tests.heads.conftest import ser

TRAIN = ("--features", "logmel", "--fusion", "none", "--epochs", "2", "--batch-size", "8")


@pytest.mark.slow
def test_emotion_and_sentiment_train_report_and_predict(meld_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, shown = ser("train", "--store", meld_store, *TRAIN, "--out", out,
                      "--target", "emotion+sentiment", "--json")  # fmt: skip
    assert code == 0, shown
    said = json.loads(shown.strip().splitlines()[-1])
    run = out / "logmel_none_official_c4_target-emotion+sentiment"
    record = json.loads((run / "run.json").read_text())
    assert record["config"]["target"] == "emotion+sentiment"
    (fold,) = record["folds"]
    scores = fold["heads"]["sentiment"]  # its test metrics beside the category's
    assert {"wa", "ua", "f1", "wf1", "confusion"} <= set(scores) and fold["metrics"]["ua"] >= 0
    assert np.sum(scores["confusion"]) == scores["n"] == fold["sizes"]["test"]
    assert record["summary"]["sentiment_wf1"] == scores["wf1"] == said["sentiment_wf1"]
    assert f"sentiment WF1 {scores['wf1']:.2f}" in shown  # the fold's line
    table = summary_table(read(run / "run.json"))  # what `ser train` prints without --json
    column = next(c for c in table.columns if c.header == "sentiment WF1")
    wf1 = f"{scores['wf1']:.2f}"
    assert list(column.cells) == [wf1, f"{wf1} (n = 1)", wf1]  # the fold, the mean, pooled
    assert len(fold["curves"]["val_heads"]["val_sentiment"]) == 2
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert len(rows) == fold["sizes"]["test"]
    assert {r["sentiment_gold"] for r in rows} <= set(CLASSES)
    sums = [sum(float(r[f"sentiment_{c}"]) for c in CLASSES) for r in rows]
    assert np.allclose(sums, 1.0, atol=1e-4)
    code, shown = ser("report", run, "--format", "csv")
    assert code == 0, shown
    (table,) = csv.DictReader(io.StringIO(shown[shown.index("run,") :]))
    assert float(table["mean_sentiment_wf1"]) == round(scores["wf1"], 2)
    assert float(table["pooled_sentiment_ua"]) == round(scores["ua"], 2)
    code, shown = ser("report", run, "--plots", tmp_path / "plots")
    assert code == 0, shown
    assert (tmp_path / "plots" / f"{run.name}_sentiment.png").stat().st_size > 1000
    code, shown = ser("claims", "--fused", run, "--single", run, "--metric", "sentiment_wf1")
    assert code == 0 and "on these runs: sentiment WF1" in shown, shown
    assert f"{scores['wf1']:.2f} (n = 1)" in shown
    wav = next((meld_store.parent / "meld").rglob("*.wav"))
    code, shown = ser("predict", "--run", run, wav, "--json", "--csv", tmp_path / "p.csv")
    assert code == 0, shown
    (made,) = json.loads(shown[shown.index("{") :])["predictions"]
    assert made["heads"]["sentiment"] in CLASSES and made["label"] in ("neu", "hap", "sad", "ang")
    assert set(made["heads"]["sentiment_probs"]) == set(CLASSES)
    (line,) = csv.DictReader((tmp_path / "p.csv").open())
    assert line["sentiment"] == made["heads"]["sentiment"]


def test_a_store_without_sentiment_is_refused_in_one_line(tmp_path: Path) -> None:
    from tests.stores import corpus_store

    store = corpus_store(tmp_path / "c.zarr", "crema-d", ["neu", "hap", "sad", "ang"] * 6)
    code, shown = ser("train", "--store", store.path, "--features", "is13", "--fusion", "none",
                      "--target", "emotion+sentiment", "--out", tmp_path / "runs")  # fmt: skip
    assert code != 0 and "Traceback" not in shown
    assert "has no sentiment column (MELD's stores have one)" in shown
