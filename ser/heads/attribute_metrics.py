"""Scores of emotion attributes (arousal, valence, dominance) predicted as numbers.

CCC: Lin's concordance correlation coefficient, with population variances as the
MSP-Podcast challenge and audmetric compute it, 2 cov / (var_g + var_p + (mean_g -
mean_p)²): 1 for a perfect prediction, 0 for a constant one, never above |r|. Pearson's
r and MAE beside it, on the corpus's own scale (IEMOCAP 1-5, MSP-Podcast 1-7). An
utterance without a gold value (NaN) is left out of that attribute's scores only.

Each attribute's scores keep the moments they came from (means, population variances,
covariance), so folds pool exactly: `overall_attribute_metrics` of the folds' scores is
what the pooled predictions score (the challenge scores CCC on the pooled test set), and
`ser report`'s pooled columns are that, read off run.json.

>>> import numpy as np
>>> m = attribute_metrics(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]]),
...                       ["arousal"])
>>> s = m.scores["arousal"]
>>> round(s.ccc, 4), round(s.pearson, 4), round(s.mae, 4), s.n
(0.8571, 0.982, 0.3333, 3)
>>> round(m.ccc_mean, 4), sorted(m.flat())
(0.8571, ['ccc_arousal', 'ccc_mean', 'mae_arousal', 'pearson_arousal'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ser import Json
from ser.corpus.records import ATTRIBUTES
from ser.heads.metrics import over_seeds
from ser.heads.score_json import integer, json_object, lacking, nan_to_null, number, unknown

SCORES = ("ccc", "pearson", "mae")
MEAN = "ccc_mean"  # the mean of the attributes' CCC: the challenge's single number
_MOMENTS = ("mean_gold", "mean_pred", "var_gold", "var_pred", "cov")


def ccc(gold: ArrayLike, pred: ArrayLike) -> float:
    """Lin's concordance correlation coefficient of two [N] arrays (NaN gold dropped)."""
    return AttributeScores.of(gold, pred).ccc


def pearson(gold: ArrayLike, pred: ArrayLike) -> float:
    """Pearson's r of two [N] arrays (NaN gold dropped; NaN where either is constant)."""
    return AttributeScores.of(gold, pred).pearson


def mae(gold: ArrayLike, pred: ArrayLike) -> float:
    """The mean absolute error of two [N] arrays (NaN gold dropped)."""
    return AttributeScores.of(gold, pred).mae


@dataclass(frozen=True)
class AttributeScores:
    """One attribute's scores over `n` utterances, with the moments they came from (NaN
    where unknown: such scores do not pool). Read from a record, `unheld` names the
    moments it did not hold (an older ser's: NaN here, left out when written back) and
    `extra` the keys a newer ser wrote (written back)."""

    ccc: float
    pearson: float
    mae: float
    n: int
    mean_gold: float = math.nan
    mean_pred: float = math.nan
    var_gold: float = math.nan  # population variance, as CCC takes it
    var_pred: float = math.nan
    cov: float = math.nan
    unheld: frozenset[str] = frozenset()
    extra: Mapping[str, Json] = field(default_factory=dict, hash=False)

    @classmethod
    def of(cls, gold: ArrayLike, pred: ArrayLike) -> AttributeScores:
        """The scores of predictions `pred` [N] of `gold` [N], rows with NaN gold left out."""
        g, p = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)
        if g.shape != p.shape or g.ndim != 1:
            raise ValueError(f"gold {g.shape} and pred {p.shape} must be equal 1-d")
        keep = ~np.isnan(g)
        g, p = g[keep], p[keep]
        if not len(g):
            return cls.from_moments(0, *[math.nan] * 6)
        mg, mp = float(g.mean()), float(p.mean())
        cov = float(np.mean((g - mg) * (p - mp)))
        error = float(np.abs(g - p).mean())
        return cls.from_moments(len(g), mg, mp, float(g.var()), float(p.var()), cov, error)

    @classmethod
    def from_moments(
        cls,
        n: int,
        mean_gold: float,
        mean_pred: float,
        var_gold: float,
        var_pred: float,
        cov: float,
        mae: float,
    ) -> AttributeScores:
        """The scores of `n` pairs with these means, population variances, covariance
        and mean absolute error (CCC and r NaN where undefined)."""
        agree = var_gold + var_pred + (mean_gold - mean_pred) ** 2
        spread = math.sqrt(var_gold * var_pred) if var_gold * var_pred > 0 else 0.0
        return cls(
            2 * cov / agree if agree > 0 else math.nan,
            cov / spread if spread > 0 else math.nan,
            mae,
            n,
            mean_gold,
            mean_pred,
            var_gold,
            var_pred,
            cov,
        )

    def to_json(self) -> dict[str, Json]:
        """As a fold entry holds them: NaN null, `unheld` moments left out, `extra` last."""
        written = {k: nan_to_null(getattr(self, k)) for k in (*SCORES, "n", *_MOMENTS)}
        written["n"] = self.n
        return {**{k: v for k, v in written.items() if k not in self.unheld}, **self.extra}

    @classmethod
    def from_json(cls, obj: object, where: str) -> AttributeScores:
        """The scores a JSON object holds (null: NaN; a moment absent: NaN and `unheld`);
        `ReportError` naming `where` and the key for a value of another type or a key
        lacking."""
        d = json_object(obj, where)
        values = {k: number(d, k, where, null=True) for k in (*SCORES, *_MOMENTS) if k in d}
        n = integer(d["n"], f"{where}, 'n'") if "n" in d else 0
        lacking(d, (*SCORES, "n"), where)
        unheld = frozenset(k for k in _MOMENTS if k not in d)
        return cls(n=n, **values, unheld=unheld, extra=unknown(d, (*SCORES, "n", *_MOMENTS)))


