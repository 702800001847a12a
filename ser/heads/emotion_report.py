"""What `ser report` shows of the emotion category (`ser.heads.emotion.EmotionHead`).

A fold entry keeps its metrics as ``metrics`` (unprefixed: ``ua``, ``wa``...) and the
record its summary and pooled metrics at its top, as every record has held them. Its
columns come first in every table (mean UA, WA, macro and weighted F1, ``n``, pooled),
its breakdowns are by class (recall) and by speaker (UA / WA), its paired test scores UA
and WA on utterances (the share of a run's seeds' predictions of one that are right),
and its plot is the pooled confusion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.errors import ReportError
from ser.heads.metrics import Metrics, compute_metrics, mean_std_text, overall_metrics, summarize
from ser.heads.reported import Paired, RecordView, TableView

if TYPE_CHECKING:  # plots only: matplotlib takes a second to import
    from matplotlib.figure import Figure

SCORES = ("ua", "wa", "f1", "wf1")  # f1: macro; wf1: weighted by class support
MD_COLUMNS = (
    "mean UA",
    "mean WA",
    "mean macro F1",
    "mean weighted F1",
    "n",
    "pooled UA",
    "pooled WA",
    "pooled macro F1",
    "pooled weighted F1",
)
# The weighted F1's columns come last: a CSV read by position keeps its columns.
CSV_COLUMNS = (
    "mean_ua",
    "mean_ua_std",
    "mean_wa",
    "mean_wa_std",
    "mean_f1",
    "mean_f1_std",
    "n",
    "std_over",
    "seeds",
    "pooled_ua",
    "pooled_wa",
    "pooled_f1",
    "mean_wf1",
    "mean_wf1_std",
    "pooled_wf1",
)
LEGEND = (
    "mean: each seed's mean over its folds, then mean ± sample std over the n seeds (over "
    "the n folds of a run with one seed; a single value has no ±). pooled: every fold's "
    "test predictions scored together, of every seed (an utterance counts once per seed). "
    "macro F1: the mean of the classes' F1; weighted F1: each class's F1 weighted by its "
    "share of the test utterances."
)
PAIRED = ("UA", "WA")


def scored(run: RecordView) -> bool:
    """Whether the run has categorical scores (one on attributes alone has none)."""
    held = run.summary is not None and run.summary.get("ua") is not None
    return held or any(e.metrics is not None for e in run.folds)


def fold_metrics(run: RecordView) -> list[tuple[int, Metrics]]:
    """(seed, metrics) of every fold entry; `ReportError` for a damaged or missing one."""
    if not run.folds:
        raise ReportError(f"run {run.name!r} has no finished fold yet")
    held = [(f.seed, f.metrics) for f in run.folds if f.metrics is not None]
    if len(held) < len(run.folds) or any(m.lacks() for _, m in held):
        lacks = next((m.lacks() for _, m in held if m.lacks()), ["all of them"])
        raise ReportError(f"run {run.name!r}: a fold entry lacks its metrics ({lacks})")
    return held


def summary(run: RecordView, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """What the run's summary lacks of the category's: all of it, from the folds, for a
    record without one; the weighted F1 from the folds' confusions for a record from
    before it was kept."""
    if not recorded:
        return summarize(fold_metrics(run)) if scored(run) else {}
    folds = run.folds
    if "wf1" not in recorded and folds and all(_confusion(f.metrics) for f in folds):
        again = summarize(fold_metrics(run))
        return {"wf1": again["wf1"], "wf1_std": again["wf1_std"]}
    return {}


def pooled(run: RecordView) -> Metrics | None:
    """The run's pooled metrics, from its folds when the record holds none."""
    kept = run.pooled
    if kept is not None and len(kept.lacks()) < 6:  # it holds a score
        return kept
    if not scored(run):  # a run trained on attributes alone
        return None
    metrics = [m for _, m in fold_metrics(run)]
    return overall_metrics(metrics, list(run.classes))


def pooled_score(metrics: Metrics | None, key: str) -> float | None:
    """A pooled score `key` (None: not held); WF1 from the confusion where the record
    is from before it was kept."""
    if metrics is not None and key == "wf1" and _confusion(metrics):
        return metrics.wf1
    return None if metrics is None else metrics.score(key)


def _confusion(metrics: Metrics | None) -> bool:
    return metrics is not None and "confusion" not in metrics.unheld


def cells(run: RecordView, summary: Mapping[str, Any], as_csv: bool) -> list[str]:
    """Mean (and std) of each score, n, pooled scores (CSV: the weighted F1's last); a
    record without WF1 and without folds to compute it from shows none ("-"; CSV:
    empty)."""
    held = pooled(run)
    try:
        means = {k: _mean(summary, k) for k in SCORES}
        pools = {k: None if (v := pooled_score(held, k)) is None else f"{v:.2f}" for k in SCORES}
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(f"run {run.name!r}: summary lacks a score ({e})") from e
    lacking = [k for k in SCORES[:3] if means[k] is None or pools[k] is None]
    if lacking and scored(run):  # a run on attributes alone has none: "-"
        raise ReportError(f"run {run.name!r}: summary lacks a score ({', '.join(lacking)})")
    n = int(summary["n"])
    if not as_csv:  # no ± where n = 1
        shown = ["-" if m is None else mean_std_text(*m, n) for m in means.values()]
        return [*shown, spread_label(summary), *(p or "-" for p in pools.values())]

    def spread(key: str) -> list[str]:
        m = means[key]
        return ["", ""] if m is None else [f"{m[0]:.2f}", f"{m[1]:.2f}" if n > 1 else ""]

    counts = [str(n), str(summary.get("std_over", "seeds")), str(summary.get("seeds", ""))]
    first = [c for k in SCORES[:3] for c in spread(k)]
    return [
        *first,
        *counts,
        *(pools[k] or "" for k in SCORES[:3]),
        *spread("wf1"),
        pools["wf1"] or "",
    ]


