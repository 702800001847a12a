"""Classification metrics of speech emotion recognition, in percent (pure functions).

WA: overall accuracy; UA: the mean of per-class recalls; F1: macro-F1, the mean of
per-class F1 (MSP-Podcast's papers report it); WF1: weighted F1, per-class F1 weighted by
the class's share of the truth (MELD's papers report it). A class absent from the truth
has recall NaN (``null`` in JSON) and is left out of UA and both F1s; one never
predicted counts 0 (sklearn's ``zero_division=0``). Every score is read off the confusion
matrix with numpy: sklearn gives the same values (tested) but costs ~1 s to import.

EmoBox's EmoEval scores with sklearn's defaults: UA `balanced_accuracy_score` and WA
`accuracy_score` (ours), macro-F1 `f1_score(average="macro")` over every class in the
truth or the predictions (`f1_seen`: a class predicted but absent from the truth counts
0; equal to F1 whenever every predicted class is in the truth) and micro-F1
(`micro_f1`: for one label per utterance, WA).

>>> import numpy as np
>>> m = compute_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["neu", "hap"])
>>> m.wa, m.ua, m.per_class_recall
(75.0, 75.0, {'neu': 50.0, 'hap': 100.0})
>>> m.confusion
((1, 1), (0, 2))
>>> mean_std([70.0, 72.0])
(71.0, 1.4142135623730951)
>>> mean_std_text(71.0, 1.41421, 2), mean_std_text(70.5, 0.0, 1)
('71.00 ± 1.41', '70.50 (n = 1)')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ser import Json
from ser.errors import ReportError
from ser.heads.score_json import (
    integer,
    json_object,
    nan_to_null,
    number,
    to_float,
    unknown,
)


@dataclass(frozen=True)
class Metrics:
    """Scores of one evaluation (a fold, or folds pooled); percentages 0..100. The one
    type of the category's scores, from the head that computes them to a run record's
    ``metrics`` and ``pooled`` and back (`to_json`, `from_json`).

    Read from a record, `unheld` names the keys it did not hold, left out when written
    back, as the record had them: every ser wrote the first six (a test's or a damaged
    record may lack some: NaN, empty, 0 here), and WF1 and `f1_seen` came later (computed
    from the confusion where it is held). `extra` keeps the keys a newer ser wrote,
    written back too."""

    wa: float
    ua: float
    f1: float  # macro
    per_class_recall: Mapping[str, float] = field(hash=False)  # NaN: class absent from truth
    confusion: tuple[tuple[int, ...], ...]  # [truth][prediction], class-set order
    n: int  # utterances scored
    wf1: float  # weighted by support
    f1_seen: float = math.nan  # macro over the classes in the truth or the predictions
    unheld: frozenset[str] = frozenset()
    extra: Mapping[str, Json] = field(default_factory=dict, hash=False)

    @property
    def micro_f1(self) -> float:
        """sklearn's average="micro": with one label per utterance, the accuracy (WA)."""
        return self.wa

    def score(self, key: str) -> float | None:
        """The score `key` (``ua``, ``wa``, ``f1``, ``wf1``, ``f1_seen``); None: not one,
        or one a record did not hold."""
        held = key in _SCORES and key not in self.unheld
        return float(getattr(self, key)) if held else None

    def to_json(self) -> dict[str, Json]:
        """As run.json holds them: NaN recalls null, `unheld` scores left out, `extra`
        last."""
        written: dict[str, Json] = {
            "wa": self.wa,
            "ua": self.ua,
            "f1": self.f1,
            "per_class_recall": {c: nan_to_null(r) for c, r in self.per_class_recall.items()},
            "confusion": [list(row) for row in self.confusion],
            "n": self.n,
            "wf1": self.wf1,
            "f1_seen": self.f1_seen,
        }
        return {**{k: v for k, v in written.items() if k not in self.unheld}, **self.extra}

    @classmethod
    def from_json(cls, obj: object, where: str = "metrics") -> Metrics:
        """The scores a JSON object holds (`to_json`'s, or an older ser's: WF1 and
        `f1_seen` computed from the confusion where not held, exactly what
        `compute_metrics` gives); `ReportError` naming `where` and the key for a value of
        another type. A key not held is `unheld` (see the class)."""
        d = json_object(obj, where)
        scores = {k: number(d, k, where) for k in _SCORES if d.get(k) is not None}
        recalls = _recalls(d.get("per_class_recall", {}), f"{where}, 'per_class_recall'")
        matrix = _confusion(d.get("confusion", []), f"{where}, 'confusion'")
        n = integer(d["n"], f"{where}, 'n'") if "n" in d else 0
        unheld = frozenset(k for k in _KEYS if d.get(k) is None)
        if "confusion" not in unheld:
            counts = np.asarray(matrix, dtype=np.int64)
            scores.setdefault("wf1", f1_scores(counts)[1])
            scores.setdefault("f1_seen", f1_seen(counts))
        scores = {k: scores.get(k, math.nan) for k in _SCORES}
        extra = unknown(d, _KEYS)
        return cls(**scores, per_class_recall=recalls, confusion=matrix, n=n, unheld=unheld,
                   extra=extra)  # fmt: skip

    def lacks(self) -> list[str]:
        """The keys every ser wrote that these scores were read without (a damaged or
        made-up record's); [] for every computed or complete one."""
        return [k for k in _KEYS[:6] if k in self.unheld]