@dataclass(frozen=True)
class AttributeMetrics:
    """Each attribute's scores, in the order trained (`ATTRIBUTES`' order)."""

    scores: Mapping[str, AttributeScores] = field(hash=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.scores)

    @property
    def ccc_mean(self) -> float:
        """The mean of the attributes' CCC (NaN with none)."""
        values = [s.ccc for s in self.scores.values()]
        return float(np.mean(values)) if values else math.nan

    def flat(self) -> dict[str, float]:
        """``ccc_mean``, then ``<score>_<attribute>`` for every score and attribute: the
        names summaries, tables and `ser claims` give them."""
        out = {MEAN: self.ccc_mean}
        for score in SCORES:
            out |= {f"{score}_{name}": getattr(s, score) for name, s in self.scores.items()}
        return out

    def to_json(self) -> dict[str, Json]:
        """{attribute: `AttributeScores.to_json`}: a fold entry's ``attributes``."""
        return {name: s.to_json() for name, s in self.scores.items()}

    @classmethod
    def from_json(cls, obj: object, where: str = "attributes") -> AttributeMetrics:
        """The scores a fold entry's ``attributes`` holds, by attribute, in its order."""
        held = json_object(obj, where)
        return cls(
            {str(k): AttributeScores.from_json(v, f"{where}[{k!r}]") for k, v in held.items()}
        )


def attribute_metrics(gold: ArrayLike, pred: ArrayLike, names: Sequence[str]) -> AttributeMetrics:
    """The scores of predictions `pred` [N, A] of `gold` [N, A] (NaN: no gold value),
    column a of attribute `names[a]`."""
    g, p = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if g.shape != p.shape or g.ndim != 2 or g.shape[1] != len(names):
        raise ValueError(f"gold {g.shape} and pred {p.shape} must both be [N, {len(names)}]")
    return AttributeMetrics(
        {name: AttributeScores.of(g[:, a], p[:, a]) for a, name in enumerate(names)}
    )


def overall_attribute_metrics(metrics: Sequence[AttributeMetrics]) -> AttributeMetrics:
    """The scores of all predictions behind `metrics` taken together (folds, seeds),
    exactly, from their moments: the pooled test set's scores."""
    names = list(dict.fromkeys(name for m in metrics for name in m.names))
    order = [a for a in ATTRIBUTES if a in names] + [a for a in names if a not in ATTRIBUTES]
    return AttributeMetrics(
        {name: _pool([m.scores[name] for m in metrics if name in m.scores]) for name in order}
    )


def _pool(parts: list[AttributeScores]) -> AttributeScores:
    parts = [s for s in parts if s.n]
    n = sum(s.n for s in parts)
    if not n:
        return AttributeScores.from_moments(0, *[math.nan] * 6)
    w = np.array([s.n for s in parts], dtype=np.float64) / n
    mg, mp = (np.array([getattr(s, k) for s in parts]) for k in ("mean_gold", "mean_pred"))
    mean_g, mean_p = float(w @ mg), float(w @ mp)
    # Each part's spread about its own mean plus its mean's about the pooled one.
    var_g = float(w @ (np.array([s.var_gold for s in parts]) + (mg - mean_g) ** 2))
    var_p = float(w @ (np.array([s.var_pred for s in parts]) + (mp - mean_p) ** 2))
    cov = float(w @ (np.array([s.cov for s in parts]) + (mg - mean_g) * (mp - mean_p)))
    error = float(w @ np.array([s.mae for s in parts]))
    return AttributeScores.from_moments(n, mean_g, mean_p, var_g, var_p, cov, error)


def summarize_attributes(results: Sequence[tuple[int, AttributeMetrics]]) -> dict[str, Any]:
    """Mean ± std of every `AttributeMetrics.flat` score over (seed, fold scores) pairs,
    as `ser.heads.metrics.summarize` takes UA's: each seed's mean over its folds, then
    over seeds (``ccc_arousal``, ``ccc_arousal_std``, ..., ``seeds``, ``std_over``, ``n``)."""
    return over_seeds([(seed, m.flat()) for seed, m in results])
