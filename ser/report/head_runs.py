"""The scores of a run's further heads (`ser.heads.registry`: MELD's sentiment, ...),
read from its fold entries' ``heads`` (`ser.runs.fold_entry.FoldEntry.heads`), and
their columns of `ser report`'s table.

Each head's numbers are its `Head.flat` keys (``sentiment_wf1``, ...): the mean over
seeds as `ser.heads.metrics.summarize` takes UA's (each seed's mean over its folds,
then mean ± sample std over seeds), and the pooled scores of every fold's test
predictions together (`Head.pool`). The category's and the attributes' columns are
`runs.py`'s and `attribute_runs.py`'s.
"""

from __future__ import annotations

import math
from typing import Any

from ser.errors import ReportError
from ser.heads.base import Head
from ser.heads.metrics import mean_std_text, over_seeds
from ser.heads.registry import HEADS
from ser.runs.record import RunRecord


def run_heads(run: RunRecord) -> tuple[str, ...]:
    """The further heads the run scored, in the order its entries hold them."""
    return tuple(dict.fromkeys(name for e in run.folds for name in e.heads))


def table_heads(runs: list[RunRecord]) -> tuple[str, ...]:
    """The further heads any of the runs scored: the table's further columns."""
    return tuple(dict.fromkeys(name for run in runs for name in run_heads(run)))


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
        scored = head(run, name)
        pairs = [(e.seed, scored.flat(e.heads[name])) for e in run.folds if name in e.heads]
        for key, value in over_seeds(pairs).items():
            summary.setdefault(key, value)
    return summary


def head_pooled_metrics(run: RunRecord, name: str) -> dict[str, Any]:
    """The head's metrics of every fold's test predictions together ({}: none)."""
    folds = [e.heads[name] for e in run.folds if name in e.heads]
    return head(run, name).pool(folds) if folds else {}


def head_pooled(run: RunRecord, name: str) -> dict[str, float]:
    """The head's numbers of every fold's test predictions together."""
    pooled = head_pooled_metrics(run, name)
    return head(run, name).flat(pooled) if pooled else {}


def head_header(runs: list[RunRecord], as_csv: bool) -> list[str]:
    """The further heads' columns: each number's mean (CSV: and std) and pooled value."""
    keys = _keys(runs)
    if as_csv:
        return [c for k in keys for c in (f"mean_{k}", f"mean_{k}_std")] + [
            f"pooled_{k}" for k in keys
        ]
    return [f"mean {shown(k)}" for k in keys] + [f"pooled {shown(k)}" for k in keys]


def head_cells(run: RunRecord, runs: list[RunRecord], as_csv: bool) -> list[str]:
    """The run's cells under `head_header`: "-" (CSV: empty) where it lacks one."""
    summary, none = head_summary(run), "" if as_csv else "-"
    pooled = {k: v for name in run_heads(run) for k, v in head_pooled(run, name).items()}
    n = int(summary.get("n", 0))
    cells = []
    for key in _keys(runs):
        mean, std = summary.get(key), summary.get(f"{key}_std")
        if as_csv:
            cells += [_number(mean, none), _number(std, none) if n > 1 else ""]
        else:
            if mean is None or std is None:
                cells.append(none)
            else:
                cells.append(mean_std_text(float(mean), float(std), n))
    return cells + [_number(pooled.get(key), none) for key in _keys(runs)]


def _keys(runs: list[RunRecord]) -> list[str]:
    names = table_heads(runs)
    found = [
        key for run in runs for name in run_heads(run) for key in head_pooled(run, name)
        if name in names
    ]  # fmt: skip
    return list(dict.fromkeys(found))


def shown(key: str) -> str:
    """``sentiment_wf1`` -> ``sentiment WF1``, ``multilabel_micro_f1`` -> ``multilabel
    micro F1``, ``multilabel_map`` -> ``multilabel mAP``."""
    name, _, score = key.partition("_")
    words = [WORDS.get(w, w.upper() if len(w) <= 3 else w) for w in score.split("_")]
    return " ".join([name, *words])


#: How a score's words read in a table's header where upper case would not do.
WORDS = {"map": "mAP"}


def _number(value: float | None, none: str) -> str:
    return none if value is None or math.isnan(value) else f"{value:.2f}"
