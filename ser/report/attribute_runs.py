"""A run record's emotion-attribute scores, and their columns in `ser report`'s table.

Read from the fold entries' ``attributes`` (`ser.heads.attribute_metrics`): the mean over
seeds as UA's is taken, and the pooled scores of every fold of every seed (an utterance
once per seed), pooled exactly from the folds' moments (what the challenge scores: CCC
on the pooled test set). A run trained on attributes alone has no categorical scores:
`has_categories` says which runs have them.

>>> from ser.runs.fold_entry import FoldEntry
>>> from ser.runs.record import RunRecord
>>> scores = {"arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10}}
>>> run = RunRecord("va", {}, "loso", [], folds=[FoldEntry(0, "f1", {}, attributes=scores)])
>>> has_categories(run), run_attributes(run)
(False, ('arousal',))
>>> attribute_header(("arousal",), False)
['mean CCC arousal', 'mean r arousal', 'mean MAE arousal', 'pooled CCC arousal']
>>> attribute_cells(run, ("arousal",), False)
['0.500 (n = 1)', '0.600 (n = 1)', '0.700 (n = 1)', '-']
"""

from __future__ import annotations

import math
from typing import Any

from ser.errors import ReportError
from ser.heads.attribute_metrics import (
    ATTRIBUTES,
    MEAN,
    AttributeMetrics,
    overall_attribute_metrics,
    summarize_attributes,
)
from ser.heads.metrics import mean_std_text
from ser.runs.record import RunRecord

SHOWN = {"ccc": "CCC", "pearson": "r", "mae": "MAE"}  # the markdown table's names
LEGEND = (
    " CCC: Lin's concordance correlation of each attribute's predictions with the gold "
    "values (mean CCC: over the attributes), r: Pearson's, MAE: mean absolute error on the "
    "corpus's scale; pooled CCC: every fold's test predictions of every seed together."
)


def has_categories(run: RunRecord) -> bool:
    """Whether the run has categorical scores (a run trained on attributes alone has
    none)."""
    scored = run.summary is not None and run.summary.get("ua") is not None
    return scored or any(entry.metrics for entry in run.folds)


def fold_attributes(run: RunRecord) -> list[tuple[int, AttributeMetrics]]:
    """(seed, scores) of every fold entry with attribute scores, in record order."""
    try:
        return [
            (e.seed, AttributeMetrics.from_dict(e.attributes)) for e in run.folds if e.attributes
        ]
    except (KeyError, TypeError, ValueError) as e:
        problem = f"run {run.name!r}: a fold entry's attribute scores are damaged ({e})"
        raise ReportError(problem) from e


def run_attributes(run: RunRecord) -> tuple[str, ...]:
    """The attributes the run scored, in `ATTRIBUTES`' order (others after)."""
    return _ordered(name for e in run.folds for name in e.attributes)


def attribute_summary(run: RunRecord) -> dict[str, Any] | None:
    """Mean ± std over seeds of every attribute score (`summarize_attributes`), None for
    a run without attributes."""
    folds = fold_attributes(run)
    return summarize_attributes(folds) if folds else None


def attribute_pooled(run: RunRecord) -> AttributeMetrics | None:
    """The scores of every fold's test predictions of every seed together, None for a
    run without attributes."""
    folds = fold_attributes(run)
    return overall_attribute_metrics([m for _, m in folds]) if folds else None


def table_attributes(runs: list[RunRecord]) -> tuple[str, ...]:
    """The attributes any of the runs scored: the table's attribute columns."""
    return _ordered(name for run in runs for name in run_attributes(run))


def attribute_header(names: tuple[str, ...], as_csv: bool) -> list[str]:
    """The columns of `names`: mean CCC per attribute (and over them, for several), mean
    r, mean MAE, pooled CCC (and its mean); CSV: with each std, pooled r and MAE."""
    keys = _mean_keys(names)
    if not as_csv:
        means = [f"mean {_shown(key)}" for key in keys]
        pooled = [f"pooled {_shown(key)}" for key in keys if key.startswith("ccc")]
        return means + pooled
    return [c for key in keys for c in (f"mean_{key}", f"mean_{key}_std")] + [
        f"pooled_{key}" for key in keys
    ]


def attribute_cells(run: RunRecord, names: tuple[str, ...], as_csv: bool) -> list[str]:
    """The run's cells under `attribute_header`: "-" (CSV: empty) where it lacks one."""
    summary, pooled = attribute_summary(run) or {}, attribute_pooled(run)
    flat = pooled.flat() if pooled is not None else {}
    keys, n = _mean_keys(names), int(summary.get("n", 0))
    none = "" if as_csv else "-"
    if not as_csv:
        means = [_mean_text(summary, key, n) for key in keys]
        pools = [_number(flat.get(key), none) for key in keys if key.startswith("ccc")]
        return means + pools
    cells = []
    for key in keys:
        mean, std = summary.get(key), summary.get(f"{key}_std")
        cells += [_number(mean, none), _number(std, none) if n > 1 else ""]
    return cells + [_number(flat.get(key), none) for key in keys]


def _mean_keys(names: tuple[str, ...]) -> list[str]:
    """The flat score names shown: ccc per attribute, their mean for several, r, MAE."""
    ccc = [f"ccc_{name}" for name in names] + ([MEAN] if len(names) > 1 else [])
    return ccc + [f"{score}_{name}" for score in ("pearson", "mae") for name in names]


def _shown(key: str) -> str:
    if key == MEAN:
        return "CCC (mean)"
    score, name = key.split("_", 1)
    return f"{SHOWN[score]} {name}"


def _mean_text(summary: dict[str, Any], key: str, n: int) -> str:
    mean = summary.get(key)
    if mean is None or math.isnan(mean):
        return "-"
    return mean_std_text(mean, summary[f"{key}_std"], n, decimals=3)


def _number(value: float | None, none: str) -> str:
    return none if value is None or math.isnan(value) else f"{value:.3f}"


def _ordered(names: Any) -> tuple[str, ...]:
    seen = list(dict.fromkeys(names))
    return tuple([a for a in ATTRIBUTES if a in seen] + [a for a in seen if a not in ATTRIBUTES])
