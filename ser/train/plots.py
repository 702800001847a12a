"""PNG plots of run records (matplotlib, Agg canvas; pyplot's global state is not used).

Per run ``<name>`` (made file-safe):

- ``<name>_confusion.png``: the pooled confusion matrix, class names, counts.
- ``<name>_curves.png``: train and val loss, and val UA, per epoch; one line per fold of
  the first seed, the best epoch marked.

And ``queries_ua.png`` (UA mean ± std against the number of emotion queries, one line
per group) when at least two runs differ only in ``config.queries``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

from ser.train.report import (
    BOOKKEEPING,
    ReportError,
    file_stem,
    protocol_label,
    run_label,
    run_pooled,
    run_summary,
    setting_keys,
    settings_label,
)


def write_plots(runs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write the plots of `runs` into `out_dir` (created); returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for run in runs:
        stem = _unique(file_stem(str(run["name"])), used)
        written.append(_save(_confusion_figure(run), out_dir / f"{stem}_confusion.png"))
        written.append(_save(_curves_figure(run), out_dir / f"{stem}_curves.png"))
    groups = query_groups(runs)
    if groups:
        written.append(_save(_queries_figure(groups), out_dir / "queries_ua.png"))
    return written


def query_groups(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs that differ only in ``config.queries``, grouped by everything else (groups
    with at least two distinct query counts only)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        config = run["config"]
        if config.get("queries") is None:
            continue
        rest = {k: v for k, v in config.items() if k not in BOOKKEEPING and k != "queries"}
        key = json.dumps([rest, run["protocol"], run.get("classes")], sort_keys=True)
        groups[key].append(run)
    return {
        key: sorted(members, key=lambda r: r["config"]["queries"])
        for key, members in groups.items()
        if len({r["config"]["queries"] for r in members}) >= 2
    }


def _confusion_figure(run: dict[str, Any]) -> Figure:
    pooled, classes = run_pooled(run), list(run["classes"])
    if "confusion" not in pooled:
        raise ReportError(f"run {run['name']!r}: record has no pooled confusion matrix")
    matrix = np.asarray(pooled["confusion"], dtype=np.int64)
    if matrix.shape != (len(classes), len(classes)):
        raise ReportError(
            f"run {run['name']!r}: pooled confusion is {matrix.shape}, "
            f"expected {len(classes)}x{len(classes)} for classes {classes}"
        )
    fig = Figure(figsize=(1.2 * len(classes) + 2.5, 1.2 * len(classes) + 2.0), dpi=100)
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay(confusion_matrix=matrix, display_labels=classes)
    display.plot(ax=ax, values_format="d", colorbar=False, cmap="Blues")
    ax.set_title(
        f"{run_label(run)}: {protocol_label(run)}, n={pooled.get('n', int(matrix.sum()))}\n"
        f"pooled UA {pooled.get('ua', float('nan')):.2f}  WA {pooled.get('wa', float('nan')):.2f}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _curves_figure(run: dict[str, Any]) -> Figure:
    folds = run.get("folds") or []
    first_seed = folds[0].get("seed") if folds else None
    fig = Figure(figsize=(10, 4), dpi=100)
    loss_ax, ua_ax = fig.subplots(1, 2)
    drawn = 0
    for i, fold in enumerate(f for f in folds if f.get("seed") == first_seed):
        curves = fold.get("curves") or {}
        epochs = curves.get("epoch") or []
        if not epochs:
            continue
        color = f"C{i % 10}"
        label = str(fold.get("fold", f"fold {i + 1}"))
        _line(loss_ax, epochs, curves.get("train_loss"), color, "-", f"{label} train")
        _line(loss_ax, epochs, curves.get("val_loss"), color, "--", f"{label} val")
        _line(ua_ax, epochs, curves.get("val_ua"), color, "-", label)
        if fold.get("best_epoch") is not None:
            ua_ax.axvline(fold["best_epoch"], color=color, linestyle=":", linewidth=0.8)
        drawn += 1
    if drawn == 0:
        for ax in (loss_ax, ua_ax):
            ax.text(
                0.5, 0.5, "no curves recorded", ha="center", va="center", transform=ax.transAxes
            )
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (solid: train, dashed: val)")
    ua_ax.set(xlabel="epoch", ylabel="val UA (%)", title="validation UA (dotted: best epoch)")
    for ax in (loss_ax, ua_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if drawn:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{run_label(run)} (seed {first_seed})", fontsize=10)
    fig.tight_layout()
    return fig


def _queries_figure(groups: dict[str, list[dict[str, Any]]]) -> Figure:
    firsts = [members[0] for members in groups.values()]
    keys = [k for k in setting_keys(firsts) if k != "queries"]
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    queries: set[int] = set()
    for members in groups.values():
        queries.update(r["config"]["queries"] for r in members)
        summaries = [run_summary(r) for r in members]
        ax.errorbar(
            [r["config"]["queries"] for r in members],
            [float(s["ua"]) for s in summaries],
            yerr=[float(s.get("ua_std", 0.0)) for s in summaries],
            marker="o",
            capsize=3,
            label=_group_label(members[0], keys),
        )
    ax.set_xticks(sorted(queries))
    ax.set(xlabel="number of emotion queries L", ylabel="UA (%)", title="UA against queries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _group_label(run: dict[str, Any], keys: list[str]) -> str:
    config = run["config"]
    base = f"{config.get('features', '?')} / {config.get('fusion', '?')}, {protocol_label(run)}"
    extra = settings_label(run, keys)
    return f"{base}, {extra}" if extra else base


def _line(ax: Axes, x: list[Any], y: list[Any] | None, color: str, style: str, label: str) -> None:
    if y:
        ax.plot(x[: len(y)], y, color=color, linestyle=style, label=label, linewidth=1.2)


def _unique(stem: str, used: set[str]) -> str:
    candidate, i = stem, 2
    while candidate in used:
        candidate, i = f"{stem}-{i}", i + 1
    used.add(candidate)
    return candidate


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    # Write beside the target and rename, so an interrupted run never leaves half a PNG.
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path
