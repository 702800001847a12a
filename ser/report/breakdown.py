"""Runs' test predictions broken down by class or by speaker (`ser report --by`).

Read from each run's predictions.csv (`ser.report.predictions`): every fold's rows of
every seed pooled, as the main table's pooled scores are (an utterance counts once per
seed). By class: each run's recall of the class (percent) beside its support. By
speaker: each run's UA and WA on the speaker's utterances, UA over the classes the
speaker has (a speaker's own class balance differs from the corpus's).

>>> import numpy as np
>>> from ser.report.predictions import PredictionTable
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

from ser.errors import ConfigError
from ser.report.metrics import compute_metrics
from ser.report.predictions import PREDICTIONS, PredictionTable, missing_folds, read_predictions
from ser.report.runs import ReportError, load_run, markdown_table, run_label

BY = ("class", "speaker")
LEGEND = {
    "class": "recall (percent) of each class over every fold's test predictions of every "
    "seed; n: its test utterances in any of the runs.",
    "speaker": "UA / WA (percent) over the speaker's test predictions of every seed; UA "
    "over the classes the speaker has; n: the speaker's test utterances in any of the "
    "runs; -: a run that did not test the speaker.",
}
Labelled = tuple[str, PredictionTable]  # a run's label and its predictions


def run_predictions(run_dir: Path) -> Labelled:
    """A run's label (as the main table names it) and its predictions.csv; a run without
    one, or with folds the file lacks (trained before predictions were kept), is a
    `ReportError` that says to train it again."""
    run = load_run(run_dir)
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
    classes = {t.classes for _, t in runs}
    if len(classes) != 1:
        raise ReportError("runs of different label sets cannot share a breakdown table")
    keys = list(runs[0][1].classes) if by == "class" else _speakers(runs)
    rows = []
    for key in keys:
        picked = [_rows(t, by, key) for _, t in runs]  # each run's rows of the key
        rows.append([key, _support(picked), *_scores(picked, by, key, fmt)])
    labels = [label for label, _ in runs]
    if by == "class":
        header = ["class", "n", *labels]
    elif fmt == "md":
        header = ["speaker", "n", *(f"{label} UA / WA" for label in labels)]
    else:
        header = ["speaker", "n", *(f"{label} {s}" for label in labels for s in ("ua", "wa"))]
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
        return buffer.getvalue()
    return "\n".join([*markdown_table(header, rows), "", LEGEND[by]]) + "\n"


def _speakers(runs: Sequence[Labelled]) -> list[str]:
    return sorted(set().union(*(set(t.speaker.tolist()) for _, t in runs)))


def _rows(table: PredictionTable, by: str, key: str) -> PredictionTable:
    column = table.gold if by == "class" else table.speaker
    wanted = table.classes.index(key) if by == "class" else key
    return table.take(column == wanted)


def _support(picked: Sequence[PredictionTable]) -> str:
    """Test utterances of the class or speaker, distinct, in any of the runs."""
    return str(len(set().union(*(t.utt_id.tolist() for t in picked))))


def _scores(picked: Sequence[PredictionTable], by: str, key: str, fmt: str) -> list[str]:
    cells: list[str] = []
    for rows in picked:
        if not len(rows):
            cells += ["-" if fmt == "md" else ""] * (1 if by == "class" or fmt == "md" else 2)
            continue
        m = compute_metrics(rows.gold, rows.pred, rows.classes)
        if by == "class":
            cells.append(f"{m.per_class_recall[key]:.2f}")
        elif fmt == "md":
            cells.append(f"{m.ua:.2f} / {m.wa:.2f}")
        else:
            cells += [f"{m.ua:.2f}", f"{m.wa:.2f}"]
    return cells