def spread_label(summary: Mapping[str, Any]) -> str:
    """What a mean is over: ``2 seeds``, ``5 folds of 1 seed`` or ``1 fold of 1 seed``."""
    n = int(summary["n"])
    if summary.get("std_over") == "folds":
        return f"{n} fold{'s' if n != 1 else ''} of 1 seed"
    return f"{n} seed{'s' if n != 1 else ''}"


def breakdown_cells(rows: TableView, by: str, key: str, fmt: str) -> list[str]:
    """A class's recall, or a speaker's UA / WA (CSV: a cell each), of `rows`."""
    m = compute_metrics(rows.gold, rows.pred, rows.classes)
    if by == "class":
        return [f"{m.per_class_recall[key]:.2f}"]
    return [f"{m.ua:.2f} / {m.wa:.2f}"] if fmt == "md" else [f"{m.ua:.2f}", f"{m.wa:.2f}"]


def paired(a: TableView, b: TableView, ids: list[str]) -> Paired:
    """UA and WA of each resample: per utterance the share of a run's predictions that
    are right, averaged per class (UA) or over the utterances (WA)."""
    gold_a, score_a = _per_utterance(a, ids)
    gold_b, score_b = _per_utterance(b, ids)
    if (gold_a != gold_b).any():
        first = ids[int(np.flatnonzero(gold_a != gold_b)[0])]
        raise ReportError(f"utterance {first} has another gold label in each run")
    onehot = np.eye(len(a.classes))[gold_a]  # [N, C]
    return Paired(PAIRED, lambda counts: _scores(counts, onehot, score_a, score_b))


def _per_utterance(table: TableView, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Gold class [N] and the fraction of right predictions [N] of each of `ids`."""
    where = {u: i for i, u in enumerate(ids)}
    keep = np.isin(table.utt_id, ids)
    at = np.array([where[u] for u in table.utt_id[keep].tolist()], dtype=np.int64)
    hit = (table.gold[keep] == table.pred[keep]).astype(np.float64)
    right = np.bincount(at, weights=hit, minlength=len(ids))
    seen = np.bincount(at, minlength=len(ids))
    gold = np.full(len(ids), -1, dtype=np.int64)
    gold[at] = table.gold[keep]
    return gold, right / seen


def _scores(
    counts: np.ndarray, onehot: np.ndarray, score_a: np.ndarray, score_b: np.ndarray
) -> np.ndarray:
    """[R, 2 runs, (UA, WA)] of resamples given as utterance counts [R, N]."""
    support = counts @ onehot  # [R, C]
    present = support > 0
    out = []
    for score in (score_a, score_b):
        hits = counts @ (onehot * score[:, None])  # [R, C]
        recall = np.where(present, hits / np.maximum(support, 1), 0.0)
        ua = 100 * recall.sum(axis=1) / present.sum(axis=1)
        wa = 100 * hits.sum(axis=1) / counts.sum(axis=1)
        out.append(np.stack([ua, wa], axis=1))
    return np.stack(out, axis=1)


def plot_confusion(fig: Figure, run: RecordView, title: str) -> bool:
    """The run's pooled confusion matrix, its pooled UA and WA in the title."""
    from sklearn.metrics import ConfusionMatrixDisplay  # plots only: ~1 s to import

    held, classes = pooled(run), list(run.classes)
    if held is None or not _confusion(held):
        raise ReportError(f"run {run.name!r}: record has no pooled confusion matrix")
    matrix = np.asarray(held.confusion, dtype=np.int64)
    if matrix.shape != (len(classes), len(classes)):
        raise ReportError(
            f"run {run.name!r}: pooled confusion is {matrix.shape}, "
            f"expected {len(classes)}x{len(classes)} for classes {classes}"
        )
    fig.set_size_inches(1.2 * len(classes) + 2.5, 1.2 * len(classes) + 2.0)
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay(confusion_matrix=matrix, display_labels=classes)
    display.plot(ax=ax, values_format="d", colorbar=False, cmap="Blues")
    ax.set_title(
        f"{title}, n={int(matrix.sum()) if 'n' in held.unheld else held.n}\n"
        f"pooled UA {held.ua:.2f}  WA {held.wa:.2f}",
        fontsize=9,
    )
    fig.tight_layout()
    return True


def _mean(summary: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    if summary.get(key) is None:
        return None
    return float(summary[key]), float(summary[f"{key}_std"])
