"""ECE and the Jensen-Shannon divergence against hand-computed cases and scipy/sklearn."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import ser.heads.calibration
from ser.heads.calibration import ece, js_divergence, reliability


def test_doctests() -> None:
    assert doctest.testmod(ser.heads.calibration).failed == 0


def test_ece_of_hand_made_predictions() -> None:
    # Four at confidence 0.95 (bin (14/15, 1]), three right; two at 0.55 ((8/15, 9/15]), one right.
    probs = np.array([[0.95, 0.05]] * 4 + [[0.45, 0.55]] * 2)
    gold = np.array([0, 0, 0, 1, 1, 0])
    bins = reliability(probs, gold)
    assert bins.count.tolist() == [0] * 8 + [2] + [0] * 5 + [4]
    assert bins.accuracy[14] == pytest.approx(0.75) and bins.accuracy[8] == pytest.approx(0.5)
    # 4/6 * |0.75 - 0.95| + 2/6 * |0.5 - 0.55|, percent
    assert ece(probs, gold) == pytest.approx(100 * (4 / 6 * 0.2 + 2 / 6 * 0.05))


def test_perfect_and_empty() -> None:
    probs = np.eye(3)[[0, 1, 2, 1]]
    assert ece(probs, np.array([0, 1, 2, 1])) == 0.0
    assert ece(probs, np.array([1, 2, 0, 0])) == pytest.approx(100.0)  # sure and wrong
    assert ece(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 0.0
    # a bin's edge belongs to the bin below it: 0.6 = 9/15 falls in (8/15, 9/15]
    assert reliability(np.array([[0.6, 0.4]]), np.array([0])).count[8] == 1


def test_ece_matches_sklearns_calibration_curve_of_the_top_label() -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gold = rng.integers(0, 4, size=500)
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == gold
    accuracy, mean_confidence = calibration_curve(right, confidence, n_bins=15)
    counts = np.histogram(confidence, bins=np.linspace(0, 1, 16))[0]
    expected = 100 * np.sum(counts[counts > 0] * np.abs(accuracy - mean_confidence)) / 500
    assert ece(probs, gold) == pytest.approx(expected)


def test_js_divergence_is_scipys_distance_squared() -> None:
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(4), size=20), rng.dirichlet(np.ones(4), size=20)
    q[0] = [1.0, 0.0, 0.0, 0.0]  # a one-hot row: 0 log 0 counts 0
    expected = [jensenshannon(a, b, base=2) ** 2 for a, b in zip(p, q, strict=True)]
    assert js_divergence(p, q) == pytest.approx(expected)
    assert js_divergence(p, p) == pytest.approx(np.zeros(20))


def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at() -> None:
    from ser.heads.calibration import fit_temperature, scaled_softmax

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(20000, 4)) * 3
    truth = scaled_softmax(logits, 2.0)  # labels drawn from softmax(logits / 2)
    gold = (truth.cumsum(axis=1) > rng.random((20000, 1))).argmax(axis=1)
    assert fit_temperature(logits, gold) == pytest.approx(2.0, rel=0.05)
    assert fit_temperature(logits + 5.0, gold) == pytest.approx(fit_temperature(logits, gold))
    assert fit_temperature(np.zeros((0, 4)), np.zeros(0, dtype=np.int64)) == 1.0
