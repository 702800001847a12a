"""ser's scores against EmoBox's EmoEval formulas: its `ComputePerformance` calls sklearn
with default labels (UA balanced_accuracy_score, WA accuracy_score, F1 f1_score macro and
micro), reimplemented here on fixed predictions; the scores ser kept before stay the same."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from ser.heads.metrics import Metrics, compute_metrics, summarize

CLASSES = ["Neutral", "Happy", "Sad", "Angry"]
# Fixed predictions: a balanced test set, one where Angry is never predicted, and one
# where Sad is predicted though no utterance is Sad (sklearn's macro then counts it 0).
CASES = {
    "balanced": ([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], [0, 0, 1, 1, 1, 3, 2, 2, 0, 3, 3, 3]),
    "never predicted": ([0, 1, 2, 3, 3, 3, 0, 1], [0, 1, 2, 0, 1, 2, 0, 0]),
    "predicted, not true": ([0, 0, 1, 1, 3, 3, 3], [0, 2, 1, 2, 3, 3, 0]),
}


def emoeval(ref: list[int], hyp: list[int]) -> dict[str, float]:
    """EmoEval's `ComputePerformance` scores (fractions)."""
    return {
        "overallWA": accuracy_score(ref, hyp),
        "overallUA": balanced_accuracy_score(ref, hyp),
        "overallMicroF1": f1_score(ref, hyp, average="micro"),
        "overallMacroF1": f1_score(ref, hyp, average="macro"),
    }


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("case", CASES)
def test_scores_are_emoevals(case: str) -> None:
    ref, hyp = CASES[case]
    ours = compute_metrics(np.array(ref), np.array(hyp), CLASSES)
    theirs = emoeval(ref, hyp)
    assert ours.wa == pytest.approx(100 * theirs["overallWA"], rel=1e-12)
    assert ours.ua == pytest.approx(100 * theirs["overallUA"], rel=1e-12)
    assert ours.micro_f1 == pytest.approx(100 * theirs["overallMicroF1"], rel=1e-12)
    assert ours.f1_seen == pytest.approx(100 * theirs["overallMacroF1"], rel=1e-12)


def test_f1_is_over_the_truths_classes_and_f1_seen_over_the_predictions_too() -> None:
    ref, hyp = CASES["predicted, not true"]
    m = compute_metrics(np.array(ref), np.array(hyp), CLASSES)
    truth_only = f1_score(ref, hyp, labels=[0, 1, 3], average="macro")
    assert m.f1 == pytest.approx(100 * truth_only, rel=1e-12)
    assert m.f1_seen < m.f1  # Sad, predicted twice and never true, counts 0 in sklearn's
    ref, hyp = CASES["balanced"]
    m = compute_metrics(np.array(ref), np.array(hyp), CLASSES)
    assert m.f1 == m.f1_seen  # every predicted class is in the truth


def _before(ref: list[int], hyp: list[int]) -> tuple[float, float, float, float]:
    """WA, UA, F1 and WF1 as ser computed them before micro-F1 was kept (its formulas)."""
    counts = np.bincount(np.array(ref) * 4 + np.array(hyp), minlength=16).reshape(4, 4)
    support, predicted, hits = counts.sum(axis=1), counts.sum(axis=0), np.diag(counts)
    present = support > 0
    f1 = 2 * hits / np.maximum(support + predicted, 1)
    weighted = 100 * float((f1 * support).sum() / max(int(support.sum()), 1))
    ua = float(100 * (hits[present] / support[present]).mean())
    wa = float(100 * hits.sum() / counts.sum())
    return wa, ua, float(100 * f1[present].mean()), weighted


@pytest.mark.parametrize("case", CASES)
def test_the_scores_kept_before_are_bit_identical(case: str) -> None:
    ref, hyp = CASES[case]
    m = compute_metrics(np.array(ref), np.array(hyp), CLASSES)
    assert (m.wa, m.ua, m.f1, m.wf1) == _before(ref, hyp)
    old = m.to_json()
    assert list(old)[:7] == ["wa", "ua", "f1", "per_class_recall", "confusion", "n", "wf1"]


def test_a_record_written_before_gets_them_from_its_confusion() -> None:
    ref, hyp = CASES["predicted, not true"]
    m = compute_metrics(np.array(ref), np.array(hyp), CLASSES)
    old = {k: v for k, v in m.to_json().items() if k != "f1_seen"}
    again = Metrics.from_json(old)
    assert (again.micro_f1, again.f1_seen, again.wf1) == (m.wa, m.f1_seen, m.wf1)
    s = summarize([(0, m), (0, m)])
    assert s["micro_f1"] == m.micro_f1 and s["f1_seen"] == m.f1_seen
    assert not math.isnan(s["f1_seen_std"])
