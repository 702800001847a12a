"""`Head`: one thing a run predicts, a slice of its model's last layer.

A run trains one shared body and one or more heads (`--target emotion+sentiment`); its
model's last layer is the heads' outputs side by side, in the run's order, each head a
linear read-out of its own (`Targets.split`). A head says, in one file, everything the
trainer, the reports and `ser predict` need of it, so none of them branches on which head
it holds:

- `width`: its outputs given the run's class set (`n_classes`); `names`: what each is;
- `gold`: what it is trained on, read from a store's manifest (or the corpus behind it),
  [N, G] float64 over the manifest's rows, NaN where an utterance has none;
- `loss`: its objective of its outputs [..., W] against that gold [..., G], every item
  without gold left out *with no branch on the data* (the model runs under `vmap`);
- `predict`: its outputs as they are reported (probabilities, values), on the device;
  `bounded`: those predictions held to what the fold's training side spans, if anything;
- `metrics`: pure scores of predictions [N, W] against gold [N, G], of the head's own
  type `S` (a JSON object by default; `read`, `write`: as a fold entry holds it); `score`:
  the one validation selects on (higher is better; `validate`: its curve values every
  epoch, `evaluate`: its test metrics, each of a `Side`: a side's predictions, gold,
  names and the classes the device decided); `flat`: the record's and `ser report`'s columns
  of them; `pool`: the scores of several folds' predictions together; `plot`: its own
  figure for `ser report --plots`, if any;
- `columns` / `cells`: its columns of predictions.csv; `table_part`: its part of them as
  `ser.runs.predictions.PredictionTable` holds it (the category's classes and
  probabilities, the attributes' values, any other head's `columns` and `cells`);
- what `ser predict` writes of it (`ser.heads.predicted`): `fields`, its part of an
  input's row, and its columns, cells and JSON keys, each with a default;
- what `ser report` reads of a run record and shows of it (`ser.heads.reported`): its
  metrics in a fold entry, its summary and pooled metrics, its table columns, its part
  of `--by` and `--paired` and its plots, each with a default.

A new head is a subclass in one file and one `ser.heads.registry.register` line
(tests/heads/test_a_new_head.py defines one in the test).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from ser.corpus.labels import LabelSet
from ser.heads.predicted import Predicted
from ser.heads.reported import Reported, S

if TYPE_CHECKING:  # torch loads where a head trains or predicts, never for a report
    import torch

    from ser.cache.store import FeatureStore


class BatchView(Protocol):
    """A member's batch (`ser.models.batch.Batch`, a layer above heads) as heads read
    their gold from it: the class labels, the attribute targets and their z-score, every
    head's gold by name."""

    @property
    def labels(self) -> torch.Tensor: ...
    @property
    def targets(self) -> torch.Tensor | None: ...
    @property
    def target_mean(self) -> torch.Tensor | None: ...
    @property
    def target_std(self) -> torch.Tensor | None: ...
    @property
    def gold(self) -> Mapping[str, torch.Tensor]: ...


class ScaleView(Protocol):
    """A fold's training side's attribute scale (`ser.train.data.ZScore`, a layer above
    heads) as heads hold predictions to it: its smallest and largest values (None: a
    z-score fitted without a range, which clips nothing)."""

    @property
    def low(self) -> torch.Tensor | None: ...
    @property
    def high(self) -> torch.Tensor | None: ...


@dataclass(frozen=True)
class GoldSource:
    """Where a head reads its gold: a store (its `manifest`, its `path`, its `attrs`),
    the run's class set and where the store's corpus lies if it moved (`--corpus-root`)."""

    store: FeatureStore
    label_set: LabelSet
    root: Path | None = None


@dataclass(frozen=True)
class Side:
    """A head's predictions of one side of a fold (its validation or test items), as it
    scores and writes them: `pred` [N, W], `gold` [N, G], its outputs' `names`, and
    `decided`: the run's classes as the device decided them, gold and predicted [N] (the
    category scores those)."""

    pred: np.ndarray
    gold: np.ndarray
    names: Sequence[str]
    decided: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TablePart:
    """A head's part of a (seed, fold)'s rows of predictions.csv
    (`ser.runs.predictions.PredictionTable`, whose fields these are): the category's
    classes, gold and predicted [N] (-1: none), and their probabilities [N, C]; the
    attributes' names and their gold (NaN: none) and predictions [N, A]; any other head's
    `columns` (`further`) and their `cells` [N, E] as text. None: the head gives none."""

    gold: np.ndarray | None = None
    pred: np.ndarray | None = None
    probs: np.ndarray | None = None
    attributes: tuple[str, ...] = ()
    attr_gold: np.ndarray | None = None
    attr_pred: np.ndarray | None = None
    further: tuple[str, ...] = ()
    cells: np.ndarray | None = None

    @staticmethod
    def joined(parts: Sequence[TablePart], n: int) -> dict[str, Any]:
        """Every head's parts of `n` rows as one, as `PredictionTable.of`'s keyword
        arguments after the rows: each field the first part's that gives it (one head
        gives each; none: no class, no probabilities, no attributes), the further columns
        side by side."""

        def first(name: str, default: object = None) -> object:
            return next((getattr(p, name) for p in parts if getattr(p, name) is not None), default)

        cells = [p.cells for p in parts if p.cells is not None]
        return {
            "gold": first("gold", np.full(n, -1)),
            "pred": first("pred", np.full(n, -1)),
            "probs": first("probs", np.zeros((n, 0))),
            "attributes": next((p.attributes for p in parts if p.attributes), ()),
            "attr_gold": first("attr_gold"),
            "attr_pred": first("attr_pred"),
            "further": tuple(c for p in parts for c in p.further),
            "cells": np.concatenate([np.zeros((n, 0), dtype=str), *cells], axis=1),
        }


