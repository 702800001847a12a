"""Metrics against hand-computed cases, absent classes included."""

from __future__ import annotations

import doctest
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

import ser.heads.metrics
from ser.heads.metrics import (
    Metrics,
    compute_metrics,
    mean_std,
    mean_std_text,
    overall_metrics,
    summarize,
    ua_wa,
)

CLASSES3 = ["neu", "hap", "sad"]


def _metrics(y_true: list[int], y_pred: list[int], classes: list[str]) -> Metrics:
    # No warning may escape (a log full of them would hide real problems).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compute_metrics(np.array(y_true), np.array(y_pred), classes)


def test_hand_computed_three_classes() -> None:
    m = _metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], CLASSES3)
    # recalls 2/3, 1/2, 1/1; precisions 2/2, 1/2, 1/2; F1 0.8, 0.5, 2/3
    assert m.wa == pytest.approx(100 * 4 / 6)
    assert m.ua == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3)
    assert m.f1 == pytest.approx(100 * (0.8 + 0.5 + 2 / 3) / 3)
    assert m.wf1 == pytest.approx(100 * (3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)  # by support
    assert m.per_class_recall == pytest.approx({"neu": 200 / 3, "hap": 50.0, "sad": 100.0})
    assert m.confusion == ((2, 1, 0), (0, 1, 1), (0, 0, 1))
    assert m.n == 6


def test_class_absent_from_predictions_scores_zero_recall_and_f1() -> None:
    m = _metrics([0, 0, 1, 1], [0, 0, 0, 0], ["neu", "hap"])
    assert m.wa == 50.0
    assert m.per_class_recall == {"neu": 100.0, "hap": 0.0}
    assert m.ua == 50.0  # hap is in the truth, so its 0 recall counts
    # neu: precision 1/2, recall 1 -> F1 2/3; hap: F1 0 (zero_division=0)
    assert m.f1 == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert m.confusion == ((2, 0), (2, 0))


def test_class_absent_from_truth_is_left_out_of_ua_and_f1() -> None:
    m = _metrics([0, 0, 1, 1], [0, 2, 1, 1], CLASSES3)
    assert m.wa == 75.0
    assert m.per_class_recall["neu"] == 50.0 and m.per_class_recall["hap"] == 100.0
    assert math.isnan(m.per_class_recall["sad"])
    assert m.ua == 75.0  # mean over neu and hap only
    # neu: precision 1, recall 1/2 -> 2/3; hap: 1; sad (not in truth) not averaged
    assert m.f1 == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert m.confusion == ((1, 0, 1), (0, 2, 0), (0, 0, 0))


def test_class_absent_everywhere_keeps_its_row_and_column() -> None:
    m = _metrics([0, 1], [0, 1], ["neu", "hap", "sad", "ang"])
    assert m.confusion == ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0))
    assert m.ua == 100.0 and m.f1 == 100.0 and m.wa == 100.0


def test_to_json_is_strict_json_and_round_trips() -> None:
    m = _metrics([0, 0, 1, 1], [0, 2, 1, 1], CLASSES3)
    d = m.to_json()
    assert d["per_class_recall"]["sad"] is None
    text = json.dumps(d, allow_nan=False)
    back = Metrics.from_json(json.loads(text))
    assert back.wa == m.wa and back.ua == m.ua and back.f1 == m.f1 and back.wf1 == m.wf1
    assert back.confusion == m.confusion and back.n == m.n and back.to_json() == d
    # a record written before WF1 was kept: computed from its confusion, exactly
    older = Metrics.from_json({k: v for k, v in d.items() if k != "wf1"})
    assert older.wf1 == m.wf1 and "wf1" not in older.to_json()  # written back as read
    assert math.isnan(back.per_class_recall["sad"])
    assert back.per_class_recall["neu"] == 50.0


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [([0, 1], [0]), ([], []), ([0, 3], [0, 1]), ([0, 1], [0, -1])],
)
def test_bad_inputs_raise(y_true: list[int], y_pred: list[int]) -> None:
    with pytest.raises(ValueError):
        compute_metrics(np.array(y_true, dtype=int), np.array(y_pred, dtype=int), CLASSES3)


def test_overall_metrics_equal_metrics_of_concatenated_predictions() -> None:
    a_true, a_pred = [0, 0, 1, 2], [0, 1, 1, 2]
    b_true, b_pred = [1, 1, 2, 2, 0], [1, 2, 2, 0, 0]
    overall = overall_metrics(
        [_metrics(a_true, a_pred, CLASSES3), _metrics(b_true, b_pred, CLASSES3)], CLASSES3
    )
    direct = _metrics(a_true + b_true, a_pred + b_pred, CLASSES3)
    assert overall == direct
    assert overall.n == 9


