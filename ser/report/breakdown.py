"""Runs' test predictions broken down by class or by speaker (`ser report --by`).

Read from each run's predictions.csv (`ser.runs.predictions`): every fold's rows of
every seed pooled, as the main table's pooled scores are (an utterance counts once per
seed). A row per speaker, or per row a head defines (`Head.breakdown_keys`: the
category's classes, by class); each run's heads that break down so fill its columns
(`Head.breakdown_header`, `Head.breakdown_cells`): by class the category's recall of the
class (percent) beside its support; by speaker its UA and WA on the speaker's utterances,
UA over the classes the speaker has (a speaker's own class balance differs from the
corpus's), and the attributes' CCC of each attribute on them. A run none of whose heads
breaks down so keeps one column, "-" (a run on attributes alone, by class); a head with no
breakdown at all is named under the table.

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
from ser.heads.recorded import table_heads
from ser.heads.reported import Reported
from ser.report.runs import ReportError, load_run, markdown_table, run_label
from ser.runs.predictions import (
    PREDICTIONS,
    PredictionTable,
    missing_folds,
    read_predictions,
    uneven_folds,
)
from ser.runs.record import RunRecord

BY = ("class", "speaker")
LEGEND = {
    "class": "recall (percent) of each class over every fold's test predictions of every "
    "seed; n: its test utterances in any of the runs.",
    "speaker": "UA / WA (percent) over the speaker's test predictions of every seed; UA "
    "over the classes the speaker has; n: the speaker's test utterances in any of the "
    "runs; -: a run that did not test the speaker.",
}
NONE = {
    "class": "--by class breaks down classes: none of the runs has any",
    "speaker": "--by speaker: none of the runs has a head that breaks down by speaker",
}
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
    if uneven := uneven_folds(run, table):
        raise ReportError(
            f"{path}: damaged, its rows differ from the run's record "
            f"({'; '.join(uneven.values())}); "
            f"train the run again with --overwrite to write it anew"
        )
    return run_label(run), table


def breakdown_table(runs: Sequence[Labelled], by: str, fmt: str = "md") -> str:
    """One row per class (label-set order) or speaker (sorted), a column per run and head."""
    if by not in BY:
        raise ReportError(f"unknown breakdown {by!r}: choose one of {', '.join(BY)}")
    if len({t.classes for _, t in runs if t.classes}) > 1:  # a run on attributes: none
        raise ReportError("runs of different label sets cannot share a breakdown table")
    heads = [table_heads(t) for _, t in runs]
    if not any(by in h.breakdowns for run in heads for h in run):
        raise ReportError(NONE[by])
    keys = _speakers(runs) if by == "speaker" else _keys(runs, heads, by)
    rows = []
    for key in keys:
        picked = [_rows(t, h, by, key) for (_, t), h in zip(runs, heads, strict=True)]
        cells = [
            c for h, part in zip(heads, picked, strict=True) for c in _cells(h, part, by, key, fmt)
        ]
        rows.append([key, _support(picked), *cells])
    columns = [
        c for (label, _), h in zip(runs, heads, strict=True) for c in _header(label, h, by, fmt)
    ]
    header = [by, "n", *columns]
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
        return buffer.getvalue()
    shown = dict.fromkeys(h for run in heads for h in run if by in h.breakdowns)
    legend = LEGEND[by] + "".join(dict.fromkeys(h.breakdown_legend(by) for h in shown))
    if names := left_out(runs):
        legend += f" Not broken down: {', '.join(names)} (the head has no --by breakdown)."
    return "\n".join([*markdown_table(header, rows), "", legend]) + "\n"


def left_out(runs: Sequence[Labelled]) -> tuple[str, ...]:
    """The heads of `runs` that have no breakdown (`Head.breakdowns` empty)."""
    heads = (h for _, t in runs for h in table_heads(t))
    return tuple(dict.fromkeys(h.name for h in heads if not h.breakdowns))


def _keys(runs: Sequence[Labelled], heads: Sequence[Sequence[Reported]], by: str) -> list[str]:
    """The rows the runs' heads define of `by` (the category's classes, by class)."""
    found = [
        keys
        for (_, t), run in zip(runs, heads, strict=True)
        for h in run
        if (keys := h.breakdown_keys(t, by)) is not None
    ]
    if not found:
        raise ReportError(NONE.get(by, f"--by {by}: none of the runs' heads defines its rows"))
    return found[0]


def _header(label: str, heads: Sequence[Reported], by: str, fmt: str) -> list[str]:
    """A run's columns: each of its heads' that break down by `by`; none: one, its own."""
    columns = [c for h in heads if by in h.breakdowns for c in h.breakdown_header(label, by, fmt)]
    return columns or [label]


def _speakers(runs: Sequence[Labelled]) -> list[str]:
    return sorted(set().union(*(set(t.speaker.tolist()) for _, t in runs)))


def _rows(table: PredictionTable, heads: Sequence[Reported], by: str, key: str) -> PredictionTable:
    """The run's rows of the key: the speaker's, or those its heads put under it."""
    if by == "speaker":
        return table.take(table.speaker == key)
    for head in heads:
        if head.breakdown_keys(table, by) is not None:
            return table.take(head.breakdown_rows(table, by, key))
    return table.take(np.zeros(len(table), dtype=bool))


def _support(picked: Sequence[PredictionTable]) -> str:
    """Test utterances of the class or speaker, distinct, in any of the runs."""
    return str(len(set().union(*(t.utt_id.tolist() for t in picked))))


def _cells(
    heads: Sequence[Reported], rows: PredictionTable, by: str, key: str, fmt: str
) -> list[str]:
    """A run's cells under `_header`: "-" (CSV: empty) where it has no rows of the key or
    no head that breaks down by `by`."""
    shown = [h for h in heads if by in h.breakdowns] if len(rows) else []
    cells = [c for h in shown for c in h.breakdown_cells(rows, by, key, fmt)]
    return cells or ["-" if fmt == "md" else ""] * len(_header("", heads, by, fmt))