class Head(Reported[S], Predicted, ABC):
    """One target; subclasses set `name` (its `--target` spelling) and `score_name`; `S`:
    the type of its metrics."""

    name: ClassVar[str]
    #: What validation selects on, as the progress lines name it ("UA", "CCC", "WF1").
    score_name: ClassVar[str]
    #: It is the run's category: its outputs the class set's, its gold the batch's
    #: `labels`, and the family's own objective stands for `loss` (a family's perspective
    #: loss, class weights, soft labels: `ser.models.base.SerModel.class_loss`).
    category: ClassVar[bool] = False
    #: Its outputs are the category's classes: a run trains it beside the category only
    #: (`ser.heads.targets.Targets.parse` refuses it alone).
    of_the_classes: ClassVar[bool] = False
    #: The `metrics` key `score` reads, where it is one (the ``<name>_<key>`` of `flat`
    #: that tables show beside the category's); None: none.
    score_key: ClassVar[str | None] = None
    #: What `score` is out of (a percentage: 100), to put several heads' on one scale.
    scale: ClassVar[float] = 1.0
    #: Its curve value's name every epoch (`validate`); None: ``val_<name>``.
    curve: ClassVar[str | None] = None
    #: Its loss's weight beside the other heads'.
    weight: float = 1.0

    @abstractmethod
    def width(self, n_classes: int) -> int:
        """Its outputs in the model's last layer, given the run's class set's size."""

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        """What each output is (a class, an attribute), `width` of them."""
        return tuple(classes)

    @abstractmethod
    def gold(self, source: GoldSource) -> np.ndarray:
        """[N, G] float64 over the manifest's rows; NaN: no gold (left out of the loss)."""

    @abstractmethod
    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """out [..., W], gold [..., G] -> a scalar, the mean over the items with gold."""

    #: Its outputs are a distribution's logits: a family fusing heads' outputs
    #: (`ser.models.late_prob`) reads their softmax.
    probabilities: ClassVar[bool] = False
    #: Its constructor's options, each a `ser.heads.targets.Targets` field of that name
    #: (`ser.heads.registry.head_of` hands them over).
    options: ClassVar[tuple[str, ...]] = ()

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """out [..., W] -> what is reported of it [..., W] (float32)."""
        return out.float()

    def bounded(self, pred: np.ndarray, scale: ScaleView | None) -> np.ndarray:
        """Its predictions [N, W] as they are scored and written, given the training
        side's attribute scale (`ser.train.data.ZScore`; None: the run fitted none):
        unchanged by default."""
        return pred

    @abstractmethod
    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> S:
        """Scores of predictions [N, W] against gold [N, G] (NaN rows left out)."""

    def evaluate(self, side: Side) -> S:
        """Its test metrics: `metrics` of the side's predictions by default."""
        return self.metrics(side.pred, side.gold, side.names)

    def validate(self, side: Side) -> tuple[dict[str, float], float]:
        """A validation side's curve values (`curve`: its score, NaN for none) and its
        `score`, after every epoch."""
        score = self.score(self.metrics(side.pred, side.gold, side.names))
        return {self.curve or f"val_{self.name}": score if np.isfinite(score) else np.nan}, score

    @abstractmethod
    def score(self, metrics: S) -> float:
        """What validation selects on (higher is better; NaN counts as the worst)."""

    @abstractmethod
    def flat(self, metrics: S) -> dict[str, float]:
        """The record's and `ser report`'s numbers of `metrics`, keys prefixed with the
        head's name."""

    @abstractmethod
    def pool(self, folds: Sequence[S]) -> S:
        """The metrics of several folds' predictions taken together."""

    def missing(self, label_set: LabelSet) -> str:
        """Why an utterance without its gold is left out of a run it leads."""
        return f"no {self.name} value"

    def wanted(self, label_set: LabelSet) -> str:
        """What a run it leads trains on, in a sentence's words."""
        return self.name

    def columns(self, names: Sequence[str]) -> list[str]:
        """Its columns of predictions.csv: gold, then each output's prediction."""
        return [f"{self.name}_gold", *(f"{self.name}_{n}" for n in names)]

    def cells(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> list[list[str]]:
        """Its cells of predictions.csv, a row per item: pred [N, W], gold [N, G]."""
        return [
            [self.gold_text(g, names), *(f"{v:.6g}" for v in p)]
            for p, g in zip(pred, gold, strict=True)
        ]

    def table_part(self, side: Side) -> TablePart:
        """Its part of predictions.csv's rows (`TablePart`): its `columns` and `cells` by
        default."""
        own = self.columns(side.names)
        found = np.asarray(self.cells(side.pred, side.gold, side.names), dtype=str)
        return TablePart(further=tuple(own), cells=found.reshape(len(side.pred), len(own)))

    def gold_text(self, gold: np.ndarray, names: Sequence[str]) -> str:
        """One item's gold [G] as predictions.csv writes it ("": none)."""
        return " ".join(f"{v:.6g}" for v in gold) if np.isfinite(gold).all() else ""

    def batch_gold(self, batch: BatchView) -> torch.Tensor:
        """Its gold in a member's batch (`ser.models.batch.Batch.gold`) [..., G], as
        `gold` read it (NaN: none, padding too)."""
        return batch.gold[self.name]

    def trained_gold(self, batch: BatchView) -> torch.Tensor:
        """What its loss compares its outputs with [..., G]: `batch_gold` by default."""
        return self.batch_gold(batch)

    def reported(self, out: torch.Tensor, batch: BatchView) -> torch.Tensor:
        """Its outputs [..., W] as predictions hold them: `predict`'s by default."""
        return self.predict(out)