#: The scores `Metrics.score` names; a record's keys: the six every ser wrote, then
#: those kept since.
_SCORES = ("wa", "ua", "f1", "wf1", "f1_seen")
_KEYS = ("wa", "ua", "f1", "per_class_recall", "confusion", "n", "wf1", "f1_seen")


def _recalls(value: Json, where: str) -> dict[str, float]:
    held = json_object(value, where)
    return {str(c): to_float(r, f"{where}[{c!r}]", null=True) for c, r in held.items()}


def _confusion(value: Json, where: str) -> tuple[tuple[int, ...], ...]:
    rows = []
    for row in value if isinstance(value, list) else [value]:
        if not isinstance(row, list):
            raise ReportError(f"{where} must be a JSON list of lists, got {value!r}")
        rows.append(tuple(integer(v, where) for v in row))
    if any(len(row) != len(rows) for row in rows):
        raise ReportError(f"{where} must be square (a row and a column per class), got {value!r}")
    return tuple(rows)


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> Metrics:
    """WA, UA, macro-F1, weighted F1, per-class recall and confusion of class-index
    predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n_classes = len(classes)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-d")
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"{name} holds class indices outside 0..{n_classes - 1}")
    counts = confusion(y_true, y_pred, n_classes)  # [truth, prediction]
    support, hits = counts.sum(axis=1), np.diag(counts)
    present = support > 0
    recall = (100 * (hits / np.maximum(support, 1))).tolist()
    # NaN: not in truth; `math.nan` itself, as `Metrics.from_json` reads it, so that the
    # scores compare equal to themselves read back from a record.
    per_class = {c: r if p else math.nan for c, r, p in zip(classes, recall, present, strict=True)}
    ua, wa = ua_wa(y_true, y_pred, n_classes)
    f1_macro, f1_weighted = f1_scores(counts)
    matrix = tuple(tuple(row) for row in counts.tolist())
    return Metrics(wa, ua, f1_macro, per_class, matrix, len(y_true), f1_weighted, f1_seen(counts))


def f1_scores(counts: np.ndarray) -> tuple[float, float]:
    """Macro and weighted F1 (percent) of a confusion [truth, prediction], over the
    classes in the truth."""
    f1, support, _ = _per_class_f1(counts)
    weighted = 100 * float((f1 * support).sum() / max(int(support.sum()), 1))
    return float(100 * f1[support > 0].mean()), weighted


def f1_seen(counts: np.ndarray) -> float:
    """Macro-F1 (percent) over the classes in the truth or the predictions: sklearn's
    `f1_score` with its default labels, as EmoBox's EmoEval calls it."""
    f1, support, predicted = _per_class_f1(counts)
    return float(100 * f1[(support > 0) | (predicted > 0)].mean())


