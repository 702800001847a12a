"""The scores of a run's further heads (`ser.heads.registry`: MELD's sentiment, ...),
read from its fold entries' ``heads`` (`ser.runs.fold_entry.FoldEntry.heads`), for the
trainer's record and its console table (`ser.train.record`, `ser.commands.train`).

Each head's numbers are its `Head.flat` keys (``sentiment_wf1``, ...): the mean over
seeds as `ser.heads.metrics.summarize` takes UA's (`Head.summary`), and the pooled scores
of every fold's test predictions together (`Head.pooled`). Every head's columns of `ser
report`'s table are its own (`Head.report_header`, `ser.heads.reported`).
"""

from __future__ import annotations

from typing import Any

from ser.errors import ReportError
from ser.heads.base import Head
from ser.heads.registry import HEADS
from ser.heads.reported import shown as shown  # `ser claims` names a score as tables do
from ser.runs.record import RunRecord


def run_heads(run: RunRecord) -> tuple[str, ...]:
    """The further heads the run scored, in the order its entries hold them."""
    return tuple(dict.fromkeys(name for e in run.folds for name in e.heads))


def head(run: RunRecord, name: str) -> Head:
    """The registered head `name` of the run's record; `ReportError` for one this ser
    does not know (a record of a newer ser, or of a head registered elsewhere)."""
    if name not in HEADS:
        raise ReportError(f"run {run.name!r} scored a head {name!r} this ser does not know")
    return HEADS[name]()


def head_summary(run: RunRecord) -> dict[str, Any]:
    """Mean ± std over seeds of every further head's numbers ({}: none)."""
    summary: dict[str, Any] = {}
    for name in run_heads(run):
        for key, value in head(run, name).summary(run, {}).items():
            summary.setdefault(key, value)
    return summary


def head_pooled(run: RunRecord, name: str) -> dict[str, float]:
    """The head's numbers of every fold's test predictions together."""
    scored = head(run, name)
    pooled = scored.pooled(run)
    return scored.flat(pooled) if pooled else {}
