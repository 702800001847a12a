"""CMU-MOSEI's six emotions as a head: presence and intensity training, the MOSEI
literature's per-emotion weighted accuracy and weighted F1 against hand-computed values,
sklearn and the published formula, folds pooled exactly, stores without the intensities
refused, and `ser train --target sentiment+emotions` end to end on the synthetic
CMU-MOSEI corpus (record, predictions.csv, `ser report`, `ser predict`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

import ser.heads.emotion_intensities
from ser.corpus.labels import get_label_set
from ser.errors import ConfigError
from ser.heads.base import GoldSource
from ser.heads.emotion_intensities import EMOTIONS, EmotionIntensitiesHead
from tests.heads.conftest import Manifest
from tests.heads.conftest import ser as run_ser


def _example() -> tuple[np.ndarray, np.ndarray]:
    """Six segments: happy present in two (one found, one missed, one false alarm);
    sad, surprise, disgust, fear absent everywhere and never predicted; anger present
    everywhere and always predicted."""
    gold = np.zeros((6, 6))
    gold[:2, 0] = [1.0, 1 / 3]
    gold[:, 2] = 2.0
    pred = np.full((6, 6), 0.1)
    pred[:, 0] = [0.9, 0.4, 0.6, 0.2, 0.1, 0.3]
    pred[:, 2] = 0.9
    return pred, gold


def test_wa_and_f1_against_hand_computed_values() -> None:
    pred, gold = _example()
    m = EmotionIntensitiesHead().metrics(pred, gold, EMOTIONS)
    # happy: P = 2, N = 4; TP = 1, FN = 1, FP = 1, TN = 3
    assert m["wa"]["happy"] == pytest.approx(100 * (1 * 4 / 2 + 3) / (2 * 4))  # 62.5
    # F1 present 2/4, absent 6/8, weighted by support 2 and 4: 2/3
    assert m["f1"]["happy"] == pytest.approx(100 * (2 * 0.5 + 4 * 0.75) / 6)
    # one side without segments: the other's recall alone; F1 of the side there is
    assert m["wa"]["sad"] == m["f1"]["sad"] == m["wa"]["anger"] == m["f1"]["anger"] == 100.0
    assert m["wa_mean"] == pytest.approx((62.5 + 5 * 100) / 6)
    assert m["f1_mean"] == pytest.approx((200 / 3 + 5 * 100) / 6)
    assert (m["tp"][0], m["fp"][0], m["fn"][0], m["tn"][0], m["n"]) == (1, 1, 1, 3, 6)
    assert EmotionIntensitiesHead().score(m) == m["wa_mean"]


def _mosei_wa(pred: np.ndarray, truth: np.ndarray) -> float:
    """The MOSEI literature's weighted accuracy, as its evaluation writes it."""
    tp = tn = p = n = 0
    for y, t in zip(pred, truth, strict=True):
        if t == 0:
            n += 1
            tn += int(y == 0)
        else:
            p += 1
            tp += int(y == 1)
    return (tp * n / p + tn) / (2 * n)


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_are_the_literatures_and_pool_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = np.round(rng.uniform(0, 3, (80, 6)) * 3) / 3 * (rng.random((80, 6)) < 0.3)
    pred = np.clip((gold > 0) * 0.4 + rng.random((80, 6)) * 0.6, 0, 1)
    head = EmotionIntensitiesHead()
    m = head.metrics(pred, gold, EMOTIONS)
    for i, emotion in enumerate(EMOTIONS):
        chosen, truth = (pred[:, i] > 0.5).astype(int), (gold[:, i] > 0).astype(int)
        assert m["wa"][emotion] == pytest.approx(100 * _mosei_wa(chosen, truth))
        assert m["wa"][emotion] == pytest.approx(100 * balanced_accuracy_score(truth, chosen))
        f1 = f1_score(truth, chosen, average="weighted")
        assert m["f1"][emotion] == pytest.approx(100 * f1)
    folds = [head.metrics(pred[a:b], gold[a:b], EMOTIONS) for a, b in ((0, 30), (30, 80))]
    pooled = head.pool(json.loads(json.dumps(folds)))  # as a record keeps them
    flat, whole = head.flat(pooled), head.flat(m)
    assert flat == pytest.approx(whole) and pooled["n"] == 80
    assert sorted(flat) == sorted(
        [f"emotions_{k}_mean" for k in ("wa", "f1")]
        + [f"emotions_{k}_{e}" for k in ("wa", "f1") for e in EMOTIONS]
    )


def test_an_intensity_counts_as_presence_above_a_sixth() -> None:
    """A regressor's intensity: present above 1/6, halfway to the weakest gold (1/3)."""
    head, gold = EmotionIntensitiesHead("intensity"), np.zeros((2, 6))
    gold[0] = 1 / 3
    pred = np.array([[0.2] * 6, [0.1] * 6])
    m = head.metrics(pred, gold, EMOTIONS)
    assert m["tp"] == [1] * 6 and m["tn"] == [1] * 6 and m["wa_mean"] == 100.0
    assert EmotionIntensitiesHead().metrics(pred, gold, EMOTIONS)["tp"] == [0] * 6
    assert head.predict(torch.tensor([[-1.0, 4.0, 1.5, 0, 0, 0]]))[0, :3].tolist() == [0, 3, 1.5]
    assert head.fields(pred[0], EMOTIONS)["emotions"] == ";".join(EMOTIONS)
    assert head.fields(pred[1], EMOTIONS)["emotions_intensities"]["fear"] == 0.1


