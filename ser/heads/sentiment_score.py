"""`sentiment-score`: a segment's sentiment as a score in [-3, 3], the regression CMU-MOSI
and CMU-MOSEI are trained and reported on (`--target sentiment-score`, or `sentiment` on
a store of theirs: `ser.corpus.kind.CorpusKind.spelled`).

Its gold is the manifest's float ``sentiment`` column (`ser.corpus.kinds.cmu_mosei`); its
loss the mean absolute error, as the field trains it (MulT, MISA, Self-MM); its output
the score itself. Its metrics are the field's, as MulT's `eval_mosei_senti` computes
them, accuracies and F1 in percent: Acc-2 and weighted F1 in both conventions (negative
against non-negative, `has0`; negative against positive with gold 0 left out, `non0`),
Acc-7 (both scores clipped to [-3, 3] and rounded, half to even as numpy rounds), MAE and
Pearson's r. Validation selects on the MAE (the lowest). Folds pool exactly: each fold keeps the
counts and sums its metrics come from.

>>> import numpy as np
>>> head = SentimentScoreHead()
>>> m = head.metrics(np.array([[1.0], [-2.0], [0.5]]), np.array([[1.2], [-1.0], [0.0]]), ())
>>> m["acc2_has0"], m["acc2_non0"], round(m["mae"], 3)
(100.0, 100.0, 0.567)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser.errors import ConfigError
from ser.heads.base import GoldSource, Head

if TYPE_CHECKING:  # torch loads where a head trains or predicts, never for a report
    import torch

#: The manifest's column of it.
COLUMN = "sentiment"
SCORES = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr")
# What each fold keeps so that folds pool exactly: its items, the absolute errors' sum,
# the moments Pearson's r needs, the 7-class hits, and each convention's 2x2 counts.
_SUMS = ("n", "abs", "p", "g", "pp", "gg", "pg", "hits7")
_CONVENTIONS = ("has0", "non0")


class SentimentScoreHead(Head):
    name: ClassVar[str] = "sentiment-score"
    score_name: ClassVar[str] = "MAE"
    score_key: ClassVar[str | None] = "mae"

    def width(self, n_classes: int) -> int:
        return 1

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        return (COLUMN,)

    def gold(self, source: GoldSource) -> np.ndarray:
        manifest = source.store.manifest
        values = np.asarray(manifest.column(COLUMN)) if COLUMN in manifest.names else None
        if values is None or values.dtype.kind != "f":
            raise ConfigError(
                f"--target {self.name}: the manifest of {source.store.path} has no score "
                f"column {COLUMN!r} (CMU-MOSI's and CMU-MOSEI's stores have one)"
            )
        return values.astype(np.float64)[:, None]  # [N, 1]

    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """out [..., 1], gold [..., 1] (NaN: none) -> the mean absolute error over the
        items with gold."""
        import torch

        has = gold.isfinite()
        err = torch.where(has, (out.float() - gold.nan_to_num(0.0)).abs(), 0.0)
        return err.sum() / has.sum().clamp_min(1)

    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        has = np.isfinite(gold[:, 0])
        return _scored(_sums(pred[has, 0].astype(np.float64), gold[has, 0]))

    def score(self, metrics: Mapping[str, Any]) -> float:
        mae = float(metrics["mae"])
        return -np.inf if np.isnan(mae) else -mae

    def flat(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        return {f"{self.name}_{k}": float(metrics[k]) for k in SCORES}

    def pool(self, folds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        sums = {k: float(sum(f[k] for f in folds)) for k in _SUMS}
        for tag in _CONVENTIONS:
            sums[tag] = np.sum([f[tag] for f in folds], axis=0).tolist()
        return _scored(sums)

    def gold_text(self, gold: np.ndarray, names: Sequence[str]) -> str:
        return f"{gold[0]:.6g}" if np.isfinite(gold).all() else ""

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        return {self.name: round(float(pred[0]), 4)}


def _sums(pred: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    """pred [n], gold [n] -> the counts and sums every metric comes from."""
    seven = np.round(np.clip(pred, -3, 3)) == np.round(np.clip(gold, -3, 3))
    nonzero = gold != 0
    return {
        "n": len(gold),
        "abs": float(np.abs(pred - gold).sum()),
        "p": float(pred.sum()),
        "g": float(gold.sum()),
        "pp": float(pred @ pred),
        "gg": float(gold @ gold),
        "pg": float(pred @ gold),
        "hits7": int(seven.sum()),
        "has0": _counts(pred >= 0, gold >= 0),
        "non0": _counts(pred[nonzero] > 0, gold[nonzero] > 0),
    }


def _counts(pred: np.ndarray, gold: np.ndarray) -> list[int]:
    """[true positives, false positives, false negatives, true negatives]."""
    return [
        int(np.sum(p & g)) for p, g in ((pred, gold), (pred, ~gold), (~pred, gold), (~pred, ~gold))
    ]


def _scored(sums: Mapping[str, Any]) -> dict[str, Any]:
    """The field's metrics (percent for accuracies and F1) of a fold's or several folds'
    sums, the sums kept beside them."""
    n = sums["n"]
    out: dict[str, Any] = dict(sums)
    for tag in _CONVENTIONS:
        acc, f1 = _binary(*sums[tag])
        out[f"acc2_{tag}"], out[f"f1_{tag}"] = acc, f1
    out["acc7"] = 100 * sums["hits7"] / n if n else np.nan
    out["mae"] = sums["abs"] / n if n else np.nan
    cov = sums["pg"] - sums["p"] * sums["g"] / n if n else 0.0
    var_p = sums["pp"] - sums["p"] ** 2 / n if n else 0.0
    var_g = sums["gg"] - sums["g"] ** 2 / n if n else 0.0
    out["corr"] = cov / np.sqrt(var_p * var_g) if var_p > 0 and var_g > 0 else np.nan
    return out


def _binary(tp: int, fp: int, fn: int, tn: int) -> tuple[float, float]:
    """Accuracy and weighted F1 (percent) of a 2x2 table, as sklearn weighs them."""
    total = tp + fp + fn + tn
    if not total:
        return np.nan, np.nan
    f1 = [2 * a / (2 * a + b + c) if a + b + c else 0.0 for a, b, c in ((tp, fp, fn), (tn, fn, fp))]
    weighted = ((tp + fn) * f1[0] + (tn + fp) * f1[1]) / total
    return 100 * (tp + tn) / total, 100 * weighted


HEAD = SentimentScoreHead  # what ser.heads registers
