"""A run record's emotion-attribute scores, for the trainer's record and its console
table (`ser.train.record`, `ser.commands.train`): what the attribute head reads of a
record (`ser.heads.attribute_report`).
`ser report`'s columns of them are the head's own (`Head.report_header`). A run trained
on attributes alone has no categorical scores: `has_categories` says which runs have
them.

>>> from ser.runs.fold_entry import FoldEntry
>>> from ser.runs.record import RunRecord
>>> entry = FoldEntry.from_json({"seed": 0, "fold": "f1", "attributes": {
...     "arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10}}})
>>> run = RunRecord("va", {}, "loso", [], folds=[entry])
>>> has_categories(run), run_attributes(run)
(False, ('arousal',))
>>> from ser.heads.recorded import record_heads
>>> (head,) = record_heads([run])
>>> head.report_header([run], False)
['mean CCC arousal', 'mean r arousal', 'mean MAE arousal', 'pooled CCC arousal']
>>> head.report_cells(run, [run], {}, False)
['0.500 (n = 1)', '0.600 (n = 1)', '0.700 (n = 1)', '-']
"""

from __future__ import annotations

from typing import Any

from ser.heads import attribute_report, emotion_report
from ser.heads.attribute_metrics import AttributeMetrics
from ser.runs.record import RunRecord


def has_categories(run: RunRecord) -> bool:
    """Whether the run has categorical scores (a run trained on attributes alone has
    none)."""
    return emotion_report.scored(run)


def fold_attributes(run: RunRecord) -> list[tuple[int, AttributeMetrics]]:
    """(seed, scores) of every fold entry with attribute scores, in record order."""
    return attribute_report.fold_attributes(run)


def run_attributes(run: RunRecord) -> tuple[str, ...]:
    """The attributes the run scored, in `ATTRIBUTES`' order (others after)."""
    return attribute_report.run_attributes([run])


def attribute_summary(run: RunRecord) -> dict[str, Any] | None:
    """Mean ± std over seeds of every attribute score (`summarize_attributes`), None for
    a run without attributes."""
    return attribute_report.summary(run) or None


def attribute_pooled(run: RunRecord) -> AttributeMetrics | None:
    """The scores of every fold's test predictions of every seed together, None for a
    run without attributes."""
    return attribute_report.pooled(run)