def test_the_losses_leave_out_items_without_gold_under_vmap() -> None:
    nan = float("nan")
    out = torch.zeros(2, 2, 6)  # [K, B, 6]
    gold = torch.tensor([[[1.0] * 6, [nan] * 6], [[nan] * 6, [0.0] * 3 + [3.0] * 3]])
    presence = torch.func.vmap(EmotionIntensitiesHead().loss)(out, gold)
    assert presence.tolist() == pytest.approx([np.log(2)] * 2, rel=1e-6)  # a logit of 0
    intensity = torch.func.vmap(EmotionIntensitiesHead("intensity").loss)(out, gold)
    assert intensity.tolist() == pytest.approx([1.0, 1.5])


def test_a_store_without_the_six_intensities_is_refused_naming_it() -> None:
    label_set = get_label_set("4")
    mosi = SimpleNamespace(manifest=Manifest(sentiment=[1.0, -2.0]), path=Path("mosi.zarr"))
    with pytest.raises(ConfigError) as refused:
        EmotionIntensitiesHead().gold(GoldSource(mosi, label_set))
    assert "mosi.zarr" in str(refused.value)
    assert "happy, sad, anger, surprise, disgust, fear" in str(refused.value)
    columns = {e: [0.0, 1.0] for e in EMOTIONS}
    mosei = SimpleNamespace(manifest=Manifest(**columns, sentiment=[1.0, -2.0]))
    found = EmotionIntensitiesHead().gold(GoldSource(mosei, label_set))
    assert found.shape == (2, 6) and found[1].tolist() == [1.0] * 6


def test_an_unknown_way_to_train_is_refused() -> None:
    with pytest.raises(ConfigError, match="--emotions-as 'median'"):
        EmotionIntensitiesHead("median")


def test_docstring_examples_run() -> None:
    import doctest

    assert doctest.testmod(ser.heads.emotion_intensities).failed == 0


def test_sentiment_and_emotions_train_report_and_predict(mosei_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, shown = run_ser("train", "--store", mosei_store, "--features", "logmel", "--fusion",
                          "none", "--epochs", "2", "--batch-size", "8", "--out", out,
                          "--target", "sentiment+emotions", "--name", "run")  # fmt: skip
    assert code == 0, shown
    record = json.loads((out / "run" / "run.json").read_text())
    # `sentiment` on CMU-MOSEI is the score: the record names the head it resolved to
    assert record["config"]["target"] == "sentiment-score+emotions"
    assert record["config"]["emotions_as"] == "presence"
    (fold,) = record["folds"]
    scores = fold["heads"]["emotions"]
    assert scores["n"] == fold["sizes"]["test"] and set(scores["wa"]) == set(EMOTIONS)
    assert "sentiment-score" in fold["heads"]
    assert record["summary"]["emotions_wa_mean"] == pytest.approx(scores["wa_mean"])
    rows = list(csv.DictReader((out / "run" / "predictions.csv").open()))
    assert len(rows) == fold["sizes"]["test"]
    for emotion in EMOTIONS:
        assert all(0 <= float(r[f"emotions_{emotion}"]) <= 1 for r in rows)
        assert all(0 <= float(r[f"emotions_{emotion}_gold"]) <= 3 for r in rows)
    assert "sentiment-score_gold" in rows[0]
    code, shown = run_ser("report", out / "run", "--format", "csv")
    assert code == 0, shown
    (table,) = csv.DictReader(io.StringIO(shown[shown.index("run,") :]))
    assert float(table["mean_emotions_wa_mean"]) == round(scores["wa_mean"], 2)
    assert float(table["pooled_emotions_f1_happy"]) == round(scores["f1"]["happy"], 2)
    assert "mean_sentiment-score_acc2_has0" in table
    wav = next(mosei_store.parent.rglob("*.wav"))
    code, shown = run_ser("predict", "--run", out / "run", wav, "--json")
    assert code == 0, shown
    (made,) = json.loads(shown[shown.index("{") :])["predictions"]
    probs = made["heads"]["emotions_probs"]
    assert list(probs) == list(EMOTIONS) and isinstance(made["heads"]["sentiment-score"], float)
    assert made["heads"]["emotions"] == ";".join(e for e, p in probs.items() if p > 0.5)


def test_intensities_train_as_asked_and_are_recorded(mosei_store: Path, tmp_path: Path) -> None:
    code, shown = run_ser("train", "--store", mosei_store, "--features", "logmel", "--fusion",
                          "none", "--epochs", "1", "--batch-size", "8", "--out", tmp_path,
                          "--target", "emotions", "--emotions-as", "intensity")  # fmt: skip
    assert code == 0, shown
    (run,) = tmp_path.glob("*_target-emotions_emotions-as-intensity")
    record = json.loads((run / "run.json").read_text())
    assert record["config"]["target"] == "emotions"
    assert record["config"]["emotions_as"] == "intensity"
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert all(0 <= float(r["emotions_fear"]) <= 3 for r in rows)
    code, shown = run_ser("predict", "--run", run, next(mosei_store.parent.rglob("*.wav")),
                          "--json")  # fmt: skip
    assert code == 0, shown
    (made,) = json.loads(shown[shown.index("{") :])["predictions"]
    assert list(made["heads"]["emotions_intensities"]) == list(EMOTIONS)


def test_a_store_without_intensities_is_refused_in_one_line(
    meld_store: Path, tmp_path: Path
) -> None:
    code, shown = run_ser("train", "--store", meld_store, "--features", "logmel", "--fusion",
                          "none", "--target", "emotion+emotions", "--out", tmp_path)  # fmt: skip
    assert code != 0 and "Traceback" not in shown
    assert f"the manifest of {meld_store} has no intensities of happy, sad, anger" in shown
