"""The multimodal sentiment field's metrics (CMU-MOSI, CMU-MOSEI), as MulT, MISA and Self-MM
compute them: pure functions of predicted and gold scores.

Sentiment is a score in [-3, 3]; papers report
- Acc-2 and F1 (weighted over the two classes) in both conventions: negative against
  non-negative (`has0`: score < 0 or >= 0, every segment; the papers before 2019) and
  negative against positive (`non0`: segments whose gold is 0 left out, score < 0 or > 0;
  the papers since, as the SDK's README says);
- Acc-7: both scores clipped to [-3, 3] and rounded to the nearest integer (numpy's
  rounding, half to even, as the published evaluation code does), seven classes;
- MAE and Pearson's correlation (Corr).
MOSEI's six emotions are intensities in [0, 3], an emotion present when above 0; per
emotion, weighted accuracy (Tong et al.: (TP N / P + TN) / 2N, the mean of the recalls of
present and absent) and the weighted F1 of present against absent.

>>> gold = np.array([-2.0, -0.4, 0.0, 0.6, 2.4])
>>> pred = np.array([-1.6, 0.2, 0.1, 1.0, 2.9])
>>> m = sentiment_metrics(pred, gold)
>>> m["acc2_has0"], m["acc2_non0"], m["acc7"], round(m["mae"], 2)
(0.8, 0.75, 0.8, 0.4)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import f1_score, recall_score


def sentiment_metrics(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """pred [N], gold [N] scores -> acc2_has0, f1_has0, acc2_non0, f1_non0, acc7, mae,
    corr (NaN where a metric has too few items: no nonzero gold, or a constant side)."""
    pred, gold = np.asarray(pred, np.float64), np.asarray(gold, np.float64)
    if pred.shape != gold.shape or pred.ndim != 1:
        raise ValueError(f"scores must be [N] and [N]: got {pred.shape} and {gold.shape}")
    out = {"n": float(len(gold))}
    out |= _binary("has0", pred >= 0, gold >= 0)
    nonzero = gold != 0
    out |= _binary("non0", pred[nonzero] > 0, gold[nonzero] > 0)
    seven = np.round(np.clip(pred, -3, 3)), np.round(np.clip(gold, -3, 3))
    out["acc7"] = float(np.mean(seven[0] == seven[1])) if len(gold) else np.nan
    out["mae"] = float(np.mean(np.abs(pred - gold))) if len(gold) else np.nan
    constant = len(gold) < 2 or np.ptp(pred) == 0 or np.ptp(gold) == 0
    out["corr"] = np.nan if constant else float(stats.pearsonr(pred, gold).statistic)
    return out


def emotion_metrics(
    pred: np.ndarray, gold: np.ndarray, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """pred [N, E], gold [N, E] intensities -> per emotion name {wa, f1}: present when
    above 0 (a predicted intensity, or a probability above 0.5 when `pred` holds them:
    give `pred - 0.5` for probabilities)."""
    if pred.shape != gold.shape or pred.ndim != 2 or pred.shape[1] != len(names):
        raise ValueError(f"intensities must be [N, {len(names)}] twice: {pred.shape}, {gold.shape}")
    out = {}
    for e, name in enumerate(names):
        p, g = pred[:, e] > 0, gold[:, e] > 0
        out[name] = {
            "wa": _weighted_accuracy(p, g),
            "f1": float(f1_score(g, p, average="weighted", zero_division=0.0)),
        }
    return out


def _binary(tag: str, pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    if len(gold) == 0:
        return {f"acc2_{tag}": np.nan, f"f1_{tag}": np.nan}
    return {
        f"acc2_{tag}": float(np.mean(pred == gold)),
        f"f1_{tag}": float(f1_score(gold, pred, average="weighted", zero_division=0.0)),
    }


def _weighted_accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    """The mean of the recalls of present and absent (NaN when either has no item)."""
    if gold.all() or not gold.any():
        return np.nan
    return float(recall_score(gold, pred, average="macro", zero_division=0.0))
