"""The scores ser reports, for a researcher's own loop (`ser.metrics`): the functions the
trainer scores every run with (`ser.heads.metrics`, `ser.heads.attribute_metrics`), over
labels as names or class indices, in percent as `ser report` shows them.

>>> from ser import metrics
>>> gold, said = ["neu", "hap", "hap", "sad"], ["neu", "hap", "sad", "sad"]
>>> metrics.ua(gold, said), metrics.wa(gold, said)
(83.33333333333334, 75.0)
>>> metrics.confusion(gold, said, classes=["neu", "hap", "sad"]).tolist()
[[1, 0, 0], [0, 1, 1], [0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ser.heads.attribute_metrics import ccc
from ser.heads.metrics import compute_metrics
from ser.heads.metrics import confusion as _confusion

__all__ = ["ccc", "confusion", "f1", "ua", "wa"]

Labels = Sequence[str] | Sequence[int] | np.ndarray


def ua(y_true: Labels, y_pred: Labels, classes: Sequence[str] | None = None) -> float:
    """Unweighted accuracy: the mean recall over the classes in `y_true` (percent)."""
    return compute_metrics(*_indices(y_true, y_pred, classes)).ua


def wa(y_true: Labels, y_pred: Labels, classes: Sequence[str] | None = None) -> float:
    """Weighted accuracy: the share of predictions that are right (percent)."""
    return compute_metrics(*_indices(y_true, y_pred, classes)).wa


def f1(
    y_true: Labels, y_pred: Labels, classes: Sequence[str] | None = None, average: str = "macro"
) -> float:
    """F1 (percent) over the classes in `y_true`: "macro" (their mean) or "weighted" (by
    each one's count)."""
    scored = compute_metrics(*_indices(y_true, y_pred, classes))
    if average not in ("macro", "weighted"):
        raise ValueError(f"average takes 'macro' or 'weighted', got {average!r}")
    return scored.f1 if average == "macro" else scored.wf1


def confusion(y_true: Labels, y_pred: Labels, classes: Sequence[str] | None = None) -> np.ndarray:
    """[C, C] counts, a row per true class and a column per predicted one, in the order of
    `classes` (None: the labels' own, sorted)."""
    true, pred, names = _indices(y_true, y_pred, classes)
    return _confusion(true, pred, len(names))


def _indices(
    y_true: Labels, y_pred: Labels, classes: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Both label lists as class indices, with the class names they index."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.shape != pred.shape or true.ndim != 1 or not len(true):
        raise ValueError(
            f"y_true {true.shape} and y_pred {pred.shape} must be equal, 1-d, not empty"
        )
    if true.dtype.kind in "iu" and pred.dtype.kind in "iu" and classes is None:
        count = int(max(true.max(), pred.max())) + 1
        return true, pred, [str(c) for c in range(count)]
    names = list(classes) if classes is not None else sorted({*map(str, true), *map(str, pred)})
    index = {name: i for i, name in enumerate(names)}
    unknown = [str(v) for v in (*true, *pred) if str(v) not in index]
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not one of the classes {names}")
    return np.array([index[str(v)] for v in true]), np.array([index[str(v)] for v in pred]), names
