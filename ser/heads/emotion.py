"""The emotion category: a class of the run's class set (`--classes`) per utterance.

Its outputs are the class set's logits; its loss the family's own (`category`: the
cross-entropy or a family's perspective loss, with `--class-weights` and `--labels soft`:
`ser.models.base.SerModel.class_loss`); validation selects on UA; its metrics WA, UA,
macro F1 and weighted F1 (`ser.heads.metrics`), kept in a fold entry's ``metrics``
unprefixed (``wa``, ``ua``, ...), as every record has held them. What `ser report` shows
of it is `ser.heads.emotion_report`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser import Json
from ser.corpus.labels import LabelSet
from ser.errors import ReportError
from ser.heads import emotion_report as report
from ser.heads.base import BatchView, GoldSource, Side, TablePart
from ser.heads.categorical import KEYS, CategoricalHead, class_gold
from ser.heads.metrics import Metrics, compute_metrics, ua_wa
from ser.heads.predicted import Column, Part
from ser.heads.reported import EntryView, Paired, RecordView, Reported, SummaryValue, TableView

if TYPE_CHECKING:  # torch loads where a head trains or predicts, matplotlib for plots only
    import torch
    from matplotlib.figure import Figure

#: Its numbers in `ser train --json`'s summary and folds.
JSON_KEYS = ("wa", "ua", "f1")
#: Why utterances of labels outside the class set are dropped (`TrainData.dropped`).
OUTSIDE = "label outside class set"


@dataclass(frozen=True)
class EmotionHead(CategoricalHead):
    """The run's class set; `soft`: trained on the annotators' vote distributions."""

    name: ClassVar[str] = "emotion"
    category: ClassVar[bool] = True
    always_shown: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("class", "speaker")
    json_keys: ClassVar[tuple[str, ...]] = (*JSON_KEYS, "wa_std", "ua_std")
    soft: bool = False

    def width(self, n_classes: int) -> int:
        return n_classes

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        return tuple(classes)

    def gold(self, source: GoldSource) -> np.ndarray:
        codes = np.asarray(source.store.manifest.column("label")).astype(str)
        return class_gold(list(codes), source.label_set.index_of)

    def evaluate(self, side: Side) -> Metrics:
        """The classes the device decided (the logits' argmax), scored."""
        return compute_metrics(*side.decided, side.names)

    def validate(self, side: Side) -> tuple[dict[str, float], float]:
        """UA and WA alone, every epoch: no input checks, no F1 (``val_ua``, ``val_wa``)."""
        ua, wa = ua_wa(*side.decided, len(side.names))
        return {"val_ua": ua, "val_wa": wa}, ua

    def missing(self, label_set: LabelSet) -> str:
        return f"{OUTSIDE} {label_set.name}"

    def wanted(self, label_set: LabelSet) -> str:
        return f"class set {label_set.name}"

    def batch_gold(self, batch: BatchView) -> torch.Tensor:
        import torch

        labels = batch.labels.unsqueeze(-1)  # [..., 1], -100: none
        return torch.where(labels >= 0, labels.float(), torch.nan)

    def flat(self, metrics: Metrics) -> dict[str, float]:
        return {k: getattr(metrics, k) for k in KEYS}

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        return {"label": names[int(np.argmax(pred))]}

    def table_part(self, side: Side) -> TablePart:
        """predictions.csv's ``gold``, ``pred`` (the classes the device decided) and
        ``p_<class>`` columns."""
        return TablePart(gold=side.decided[0], pred=side.decided[1], probs=side.pred)

    # --- `ser predict` (ser.heads.predicted): its label, then each class's probability;
    # a run without the category writes it with no classes: no columns, and the JSON's
    # keys ser predict has always written, empty.

    def predict_columns(self, names: Sequence[str], as_csv: bool) -> list[Column]:
        label = [Column("label" if as_csv else "class")] if names else []
        return [*label, *(Column(c, right=True) for c in names)]

    def predict_cells(self, part: Part | None, names: Sequence[str], as_csv: bool) -> list[Any]:
        if not names:
            return []
        if part is None:
            return ["" if as_csv else "[red]failed[/red]", *[""] * len(names)]
        values = part.named()
        shown = [values[c] if as_csv else f"{values[c]:.3f}" for c in names]
        return [self.fields(part.values, names)["label"], *shown]

    def predict_fails(self, names: Sequence[str]) -> bool:
        return bool(names)

    def predict_run(self, names: Sequence[str]) -> dict[str, Json]:
        return {}  # the run's classes lead the JSON object (`PredictResult.classes`)

    def predict_json(self, part: Part | None, names: Sequence[str]) -> dict[str, Any]:
        if part is None:
            return {"label": None, "probabilities": {}}
        return {"label": self.fields(part.values, names)["label"], "probabilities": part.named()}

    def stream_json(self, part: Part | None, names: Sequence[str]) -> dict[str, Any]:
        if not names:
            return {}
        made = self.predict_json(part, names)
        rounded = {c: round(v, 6) for c, v in made["probabilities"].items()}
        return {"class": made["label"], "probabilities": rounded}

    def cue(self, part: Part) -> list[str]:
        label = self.fields(part.values, part.names)["label"]
        return [f"{label} {part.named()[label]:.2f}"]

    # --- `ser train --json`: WA, UA and macro F1, WA's and UA's std over seeds --------

    def json_fold(self, entry: EntryView) -> dict[str, SummaryValue]:
        held = entry.metrics
        return {} if held is None else {k: getattr(held, k) for k in JSON_KEYS}

    # --- `ser report` (ser.heads.emotion_report) -------------------------------------

    @classmethod
    def of_records(cls, runs: Sequence[RecordView]) -> Reported | None:
        return cls() if any(report.scored(run) for run in runs) else None

    @classmethod
    def of_predictions(cls, table: TableView) -> Reported | None:
        return cls() if table.classes else None

    def recorded(self, entry: EntryView) -> Metrics | None:
        return entry.metrics

    def summary(self, run: RecordView, recorded: Mapping[str, Any]) -> dict[str, Any]:
        return report.summary(run, recorded)

    def pooled(self, run: RecordView) -> Metrics | None:
        return report.pooled(run)

    def number(self, metrics: Metrics | None, key: str) -> float | None:
        """A score its metrics hold unprefixed (a record from before WF1 lacks it)."""
        return None if metrics is None or key not in KEYS else metrics.score(key)

    def score_column(self) -> str | None:
        return "ua"

    def console_columns(self) -> tuple[tuple[str, str], ...]:
        return (("ua", "UA"), ("wa", "WA"), ("f1", "F1"))

    def report_header(self, runs: Sequence[RecordView], as_csv: bool) -> list[str]:
        return list(report.CSV_COLUMNS if as_csv else report.MD_COLUMNS)

    def report_cells(
        self, run: RecordView, runs: Sequence[RecordView], summary: Mapping[str, Any], as_csv: bool
    ) -> list[str]:
        return report.cells(run, summary, as_csv)

    def report_legend(self, runs: Sequence[RecordView]) -> str:
        return report.LEGEND

    def breakdown_keys(self, table: TableView, by: str) -> list[str] | None:
        """By class: the run's class set."""
        return list(table.classes) if by == "class" else None

    def breakdown_rows(self, table: TableView, by: str, key: str) -> np.ndarray:
        return np.asarray(table.gold == table.classes.index(key))

    def breakdown_header(self, label: str, by: str, fmt: str) -> list[str]:
        if by == "class":
            return [label]
        return [f"{label} UA / WA"] if fmt == "md" else [f"{label} ua", f"{label} wa"]

    def breakdown_cells(self, rows: TableView, by: str, key: str, fmt: str) -> list[str]:
        return report.breakdown_cells(rows, by, key, fmt)

    def shared(self, a: TableView, b: TableView) -> Reported | None:
        if not b.classes:
            return None
        if a.classes != b.classes:
            raise ReportError(
                "runs of different label sets cannot be compared utterance by utterance"
            )
        return self

    def paired(self, a: TableView, b: TableView, ids: list[str]) -> Paired | None:
        return report.paired(a, b, ids)

    @property
    def plot_name(self) -> str:
        return "confusion"

    def plot_run(self, fig: Figure, run: RecordView, title: str) -> bool:
        return report.plot_confusion(fig, run, title)