def _per_class_f1(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each class's F1 (fraction), support and predicted count."""
    support, predicted, hits = counts.sum(axis=1), counts.sum(axis=0), np.diag(counts)
    # F1 = 2PR / (P + R) with P = hits / predicted, R = hits / support; 0 where a class
    # is never predicted (sklearn's zero_division=0).
    return 2 * hits / np.maximum(support + predicted, 1), support, predicted


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] int64 counts, [truth, prediction]."""
    flat = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes**2).reshape(n_classes, n_classes)


def ua_wa(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[float, float]:
    """UA (mean recall over the classes in the truth) and WA, as `compute_metrics` scores
    them, without its input checks (for model selection on every validation epoch)."""
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    counts = confusion(y_true, y_pred, n_classes)
    support, hits = counts.sum(axis=1), np.diag(counts)
    present = support > 0
    ua = 100 * (hits[present] / support[present]).mean()
    return float(ua), float(100 * hits.sum() / counts.sum())


def overall_metrics(metrics: Sequence[Metrics], classes: Sequence[str]) -> Metrics:
    """The metrics of all predictions behind `metrics` taken together: those of the
    summed confusion (a run record's "pooled" entry: every fold of every seed at once)."""
    if not metrics:
        raise ValueError("no metrics to take together")
    total = np.sum([np.asarray(m.confusion, dtype=np.int64) for m in metrics], axis=0)
    truth, pred = np.nonzero(total)
    counts = total[truth, pred]
    return compute_metrics(np.repeat(truth, counts), np.repeat(pred, counts), classes)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    if len(values) == 0:
        raise ValueError("mean_std of no values")
    arr = np.asarray(values, dtype=np.float64)
    std = float(np.std(arr, ddof=1)) if len(arr) > 1 else 0.0
    return float(np.mean(arr)), std


def mean_std_text(mean: float, std: float, n: int, decimals: int = 2) -> str:
    """``71.00 ± 1.41`` for a mean over n > 1 values; one value is no spread, so it reads
    ``70.50 (n = 1)``, never ``± 0.00`` (tables and console lines of run results; scores
    that are fractions, such as a CCC, with `decimals` 3)."""
    d = decimals
    return f"{mean:.{d}f} ± {std:.{d}f}" if n > 1 else f"{mean:.{d}f} (n = {n})"


def summarize(results: Sequence[tuple[int, Metrics]]) -> dict[str, Any]:
    """Mean ± std of WA, UA, F1, WF1, micro-F1 and `f1_seen` over (seed, fold metrics)
    pairs: each seed scores the mean over its folds, as the papers report
    leave-one-session-out results, then mean ± sample std over seeds (over the folds of a
    single seed: ``std_over`` says which)."""
    keys = ("wa", "ua", "f1", "wf1", "micro_f1", "f1_seen")
    return over_seeds([(seed, {k: getattr(m, k) for k in keys}) for seed, m in results])


def over_seeds(results: Sequence[tuple[int, Mapping[str, float]]]) -> dict[str, Any]:
    """`summarize`'s mean ± std of every score of (seed, {score: value}) pairs, the
    scores of the first pair in its order: each seed's mean over its folds, then mean ±
    sample std over seeds (one seed: over its folds)."""
    if not results:
        raise ValueError("nothing to summarize")
    seeds = sorted({seed for seed, _ in results})
    if len(seeds) > 1:
        groups = [[m for s, m in results if s == seed] for seed in seeds]
    else:  # each fold its own value
        groups = [[m] for _, m in results]
    over = "seeds" if len(seeds) > 1 else "folds"
    summary: dict[str, Any] = {"seeds": len(seeds), "std_over": over, "n": len(groups)}
    for key in results[0][1]:
        values = [float(np.mean([m[key] for m in group])) for group in groups]
        summary[key], summary[f"{key}_std"] = mean_std(values)
    return summary