def test_mean_std_uses_sample_std() -> None:
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt(5 / 3))  # ddof=1: 5 / (4 - 1)
    assert mean_std([7.0]) == (7.0, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


def _with_scores(wa: float, ua: float, f1: float) -> Metrics:
    return Metrics(wa, ua, f1, {}, (), 1, f1 - 1)


def test_summary_over_seeds_averages_folds_first() -> None:
    results = [
        (0, _with_scores(60, 50, 40)), (0, _with_scores(80, 70, 60)),  # seed 0: 70, 60, 50
        (1, _with_scores(70, 70, 70)), (1, _with_scores(74, 70, 50)),  # seed 1: 72, 70, 60
    ]  # fmt: skip
    s = summarize(results)
    assert s["seeds"] == 2 and s["std_over"] == "seeds" and s["n"] == 2
    assert s["wa"] == 71.0 and s["wa_std"] == pytest.approx(math.sqrt(2))
    assert s["ua"] == 65.0 and s["ua_std"] == pytest.approx(math.sqrt(50))
    assert s["f1"] == 55.0 and s["f1_std"] == pytest.approx(math.sqrt(50))
    assert s["wf1"] == 54.0 and s["wf1_std"] == pytest.approx(math.sqrt(50))


def test_summary_of_one_seed_takes_std_over_folds() -> None:
    s = summarize([(3, _with_scores(60, 50, 40)), (3, _with_scores(80, 70, 60))])
    assert s["seeds"] == 1 and s["std_over"] == "folds" and s["n"] == 2
    assert s["wa"] == 70.0 and s["wa_std"] == pytest.approx(math.sqrt(200))


def test_one_seed_of_one_fold_is_n_1_and_reads_without_a_spread() -> None:
    s = summarize([(0, _with_scores(60, 50, 40))])
    assert s["seeds"] == 1 and s["n"] == 1 and s["ua_std"] == 0.0
    assert mean_std_text(s["ua"], s["ua_std"], s["n"]) == "50.00 (n = 1)"
    assert mean_std_text(65.0, math.sqrt(50), 2) == "65.00 ± 7.07"


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.heads.metrics).failed == 0


CLASSES5 = ["neu", "hap", "sad", "ang", "exc"]


def _random_predictions(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to 400 predictions of 5 classes. Odd seeds: the last class is never in the
    truth; seeds 4 and up: class 1 is never predicted."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, len(CLASSES5) - (seed % 2), size=int(rng.integers(1, 400)))
    y_pred = rng.integers(0, len(CLASSES5), size=len(y_true))
    if seed >= 4:
        y_pred[y_pred == 1] = 0
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(8))
def test_ua_wa_equals_compute_metrics_exactly(seed: int) -> None:
    y_true, y_pred = _random_predictions(seed)
    full = compute_metrics(y_true, y_pred, CLASSES5)
    assert ua_wa(y_true, y_pred, len(CLASSES5)) == (full.ua, full.wa)


def test_ua_wa_refuses_no_predictions() -> None:
    with pytest.raises(ValueError, match="no predictions"):
        ua_wa(np.array([], dtype=int), np.array([], dtype=int), 4)


@pytest.mark.parametrize("seed", range(8))
def test_scores_equal_sklearns_definitions(seed: int) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    y_true, y_pred = _random_predictions(seed)
    m = compute_metrics(y_true, y_pred, CLASSES5)
    present = sorted(set(y_true.tolist()))
    labels = list(range(len(CLASSES5)))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    f1 = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    wf1 = f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)
    assert m.wa == pytest.approx(100 * accuracy_score(y_true, y_pred), abs=1e-12)
    assert m.ua == pytest.approx(100 * recall[present].mean(), abs=1e-12)
    assert m.f1 == pytest.approx(100 * f1, abs=1e-12)
    assert m.wf1 == pytest.approx(100 * wf1, abs=1e-12)
    assert m.confusion == tuple(map(tuple, confusion_matrix(y_true, y_pred, labels=labels)))
    for i in present:
        assert list(m.per_class_recall.values())[i] == pytest.approx(100 * recall[i], abs=1e-12)


@pytest.mark.slow
def test_training_path_does_not_import_sklearn() -> None:
    # sklearn takes ~1 s to import: `ser train` with a session protocol must not pay it.
    code = "import sys, ser.commands.train, ser.train.recipe; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scores_equal_themselves_read_back_from_json() -> None:
    """A class absent from the truth has NaN recall: read back, the scores still compare
    equal (a resumed run's folds equal those it trained)."""
    m = _metrics([0, 0, 1, 1], [0, 2, 1, 1], CLASSES3)
    assert math.isnan(m.per_class_recall["sad"])
    assert Metrics.from_json(json.loads(json.dumps(m.to_json()))) == m
