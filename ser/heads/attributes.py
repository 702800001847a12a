"""Emotion attributes (arousal, valence, dominance: `ATTRIBUTES`) as numbers, and their
losses.

The head's outputs are its attributes' predictions on a normalised scale, the training
side's z-score of the corpus's values (the batch's `target_mean`, `target_std`); the loop
maps them back to the corpus's scale. Its loss is 1 - CCC per attribute, averaged over
the attributes (Lin's concordance correlation coefficient over the batch, as the
MSP-Podcast challenge's baseline trains), or the mean squared error (`--attribute-loss
mse`). Items without a value for an attribute (NaN) are left out of that attribute's
term, with no branch on the data (the model runs under `vmap`). Validation selects on the
mean CCC; its metrics are CCC, Pearson's r and MAE per attribute
(`ser.heads.attribute_metrics`), kept in a fold entry's ``attributes``; what `ser
report` shows of them is `ser.heads.attribute_report`'s.

>>> import torch
>>> gold = torch.tensor([[1.0], [2.0], [3.0], [float("nan")]])
>>> round(ccc_loss(gold.nan_to_num(0.0), gold).item(), 4)  # a perfect prediction
0.0
>>> round(ccc_loss(torch.zeros(4, 1), gold).item(), 4)  # a constant one: CCC 0
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser import Json
from ser.corpus.labels import LabelSet
from ser.corpus.records import ATTRIBUTES
from ser.heads import attribute_report as report
from ser.heads.attribute_metrics import (
    MEAN,
    AttributeMetrics,
    attribute_metrics,
    overall_attribute_metrics,
)
from ser.heads.base import BatchView, GoldSource, Head, ScaleView, Side, TablePart
from ser.heads.predicted import Column, Part
from ser.heads.reported import EntryView, Paired, RecordView, Reported, SummaryValue, TableView

if TYPE_CHECKING:  # torch loads where a head trains or predicts, matplotlib for plots only
    import torch
    from matplotlib.figure import Figure

    from ser.cache.manifest import Manifest

ATTRIBUTE_LOSSES = ("ccc", "mse")
#: Keeps a CCC's denominator away from 0 (a constant batch of gold and predictions).
EPS = 1e-8


@dataclass(frozen=True)
class AttributeHead(Head[AttributeMetrics]):
    """The attributes `attributes` (in `ATTRIBUTES` order), trained with `loss_name`."""

    name: ClassVar[str] = "attributes"
    score_name: ClassVar[str] = "CCC"
    #: Validation's curve of the mean CCC, as records have always named it.
    curve: ClassVar[str | None] = "val_ccc"
    decimals: ClassVar[int] = 3
    breakdowns: ClassVar[tuple[str, ...]] = ("speaker",)
    plots_predictions: ClassVar[bool] = True
    json_keys: ClassVar[tuple[str, ...]] = (MEAN, f"{MEAN}_std")
    attributes: tuple[str, ...] = ATTRIBUTES
    loss_name: str = "ccc"
    weight: float = 1.0

    def width(self, n_classes: int) -> int:
        return len(self.attributes)

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        return self.attributes

    def gold(self, source: GoldSource) -> np.ndarray:
        return attribute_values(source.store.manifest, self.attributes)

    def missing(self, label_set: LabelSet) -> str:
        return f"no {'/'.join(self.attributes)} value"

    def wanted(self, label_set: LabelSet) -> str:
        return "attributes" if self.attributes == ATTRIBUTES else "+".join(self.attributes)

    def batch_gold(self, batch: BatchView) -> torch.Tensor:
        if batch.targets is None:
            raise ValueError("a model with attribute targets needs batches with targets")
        return batch.targets  # [..., A] on the corpus's scale

    def trained_gold(self, batch: BatchView) -> torch.Tensor:
        if batch.target_mean is None or batch.target_std is None:
            raise ValueError("a model with attribute targets needs batches with targets")
        return (self.batch_gold(batch) - batch.target_mean) / batch.target_std  # normalised

    def reported(self, out: torch.Tensor, batch: BatchView) -> torch.Tensor:
        """On the corpus's scale (the training side's z-score undone)."""
        if batch.target_mean is None or batch.target_std is None:
            return out.float()
        return out.float() * batch.target_std + batch.target_mean  # [..., A]

    def bounded(self, pred: np.ndarray, scale: ScaleView | None) -> np.ndarray:
        """Clipped to the training side's range (`scale.low`, `scale.high` [A]): a
        prediction outside every rating the corpus gave is certainly off (an input far
        from the training side's, say), and the MSP-Podcast challenge's own scripts clip
        alike."""
        if scale is None or scale.low is None or scale.high is None or not pred.size:
            return pred
        return np.clip(pred, scale.low.cpu().numpy(), scale.high.cpu().numpy())

    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        return attribute_loss(out, gold, self.loss_name)

    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> AttributeMetrics:
        return attribute_metrics(gold, pred, names)

    def score(self, metrics: AttributeMetrics) -> float:
        value = metrics.ccc_mean
        return -math.inf if math.isnan(value) else value

    def flat(self, metrics: AttributeMetrics) -> dict[str, float]:
        return metrics.flat()

    def pool(self, folds: Sequence[AttributeMetrics]) -> AttributeMetrics:
        return overall_attribute_metrics(folds)

    def read(self, held: Mapping[str, Json], where: str) -> AttributeMetrics:
        return AttributeMetrics.from_json(held, where)

    def write(self, metrics: AttributeMetrics) -> dict[str, Json]:
        return metrics.to_json()

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        return {"attributes": {n: round(float(v), 4) for n, v in zip(names, pred, strict=True)}}

    def table_part(self, side: Side) -> TablePart:
        """predictions.csv's ``gold_<name>, pred_<name>`` columns, on the corpus's scale."""
        return TablePart(attributes=tuple(side.names), attr_gold=side.gold, attr_pred=side.pred)

    # --- `ser predict` (ser.heads.predicted): each attribute on the corpus's scale -----

    def predict_columns(self, names: Sequence[str], as_csv: bool) -> list[Column]:
        return [Column(a, right=True) for a in names]

    def predict_cells(self, part: Part | None, names: Sequence[str], as_csv: bool) -> list[Any]:
        if part is None:
            return [""] * len(names)
        values = part.named()
        return [values[a] if as_csv else f"{values[a]:.2f}" for a in names]

    def predict_run(self, names: Sequence[str]) -> dict[str, Json]:
        return {"attributes": list(names)}

    def predict_json(self, part: Part | None, names: Sequence[str]) -> dict[str, Any]:
        return {"attributes": {} if part is None else part.named()}

    def stream_json(self, part: Part | None, names: Sequence[str]) -> dict[str, Any]:
        if part is None:
            return {}
        return {"attributes": {a: round(v, 4) for a, v in part.named().items()}}

    def cue(self, part: Part) -> list[str]:
        return [f"{a[0].upper()} {v:.1f}" for a, v in part.named().items()]

    # --- `ser train --json`: the mean CCC, per fold and over seeds ---------------------

    def json_fold(self, entry: EntryView) -> dict[str, SummaryValue]:
        held = entry.attributes
        return {MEAN: math.nan if held is None else held.ccc_mean}

    # --- `ser report` (ser.heads.attribute_report) ------------------------------------

    @classmethod
    def of_records(cls, runs: Sequence[RecordView]) -> Reported | None:
        """The attributes any of `runs` scored."""
        names = report.run_attributes(runs)
        return cls(names) if names else None

    @classmethod
    def of_predictions(cls, table: TableView) -> Reported | None:
        return cls(table.attributes) if table.attributes else None

    def recorded(self, entry: EntryView) -> AttributeMetrics | None:
        return entry.attributes

    def summary(self, run: RecordView, recorded: Mapping[str, Any]) -> dict[str, Any]:
        """Its scores from the folds, where the trainer did not record them."""
        return {} if MEAN in recorded else report.summary(run)

    def pooled(self, run: RecordView) -> AttributeMetrics | None:
        return report.pooled(run)

    def number(self, metrics: AttributeMetrics | None, key: str) -> float | None:
        return None if metrics is None else metrics.flat().get(key)

    def score_column(self) -> str | None:
        return MEAN

    def score_label(self) -> str:
        return "mean CCC"

    def console_columns(self) -> tuple[tuple[str, str], ...]:
        return ((MEAN, "CCC"),)

    def report_header(self, runs: Sequence[RecordView], as_csv: bool) -> list[str]:
        return report.header(self.attributes, as_csv)

    def report_cells(
        self, run: RecordView, runs: Sequence[RecordView], summary: Mapping[str, Any], as_csv: bool
    ) -> list[str]:
        return report.cells(run, self.attributes, as_csv)

    def report_legend(self, runs: Sequence[RecordView]) -> str:
        return report.LEGEND

    def breakdown_header(self, label: str, by: str, fmt: str) -> list[str]:
        return report.breakdown_header(label, self.attributes, fmt) if by == "speaker" else []

    def breakdown_cells(self, rows: TableView, by: str, key: str, fmt: str) -> list[str]:
        return report.breakdown_cells(rows, fmt) if by == "speaker" else []

    def breakdown_legend(self, by: str) -> str:
        return report.BREAKDOWN_LEGEND if by == "speaker" else ""

    def shared(self, a: TableView, b: TableView) -> Reported | None:
        """The attributes both runs have."""
        names = tuple(name for name in a.attributes if name in b.attributes)
        return AttributeHead(names) if names else None

    def paired(self, a: TableView, b: TableView, ids: list[str]) -> Paired | None:
        return report.paired(a, b, self.attributes, ids)

    def plot_predictions(self, fig: Figure, table: TableView, title: str) -> bool:
        return report.plot(fig, table, title)


def attribute_values(manifest: Manifest, names: Sequence[str]) -> np.ndarray:
    """[N, A] float64 the manifest's values of the attributes `names` (NaN: none)."""
    columns = [np.asarray(manifest.column(n), dtype=np.float64) for n in names]
    return np.stack(columns, axis=1) if columns else np.zeros((len(manifest), 0))


def attribute_loss(pred: torch.Tensor, gold: torch.Tensor, loss: str = "ccc") -> torch.Tensor:
    """`pred`, `gold` [..., A] (gold NaN where an item has no value) -> the loss: the
    mean over attributes of 1 - CCC, or the MSE over the items with values."""
    import torch

    flat_pred = pred.reshape(-1, pred.shape[-1]).float()  # [N, A]
    flat_gold = gold.reshape(-1, gold.shape[-1]).float()
    if loss == "mse":
        has = flat_gold.isfinite()
        err = torch.where(has, flat_pred - flat_gold.nan_to_num(0.0), 0.0)
        return err.square().sum() / has.sum().clamp_min(1)
    return ccc_loss(flat_pred, flat_gold)


def ccc_loss(pred: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """[N, A], [N, A] (NaN: no value) -> mean over attributes with 2+ values of 1 - CCC
    (population moments over the items with values); 0 when none has two."""
    has = gold.isfinite()  # [N, A]
    w = has.float()
    n = w.sum(0).clamp_min(1)  # [A]
    g = gold.nan_to_num(0.0)
    mean_p, mean_g = (pred * w).sum(0) / n, (g * w).sum(0) / n  # [A]
    dp, dg = (pred - mean_p) * w, (g - mean_g) * w  # [N, A], 0 where no value
    var_p, var_g, cov = dp.square().sum(0) / n, dg.square().sum(0) / n, (dp * dg).sum(0) / n
    ccc = 2 * cov / (var_p + var_g + (mean_p - mean_g).square() + EPS)  # [A]
    scored = (has.sum(0) >= 2).float()  # [A]
    return ((1 - ccc) * scored).sum() / scored.sum().clamp_min(1)
