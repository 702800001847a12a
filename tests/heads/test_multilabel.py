"""The multi-label head: its gold from the annotators' votes, its loss under `vmap`, its
metrics against sklearn's, and `--target emotion+multilabel` end to end on the synthetic
MSP-Podcast corpus (train, record, predictions.csv, report, `ser predict`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score

import ser.heads.multilabel
from ser.corpus.labels import get_label_set
from ser.heads.multilabel import MultiLabelHead, label_loss, present
from tests.heads.conftest import ser as run_ser


def test_a_class_is_present_above_its_share_of_the_votes_and_the_consensus_always() -> None:
    four = get_label_set("4")  # neu hap sad ang (exc merged into hap)
    votes = [("E1", "ang"), ("E2", "ang"), ("E3", "sad"), ("E4", "fru"), ("E5", "neu")]
    assert present(votes, "ang", four).tolist() == [0.0, 0.0, 0.0, 1.0]  # sad: 1/4 < 1/3
    votes += [("E6", "sad")]  # now 2 of 5 inside
    assert present(votes, "neu", four).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert np.isnan(present(votes, "fru", four)).all()  # outside the class set


def test_the_loss_leaves_out_items_without_gold_under_vmap() -> None:
    out = torch.tensor([[[4.0, -4.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]])  # [K, B, C]
    nan = float("nan")
    gold = torch.tensor([[[1.0, 0.0], [nan, nan]], [[nan, nan], [1.0, 0.0]]])
    losses = torch.func.vmap(label_loss)(out, gold)
    expected = [np.log1p(np.exp(-4.0)), (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(1.0))) / 2]
    assert losses.tolist() == pytest.approx(expected, rel=1e-5)  # float32


def test_metrics_are_sklearns_and_folds_pool_their_f1_exactly() -> None:
    rng = np.random.default_rng(0)
    gold = (rng.random((40, 4)) < 0.4).astype(float)
    gold[:, 3] = 0  # a class nobody carries
    pred = np.clip(gold * 0.5 + rng.random((40, 4)) * 0.6, 0, 1)
    pred[:, 3] = 0.1  # and nobody predicts: left out of the macro F1, as of the mAP
    head, names = MultiLabelHead(), ("neu", "hap", "sad", "ang")
    m = head.metrics(pred, gold, names)
    chosen = (pred >= 0.5).astype(int)
    assert m["micro_f1"] == pytest.approx(100 * f1_score(gold, chosen, average="micro"))
    seen = [0, 1, 2]
    macro = f1_score(gold, chosen, labels=seen, average="macro", zero_division=0)
    assert m["macro_f1"] == pytest.approx(100 * macro)
    assert m["map"] == pytest.approx(100 * average_precision_score(gold[:, :3], pred[:, :3]))
    parts = [head.metrics(pred[:25], gold[:25], names), head.metrics(pred[25:], gold[25:], names)]
    pooled = head.pool(parts)
    assert pooled["micro_f1"] == pytest.approx(m["micro_f1"]) and pooled["n"] == 40
    assert pooled["macro_f1"] == pytest.approx(m["macro_f1"])


def test_docstring_examples_run() -> None:
    import doctest

    assert doctest.testmod(ser.heads.multilabel).failed == 0


def test_emotion_and_multilabel_train_report_and_predict(msp_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, shown = run_ser("train", "--store", msp_store, "--features", "logmel", "--fusion",
                          "none", "--epochs", "2", "--batch-size", "8", "--out", out,
                          "--target", "emotion+multilabel")  # fmt: skip
    assert code == 0, shown
    run = out / "logmel_none_official_c4_target-emotion+multilabel"
    record = json.loads((run / "run.json").read_text())
    (fold,) = record["folds"]
    scores = fold["heads"]["multilabel"]
    assert scores["n"] == fold["sizes"]["test"] and 0 <= scores["map"] <= 100
    assert record["summary"]["multilabel_map"] == scores["map"]
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    classes = record["classes"]
    for row in rows:  # the consensus class is always among the gold classes
        assert row["gold"] in row["multilabel_gold"].split(";")
        assert all(0 <= float(row[f"multilabel_{c}"]) <= 1 for c in classes)
    code, shown = run_ser("report", run, "--format", "csv")
    assert code == 0, shown
    (table,) = csv.DictReader(io.StringIO(shown[shown.index("run,") :]))
    assert float(table["mean_multilabel_micro_f1"]) == round(scores["micro_f1"], 2)
    code, shown = run_ser("report", run)
    assert code == 0 and "multilabel mAP" in shown, shown
    wav = next((msp_store.parent / "msp").rglob("*.wav"))
    code, shown = run_ser("predict", "--run", run, wav, "--json")
    assert code == 0, shown
    (made,) = json.loads(shown[shown.index("{") :])["predictions"]
    assert set(made["heads"]["multilabel_probs"]) == set(classes)
    chosen = [c for c, p in made["heads"]["multilabel_probs"].items() if p >= 0.5]
    assert made["heads"]["multilabel"] == ";".join(chosen)


def test_a_corpus_without_votes_is_refused_in_one_line(meld_store: Path, tmp_path: Path) -> None:
    code, shown = run_ser("train", "--store", meld_store, "--features", "logmel", "--fusion",
                          "none", "--target", "emotion+multilabel", "--out", tmp_path)  # fmt: skip
    assert code != 0 and "Traceback" not in shown
    assert "reads the annotators' votes" in shown
