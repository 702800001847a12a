"""What `ser report` shows of the emotion attributes (`ser.heads.attributes.AttributeHead`).

A fold entry keeps their scores as ``attributes`` (`AttributeMetrics.to_dict`). Its
columns are the mean over seeds of each attribute's CCC (and their mean), r and MAE, and
the pooled CCC of every fold of every seed (an utterance once per seed), pooled exactly
from the folds' moments (what the challenge scores: CCC on the pooled test set). Its
breakdown is by speaker (each attribute's CCC), its paired test the mean CCC and each
attribute's (every seed's prediction of each utterance drawn kept, so the observed CCC
is the pooled one), its plot each prediction against its gold value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.errors import ReportError
from ser.heads.attribute_metrics import (
    ATTRIBUTES,
    MEAN,
    AttributeMetrics,
    attribute_metrics,
    overall_attribute_metrics,
    summarize_attributes,
)
from ser.heads.metrics import mean_std_text
from ser.heads.reported import Paired, RecordView, TableView

if TYPE_CHECKING:  # plots only: matplotlib takes a second to import
    from matplotlib.figure import Figure

SHOWN = {"ccc": "CCC", "pearson": "r", "mae": "MAE"}  # the markdown table's names
LEGEND = (
    " CCC: Lin's concordance correlation of each attribute's predictions with the gold "
    "values (mean CCC: over the attributes), r: Pearson's, MAE: mean absolute error on the "
    "corpus's scale; pooled CCC: every fold's test predictions of every seed together."
)
BREAKDOWN_LEGEND = (
    " CCC: each attribute's concordance correlation over the speaker's test predictions "
    "of every seed (those with a gold value)."
)
PAIRED_LEGEND = (
    " CCC: each run's CCC over every seed's predictions of the utterances drawn "
    "(those with a gold value); mean CCC: over the attributes."
)


def fold_attributes(run: RecordView) -> list[tuple[int, AttributeMetrics]]:
    """(seed, scores) of every fold entry with attribute scores, in record order."""
    try:
        return [(e.seed, e.attributes) for e in run.folds if e.attributes is not None]
    except (KeyError, TypeError, ValueError) as e:
        problem = f"run {run.name!r}: a fold entry's attribute scores are damaged ({e})"
        raise ReportError(problem) from e


def ordered(names: Iterable[str]) -> tuple[str, ...]:
    """`names` once each, in `ATTRIBUTES`' order (others after)."""
    seen = list(dict.fromkeys(names))
    return tuple([a for a in ATTRIBUTES if a in seen] + [a for a in seen if a not in ATTRIBUTES])


def run_attributes(runs: Sequence[RecordView]) -> tuple[str, ...]:
    """The attributes any of `runs` scored, in `ATTRIBUTES`' order (others after)."""
    return ordered(name for run in runs for e in run.folds for name in _names(e.attributes))


def _names(attributes: AttributeMetrics | None) -> tuple[str, ...]:
    """The attributes a fold entry's scores (`AttributeMetrics`) hold."""
    return () if attributes is None else tuple(attributes.names)


def summary(run: RecordView) -> dict[str, Any]:
    """Mean ± std over seeds of every attribute score ({}: none)."""
    folds = fold_attributes(run)
    return summarize_attributes(folds) if folds else {}


def pooled(run: RecordView) -> AttributeMetrics | None:
    """The scores of every fold's test predictions of every seed together, None for a
    run without attributes."""
    folds = fold_attributes(run)
    return overall_attribute_metrics([m for _, m in folds]) if folds else None


def header(names: tuple[str, ...], as_csv: bool) -> list[str]:
    """The columns of `names`: mean CCC per attribute (and over them, for several), mean
    r, mean MAE, pooled CCC (and its mean); CSV: with each std, pooled r and MAE."""
    keys = _mean_keys(names)
    if not as_csv:
        means = [f"mean {_shown(key)}" for key in keys]
        return means + [f"pooled {_shown(key)}" for key in keys if key.startswith("ccc")]
    return [c for key in keys for c in (f"mean_{key}", f"mean_{key}_std")] + [
        f"pooled_{key}" for key in keys
    ]


def cells(run: RecordView, names: tuple[str, ...], as_csv: bool) -> list[str]:
    """The run's cells under `header`: "-" (CSV: empty) where it lacks one."""
    mine, held = summary(run), pooled(run)
    flat = held.flat() if held is not None else {}
    keys, n = _mean_keys(names), int(mine.get("n", 0))
    none = "" if as_csv else "-"
    if not as_csv:
        means = [_mean_text(mine, key, n) for key in keys]
        return means + [_number(flat.get(key), none) for key in keys if key.startswith("ccc")]
    out = []
    for key in keys:
        mean, std = mine.get(key), mine.get(f"{key}_std")
        out += [_number(mean, none), _number(std, none) if n > 1 else ""]
    return out + [_number(flat.get(key), none) for key in keys]


def breakdown_header(label: str, names: tuple[str, ...], fmt: str) -> list[str]:
    if fmt == "md":
        return [f"{label} CCC {' / '.join(names)}"]
    return [f"{label} ccc_{name}" for name in names]


