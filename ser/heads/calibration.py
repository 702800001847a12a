"""How well a run's class probabilities are calibrated (pure functions, numpy only).

ECE: the expected calibration error of the top label (Guo et al., 2017, "On Calibration
of Modern Neural Networks"): each prediction's confidence (its largest probability)
falls in one of 15 equal-width bins, ((i-1)/15, i/15] (a confidence of 0 in the first);
ECE = sum over bins of |bin| / n * |accuracy(bin) - mean confidence(bin)|, in percent as
every other score. sklearn's `calibration_curve` bins one positive class's probability
(left-closed bins, no counts), so the top label's is computed here (tested equal to it
on confidences off the bin edges).

JSD: the Jensen-Shannon divergence of two distributions, base 2 (0 to 1): the square of
scipy's `jensenshannon` distance, computed here with numpy (tested equal to it).

>>> import numpy as np
>>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
>>> round(ece(probs, np.array([0, 1, 1, 1])), 6)  # a bin each: (0.1 + 0.8 + 0.3 + 0.4) / 4
40.0
>>> float(js_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))[0])
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's bins: `edges` [B + 1], and per bin the mean confidence,
    the accuracy (NaN: an empty bin) and the count [B]."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """The expected calibration error, percent (0 for no predictions)."""
        n = int(self.count.sum())
        if n == 0:
            return 0.0
        held = self.count > 0
        gaps = np.abs(self.accuracy[held] - self.confidence[held]) * self.count[held]
        return float(100 * gaps.sum() / n)


def reliability(probs: np.ndarray, gold: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """The top label's bins of `probs` [N, C] against the gold class indices [N]."""
    probs = np.asarray(probs, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    right = (probs.argmax(axis=1) == gold) if len(probs) else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # right-closed bins: (lo, hi]; 0 joins the first
    at = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(at, minlength=bins)
    total = np.bincount(at, weights=confidence, minlength=bins)
    hits = np.bincount(at, weights=right.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return Reliability(edges, total / count, hits / count, count)


def ece(probs: np.ndarray, gold: np.ndarray, bins: int = ECE_BINS) -> float:
    """The top label's expected calibration error of `probs` [N, C], percent."""
    return reliability(probs, gold, bins).ece


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The Jensen-Shannon divergence (base 2) of each row of `p` and `q` [N, C] (each
    row normalised to sum 1), [N]."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    return (_kl(p, m) + _kl(q, m)) / 2


def _kl(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """KL(p || m) base 2 per row; 0 log 0 = 0 (m > 0 wherever p > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / m), 0.0)
    return terms.sum(axis=1)
