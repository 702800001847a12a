"""`CategoricalHead`: one class of a fixed set per utterance, a softmax over its outputs.

Its gold is the class's index ([N, 1], NaN: none), its loss the cross-entropy over the
items with gold, its metrics the category's (`ser.heads.metrics`: WA, UA, macro and
weighted F1, per-class recall, the confusion), pooled over folds by summing confusions.

>>> import torch
>>> out = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
>>> gold = torch.tensor([[0.0], [1.0], [float("nan")]])
>>> round(class_loss(out, gold).item(), 4)  # the third item has no gold
0.1269
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser import Json
from ser.heads.base import Head
from ser.heads.metrics import Metrics, compute_metrics, overall_metrics

if TYPE_CHECKING:  # torch loads where a head trains or predicts, matplotlib for plots only
    import torch
    from matplotlib.figure import Figure

#: The scores a categorical head's record and report columns hold.
KEYS = ("wa", "ua", "f1", "wf1")


class CategoricalHead(Head[Metrics]):
    """A class of `classes` per item; validation selects on `score_key`."""

    score_key: ClassVar[str | None] = "ua"
    score_name: ClassVar[str] = "UA"
    scale: ClassVar[float] = 100.0
    probabilities: ClassVar[bool] = True
    classes: tuple[str, ...] = ()

    def width(self, n_classes: int) -> int:
        return len(self.classes)

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        return self.classes

    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        return class_loss(out, gold)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out.float().softmax(-1)

    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> Metrics:
        has = np.isfinite(gold[:, 0])
        y_true = gold[has, 0].astype(np.int64)
        return compute_metrics(y_true, pred[has].argmax(-1), names)

    def score(self, metrics: Metrics) -> float:
        value = float(getattr(metrics, self.score_key or "ua"))
        return -np.inf if np.isnan(value) else value

    def flat(self, metrics: Metrics) -> dict[str, float]:
        return {f"{self.name}_{k}": getattr(metrics, k) for k in KEYS}

    def pool(self, folds: Sequence[Metrics]) -> Metrics:
        return overall_metrics(folds, list(folds[0].per_class_recall))

    def read(self, held: Mapping[str, Json], where: str) -> Metrics:
        return Metrics.from_json(held, where)

    def write(self, metrics: Metrics) -> dict[str, Json]:
        return metrics.to_json()

    def plot(self, fig: Figure, pooled: Metrics, title: str) -> bool:
        """The pooled confusion matrix, as the category's (`<run>_<head>.png`)."""
        from sklearn.metrics import ConfusionMatrixDisplay  # plots only: ~1 s to import

        matrix = np.asarray(pooled.confusion, dtype=np.int64)
        names = list(pooled.per_class_recall)
        fig.set_size_inches(1.2 * len(names) + 2.5, 1.2 * len(names) + 2.0)
        ax = fig.add_subplot()
        display = ConfusionMatrixDisplay(confusion_matrix=matrix, display_labels=names)
        display.plot(ax=ax, values_format="d", colorbar=False, cmap="Blues")
        scores = f"pooled {self.name} UA {pooled.ua:.2f}  WF1 {pooled.wf1:.2f}"
        ax.set_title(f"{title}, n={int(matrix.sum())}\n{scores}", fontsize=9)
        fig.tight_layout()
        return True

    def gold_text(self, gold: np.ndarray, names: Sequence[str]) -> str:
        return names[int(gold[0])] if np.isfinite(gold).all() else ""

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        probabilities = {n: round(float(v), 4) for n, v in zip(names, pred, strict=True)}
        return {self.name: names[int(np.argmax(pred))], f"{self.name}_probs": probabilities}


def class_loss(out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """out [..., W], gold [..., 1] (a class index; NaN: none) -> the mean cross-entropy
    over the items with gold (0 with none)."""
    import torch

    has = gold[..., 0].isfinite()  # [...]
    index = gold[..., 0].nan_to_num(0.0).long().clamp(0, out.shape[-1] - 1)
    nll = -out.float().log_softmax(-1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return torch.where(has, nll, 0.0).sum() / has.sum().clamp_min(1)


def class_gold(codes: Sequence[str], index_of: Callable[[str], int | None]) -> np.ndarray:
    """[N, 1] float64 the class index `index_of(code)` of each code (None: NaN)."""
    found = [index_of(c) for c in codes]
    return np.array([[np.nan if i is None else float(i)] for i in found]).reshape(-1, 1)
