"""Runs' test predictions broken down by class or by speaker (`ser report --by`).

Read from each run's predictions.csv (`ser.runs.predictions`): every fold's rows of
every seed pooled, as the main table's pooled scores are (an utterance counts once per
seed). By class: each run's recall of the class (percent) beside its support. By
speaker: each run's UA and WA on the speaker's utterances, UA over the classes the
speaker has (a speaker's own class balance differs from the corpus's), and for a run
trained on emotion attributes the CCC of each attribute on them. A run trained on
attributes alone has no classes: `--by class` leaves it out ("-").

>>> import numpy as np
>>> from ser.runs.predictions import PredictionTable
>>> t = PredictionTable.of(("neu", "ang"), 0, "f1", ["a", "b", "c"], ["F", "F", "M"],
...                        [0, 1, 2], [0, 1, 1], [0, 0, 1], np.eye(2)[[0, 0, 1]])
>>> print(breakdown_table([("run", t)], "class", "csv"), end="")
class,n,run
neu,1,100.00
ang,2,50.00
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.errors import ConfigError
from ser.heads.attribute_metrics import attribute_metrics
from ser.heads.metrics import compute_metrics
from ser.report.runs import ReportError, load_run, markdown_table, run_label
from ser.runs.predictions import PREDICTIONS, PredictionTable, missing_folds, read_predictions
from ser.runs.record import RunRecord

BY = ("class", "speaker")
LEGEND = {
    "class": "recall (percent) of each class over every fold's test predictions of every "
    "seed; n: its test utterances in any of the runs.",
    "speaker": "UA / WA (percent) over the speaker's test predictions of every seed; UA "
    "over the classes the speaker has; n: the speaker's test utterances in any of the "
    "runs; -: a run that did not test the speaker.",
}
ATTRIBUTES_LEGEND = (
    " CCC: each attribute's concordance correlation over the speaker's test predictions "
    "of every seed (those with a gold value)."
)
Labelled = tuple[str, PredictionTable]  # a run's label and its predictions


def run_predictions(run_dir: Path, run: RunRecord | None = None) -> Labelled:
    """A run's label (as the main table names it) and its predictions.csv (`run`: its
    record, read already; None: read here); a run without one, or with folds the file
    lacks (trained before predictions were kept), is a `ReportError` that says to train it
    again."""
    run = run or load_run(run_dir)
    path = (run_dir if run_dir.is_dir() else run_dir.parent) / PREDICTIONS
    again = f"train it again with --overwrite to keep them ({path})"
    if not path.exists():
        raise ReportError(f"run {run.name!r} kept no per-utterance predictions; {again}")
    try:
        table = read_predictions(path)
    except ConfigError as e:
        raise ReportError(str(e)) from e
    if missing := missing_folds(run, table):
        named = ", ".join(f"seed {s} {f}" for s, f in missing)
        raise ReportError(f"run {run.name!r} has no predictions of {named}; {again}")
    return run_label(run), table


def breakdown_table(runs: Sequence[Labelled], by: str, fmt: str = "md") -> str:
    """One row per class (label-set order) or speaker (sorted), a column per run."""
    if by not in BY:
        raise ReportError(f"unknown breakdown {by!r}: choose one of {', '.join(BY)}")
    classes = {t.classes for _, t in runs if t.classes}  # a run on attributes alone: none
    if len(classes) > 1:
        raise ReportError("runs of different label sets cannot share a breakdown table")
    if by == "class" and not classes:
        raise ReportError("--by class breaks down classes: none of the runs has any")
    keys = list(next(iter(classes))) if by == "class" else _speakers(runs)
    rows = []
    for key in keys:
        picked = [_rows(t, by, key) for _, t in runs]  # each run's rows of the key
        cells = [c for (_, t), part in zip(runs, picked, strict=True)
                 for c in _cells(t, part, by, key, fmt)]  # fmt: skip
        rows.append([key, _support(picked), *cells])
    header = [by, "n", *(h for label, t in runs for h in _heads(label, t, by, fmt))]
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
        return buffer.getvalue()
    legend = LEGEND[by] + (ATTRIBUTES_LEGEND if by == "speaker" and _any_attributes(runs) else "")
    return "\n".join([*markdown_table(header, rows), "", legend]) + "\n"


def _any_attributes(runs: Sequence[Labelled]) -> bool:
    return any(t.attributes for _, t in runs)


def _heads(label: str, table: PredictionTable, by: str, fmt: str) -> list[str]:
    """A run's columns: its recall of the class; by speaker UA / WA where it has
    classes, CCC where it has attributes (CSV: a column each)."""
    if by == "class":
        return [label]
    heads = []
    if table.classes:
        heads += [f"{label} UA / WA"] if fmt == "md" else [f"{label} ua", f"{label} wa"]
    if table.attributes:
        if fmt == "md":
            heads.append(f"{label} CCC {' / '.join(table.attributes)}")
        else:
            heads += [f"{label} ccc_{name}" for name in table.attributes]
    return heads


def _speakers(runs: Sequence[Labelled]) -> list[str]:
    return sorted(set().union(*(set(t.speaker.tolist()) for _, t in runs)))


def _rows(table: PredictionTable, by: str, key: str) -> PredictionTable:
    if by == "class" and not table.classes:
        return table.take(np.zeros(len(table), dtype=bool))
    column = table.gold if by == "class" else table.speaker
    wanted = table.classes.index(key) if by == "class" else key
    return table.take(column == wanted)


def _support(picked: Sequence[PredictionTable]) -> str:
    """Test utterances of the class or speaker, distinct, in any of the runs."""
    return str(len(set().union(*(t.utt_id.tolist() for t in picked))))


def _cells(table: PredictionTable, rows: PredictionTable, by: str, key: str, fmt: str) -> list[str]:
    """A run's cells under `_heads`: "-" (CSV: empty) where it has no rows of the key."""
    width = len(_heads("", table, by, fmt))
    if not len(rows):
        return ["-" if fmt == "md" else ""] * width
    cells: list[str] = []
    if table.classes:
        m = compute_metrics(rows.gold, rows.pred, rows.classes)
        if by == "class":
            cells.append(f"{m.per_class_recall[key]:.2f}")
        elif fmt == "md":
            cells.append(f"{m.ua:.2f} / {m.wa:.2f}")
        else:
            cells += [f"{m.ua:.2f}", f"{m.wa:.2f}"]
    if table.attributes and by == "speaker":
        scores = attribute_metrics(rows.attr_gold, rows.attr_pred, rows.attributes).scores
        none = "-" if fmt == "md" else ""
        ccc = [none if np.isnan(s.ccc) else f"{s.ccc:.3f}" for s in scores.values()]
        cells += [" / ".join(ccc)] if fmt == "md" else ccc
    return cells
