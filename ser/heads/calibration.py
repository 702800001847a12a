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


#: The temperatures `fit_temperature` searches, log-spaced: a softmax 20 times sharper to
#: 20 times flatter covers what networks trained with cross-entropy need (Guo et al.:
#: about 1 to 3).
T_RANGE = (0.05, 20.0)


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The T > 0 of least mean negative log-likelihood of softmax(`logits` / T) [N, C]
    on the gold class indices [N] (Guo et al.'s temperature scaling), searched on log T
    (scipy's bounded Brent); 1.0 for no rows."""
    from scipy.optimize import minimize_scalar  # fitting only: scipy.optimize is slow to load

    z = np.asarray(logits, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    if not len(z):
        return 1.0
    picked = z[np.arange(len(z)), gold]

    def nll(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        top = scaled.max(axis=1)
        lse = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float(np.mean(lse - picked / np.exp(log_t)))

    low, high = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    found = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def scaled_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(`logits` / T) [N, C], in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))
