"""`ser.metrics`: the scores ser reports, for a researcher's own loop, equal to what the
trainer records (the same functions) and to scikit-learn's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

import ser


def test_the_scores_are_sklearns_in_percent() -> None:
    rng = np.random.default_rng(0)
    gold, said = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert ser.metrics.ua(gold, said) == pytest.approx(100 * balanced_accuracy_score(gold, said))
    assert ser.metrics.wa(gold, said) == pytest.approx(100 * np.mean(gold == said))
    assert ser.metrics.f1(gold, said) == pytest.approx(100 * f1_score(gold, said, average="macro"))
    weighted = 100 * f1_score(gold, said, average="weighted")
    assert ser.metrics.f1(gold, said, average="weighted") == pytest.approx(weighted)
    np.testing.assert_array_equal(ser.metrics.confusion(gold, said), confusion_matrix(gold, said))
    assert ser.metrics.ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_labels_by_name_in_the_order_given() -> None:
    gold, said = ["neu", "hap", "hap"], ["neu", "hap", "neu"]
    assert ser.metrics.confusion(gold, said, classes=["hap", "neu"]).tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match="label 'sad' is not one of the classes"):
        ser.metrics.ua(gold, ["sad", "hap", "neu"], classes=["hap", "neu"])
    with pytest.raises(ValueError, match="must be equal"):
        ser.metrics.wa(gold, said[:2])
