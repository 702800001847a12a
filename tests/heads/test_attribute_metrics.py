"""Attribute scores: CCC, Pearson's r and MAE, per attribute, pooled and over seeds."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from scipy.stats import pearsonr

import ser.heads.attribute_metrics
from ser.heads.attribute_metrics import (
    AttributeMetrics,
    AttributeScores,
    attribute_metrics,
    ccc,
    mae,
    overall_attribute_metrics,
    pearson,
    summarize_attributes,
)

RNG = np.random.default_rng(7)
GOLD = RNG.uniform(1, 5, 200)
PRED = 0.6 * GOLD + RNG.normal(0.8, 0.5, 200)


def _lin(gold: np.ndarray, pred: np.ndarray) -> float:
    """CCC by its other form, 2 r s_g s_p / (s_g² + s_p² + (m_g - m_p)²), r from scipy."""
    r = pearsonr(gold, pred).statistic
    sg, sp = gold.std(), pred.std()
    return float(2 * r * sg * sp / (sg**2 + sp**2 + (gold.mean() - pred.mean()) ** 2))


def test_the_docstring() -> None:
    assert doctest.testmod(ser.heads.attribute_metrics).failed == 0


def test_ccc_of_numbers_worked_by_hand() -> None:
    # gold 1 2 3, pred 1 2 4: means 2 and 7/3, variances 2/3 and 14/9, cov 1:
    # 2 / (2/3 + 14/9 + 1/9) = 2 / (21/9) = 6/7.
    assert ccc([1, 2, 3], [1, 2, 4]) == pytest.approx(6 / 7)
    # gold 2 4, pred 3 3: the prediction is constant, its covariance 0.
    assert ccc([2, 4], [3, 3]) == 0.0
    # A shift of the whole prediction by d: 2 var / (2 var + d²); var 1.25 for 1..4.
    assert ccc([1, 2, 3, 4], [2, 3, 4, 5]) == pytest.approx(2.5 / 3.5)
    assert mae([1, 2, 3, 4], [2, 3, 4, 5]) == 1.0


def test_ccc_agrees_with_its_other_form_and_is_at_most_r() -> None:
    assert ccc(GOLD, PRED) == pytest.approx(_lin(GOLD, PRED), rel=1e-12)
    assert pearson(GOLD, PRED) == pytest.approx(pearsonr(GOLD, PRED).statistic, rel=1e-12)
    assert ccc(GOLD, PRED) < abs(pearson(GOLD, PRED))
    assert ccc(GOLD, GOLD) == pytest.approx(1.0)
    assert ccc(GOLD, np.full_like(GOLD, 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert ccc(GOLD, 6 - GOLD) < 0
    assert mae(GOLD, PRED) == pytest.approx(np.abs(GOLD - PRED).mean())


def test_undefined_scores_are_nan_not_an_error() -> None:
    assert math.isnan(pearson([1, 2, 3], [2, 2, 2]))  # r of a constant
    assert math.isnan(ccc([3, 3], [3, 3]))  # 0 / 0
    empty = AttributeScores.of([math.nan], [1.0])
    assert empty.n == 0 and math.isnan(empty.ccc) and math.isnan(empty.mae)


def test_rows_without_gold_are_left_out_per_attribute() -> None:
    gold = np.array([[1.0, 2.0], [2.0, math.nan], [3.0, 4.0], [math.nan, 5.0]])
    pred = np.array([[1.0, 2.5], [2.0, 9.0], [4.0, 4.0], [9.0, 4.0]])
    m = attribute_metrics(gold, pred, ["arousal", "valence"])
    assert m.names == ("arousal", "valence")
    assert m.scores["arousal"].n == 3 and m.scores["valence"].n == 3
    assert m.scores["arousal"].ccc == pytest.approx(6 / 7)
    assert m.scores["valence"].ccc == pytest.approx(ccc([2, 4, 5], [2.5, 4, 4]))
    assert m.ccc_mean == pytest.approx((6 / 7 + m.scores["valence"].ccc) / 2)
    with pytest.raises(ValueError, match="must both be"):
        attribute_metrics(gold, pred, ["arousal"])


def test_folds_pool_exactly_as_their_predictions_together() -> None:
    names = ["arousal", "valence"]
    gold = np.stack([GOLD, 8 - GOLD], axis=1)  # [N, 2]
    pred = np.stack([PRED, 7 - 0.5 * PRED], axis=1)
    gold[::7, 1] = math.nan
    cuts = [slice(0, 50), slice(50, 120), slice(120, 200)]
    folds = [attribute_metrics(gold[c], pred[c], names) for c in cuts]
    pooled = overall_attribute_metrics(folds)
    whole = attribute_metrics(gold, pred, names)
    for name in names:
        for key in ("ccc", "pearson", "mae", "n"):
            got, want = getattr(pooled.scores[name], key), getattr(whole.scores[name], key)
            assert got == pytest.approx(want, rel=1e-10), (name, key)
    # Read back from JSON (a fold entry's `attributes`), the moments still pool.
    back = [AttributeMetrics.from_json(json.loads(json.dumps(f.to_json()))) for f in folds]
    assert overall_attribute_metrics(back).ccc_mean == pytest.approx(whole.ccc_mean, rel=1e-10)


def test_to_json_is_json_and_reads_back() -> None:
    m = attribute_metrics([[1.0], [3.0]], [[2.0], [2.0]], ["dominance"])
    d = m.to_json()
    assert d["dominance"]["pearson"] is None  # NaN: r of a constant prediction
    assert json.loads(json.dumps(d)) == d
    back = AttributeMetrics.from_json(d)
    assert back.scores["dominance"].ccc == 0.0 and math.isnan(back.scores["dominance"].pearson)
    # Scores written without moments still read; they just do not pool.
    bare = AttributeMetrics.from_json({"arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 1, "n": 4}})
    assert bare.ccc_mean == 0.5 and math.isnan(overall_attribute_metrics([bare]).ccc_mean)


def test_summary_over_seeds_is_the_mean_of_each_seeds_folds() -> None:
    def one(c: float) -> AttributeMetrics:
        return AttributeMetrics({"arousal": AttributeScores(c, c, 1 - c, 10)})

    results = [(0, one(0.4)), (0, one(0.6)), (1, one(0.7)), (1, one(0.7))]
    s = summarize_attributes(results)
    assert s["seeds"] == 2 and s["n"] == 2 and s["std_over"] == "seeds"
    assert s["ccc_arousal"] == pytest.approx(0.6) and s["ccc_mean"] == pytest.approx(0.6)
    assert s["ccc_arousal_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert s["mae_arousal"] == pytest.approx(0.4)