def breakdown_cells(rows: TableView, fmt: str) -> list[str]:
    """Each attribute's CCC over `rows` (md: in one cell)."""
    scores = attribute_metrics(rows.attr_gold, rows.attr_pred, rows.attributes).scores
    none = "-" if fmt == "md" else ""
    ccc = [none if np.isnan(s.ccc) else f"{s.ccc:.3f}" for s in scores.values()]
    return [" / ".join(ccc)] if fmt == "md" else ccc


def paired(a: TableView, b: TableView, shared: tuple[str, ...], ids: list[str]) -> Paired:
    """Mean CCC, then each attribute's CCC, of the attributes both runs have."""
    sums_a, sums_b = _sums(a, shared, ids), _sums(b, shared, ids)
    gold_a, gold_b = (s[..., 1] / np.maximum(s[..., 0], 1) for s in (sums_a, sums_b))
    differs = ~np.isclose(gold_a, gold_b, atol=1e-6) & (sums_a[..., 0] > 0) & (sums_b[..., 0] > 0)
    if differs.any():
        first = ids[int(np.flatnonzero(differs.any(axis=0))[0])]
        raise ReportError(f"utterance {first} has another gold value in each run")
    names = ("mean CCC", *(f"CCC {name}" for name in shared))
    return Paired(names, lambda counts: _ccc_scores(counts, sums_a, sums_b), 3, PAIRED_LEGEND)


def _sums(table: TableView, names: tuple[str, ...], ids: list[str]) -> np.ndarray:
    """[A, N, 6]: per attribute of `names` and utterance of `ids`, over its rows (seeds)
    with a gold value: count, sums of gold, pred, gold², pred², gold x pred."""
    where = {u: i for i, u in enumerate(ids)}
    keep = np.isin(table.utt_id, ids)
    at = np.array([where[u] for u in table.utt_id[keep].tolist()], dtype=np.int64)
    out = np.zeros((len(names), len(ids), 6))
    for k, name in enumerate(names):
        column = table.attributes.index(name)
        g, p = table.attr_gold[keep, column], table.attr_pred[keep, column]
        has = ~np.isnan(g)
        g, p, rows = g[has], p[has], at[has]
        for j, values in enumerate((np.ones_like(g), g, p, g * g, p * p, g * p)):
            out[k, :, j] = np.bincount(rows, weights=values, minlength=len(ids))
    return out


def _ccc_scores(counts: np.ndarray, sums_a: np.ndarray, sums_b: np.ndarray) -> np.ndarray:
    """[R, 2 runs, (mean CCC, CCC per attribute)] of resamples as utterance counts [R, N]."""
    out = []
    for sums in (sums_a, sums_b):
        n, sg, sp, sgg, spp, sgp = np.moveaxis(counts @ sums, -1, 0)  # each [A, R]
        mg, mp = sg / n, sp / n
        var_g, var_p, cov = sgg / n - mg**2, spp / n - mp**2, sgp / n - mg * mp
        ccc = (2 * cov / (var_g + var_p + (mg - mp) ** 2)).T  # [R, A]
        out.append(np.concatenate([ccc.mean(axis=1, keepdims=True), ccc], axis=1))
    return np.stack(out, axis=1)


def plot(fig: Figure, table: TableView, title: str) -> bool:
    """A panel per attribute: each prediction against its gold value (those with one),
    the identity line, the pooled CCC and r in the title."""
    scores = attribute_metrics(table.attr_gold, table.attr_pred, table.attributes).scores
    fig.set_size_inches(4.2 * len(scores), 4.4)
    for k, (ax, (attribute, s)) in enumerate(
        zip(fig.subplots(1, len(scores), squeeze=False)[0], scores.items(), strict=True)
    ):
        gold, pred = table.attr_gold[:, k], table.attr_pred[:, k]
        has = ~np.isnan(gold)
        if has.any():
            ax.scatter(gold[has], pred[has], s=8, alpha=0.4, color="C0", linewidths=0)
            both = np.concatenate([gold[has], pred[has]])
            ends = [float(both.min()), float(both.max())]
            ax.plot(ends, ends, color="grey", linestyle="--", linewidth=1, label="identity")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set(
            xlabel=f"gold {attribute}",
            ylabel=f"predicted {attribute}",
            title=f"{attribute}: CCC {s.ccc:.3f}, r {s.pearson:.3f} (n = {s.n})",
        )
        ax.grid(alpha=0.3)
        if has.any():
            ax.legend(fontsize=7)
    seeds = len(set(table.seed.tolist()))
    fig.suptitle(f"{title}: every fold's test predictions of {seeds} seed(s)", fontsize=10)
    fig.tight_layout()
    return True


def _mean_keys(names: tuple[str, ...]) -> list[str]:
    """The flat score names shown: ccc per attribute, their mean for several, r, MAE."""
    ccc = [f"ccc_{name}" for name in names] + ([MEAN] if len(names) > 1 else [])
    return ccc + [f"{score}_{name}" for score in ("pearson", "mae") for name in names]


def _shown(key: str) -> str:
    if key == MEAN:
        return "CCC (mean)"
    score, name = key.split("_", 1)
    return f"{SHOWN[score]} {name}"


def _mean_text(summary: Mapping[str, Any], key: str, n: int) -> str:
    mean = summary.get(key)
    if mean is None or math.isnan(mean):
        return "-"
    return mean_std_text(mean, summary[f"{key}_std"], n, decimals=3)


def _number(value: float | None, none: str) -> str:
    return none if value is None or math.isnan(value) else f"{value:.3f}"
