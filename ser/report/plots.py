"""PNG plots of run records (matplotlib's `Figure`; pyplot's global state is not used).

Per run: ``<name>_curves.png`` (loss and val UA per epoch, one line per fold of the first
seed, a row per stage of a staged run), each head's own figure of the record
``<name>_<plot>.png`` (`Head.plot_run`: the category's pooled confusion matrix,
``<name>_confusion.png``; a further categorical head's, ``<name>_<head>.png``), and for a
run on a layered input ``<name>_layers.png`` (each layer's learnt weight, mean ± std over
folds and seeds); ``queries_ua.png`` when at least two runs differ only in
``config.queries``. Of a run's predictions.csv, each head's figure of them
(`write_prediction_plots`, `Head.plot_predictions`: the attributes', predicted against
gold per attribute, every seed's predictions, the identity line, the pooled CCC in the
title, ``<name>_attributes.png``); with ``--calibration``, ``<name>_reliability.png``
(accuracy against confidence in 15 bins, their counts, the diagonal).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ser.heads.recorded import run_heads, table_heads
from ser.report.layer_weights import LayerWeights, layer_weights
from ser.report.runs import (
    BOOKKEEPING,
    file_stem,
    pooled_over,
    protocol_label,
    run_label,
    run_summary,
    settings_label,
)
from ser.runs.fold_entry import FoldEntry, Stage
from ser.runs.predictions import PredictionTable
from ser.runs.record import RunRecord


def write_plots(runs: list[RunRecord], out_dir: Path) -> list[Path]:
    """The files written into `out_dir` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for run in runs:
        stem = _unique(file_stem(run.name), used)
        written.append(_save(_curves_figure(run), out_dir / f"{stem}_curves.png"))
        if weights := layer_weights(run):
            written.append(_save(_layers_figure(run, weights), out_dir / f"{stem}_layers.png"))
        for head in run_heads(run):  # each head's own figure, where it has one
            fig = Figure(dpi=100)
            title = f"{run_label(run)}: {protocol_label(run)}\n{pooled_over(run)}"
            if head.plot_run(fig, run, title):
                written.append(_save(fig, out_dir / f"{stem}_{file_stem(head.plot_name)}.png"))
    groups = query_groups(runs)
    if groups:
        written.append(_save(_queries_figure(groups), out_dir / "queries_ua.png"))
    return written


def plots_predictions(run: RunRecord) -> bool:
    """Whether a head of the run draws a figure of its predictions.csv."""
    return any(head.plots_predictions for head in run_heads(run))


def write_prediction_plots(
    runs: Sequence[tuple[str, PredictionTable]], out_dir: Path
) -> list[Path]:
    """``<name>_<plot>.png`` of each (name, predictions) head that draws its predictions
    (`Head.plot_predictions`), into `out_dir` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    written = []
    for name, table in runs:
        heads = [head for head in table_heads(table) if head.plots_predictions]
        stem = _unique(file_stem(name), used) if heads else ""
        for head in heads:
            fig = Figure(dpi=100)
            if head.plot_predictions(fig, table, name):
                written.append(_save(fig, out_dir / f"{stem}_{file_stem(head.plot_name)}.png"))
    return written


def write_reliability_plots(
    runs: Sequence[tuple[str, PredictionTable]], out_dir: Path
) -> list[Path]:
    """``<name>_reliability.png`` of each (name, predictions) with class probabilities
    (`ser report --calibration`: `ser.report.calibration.plot_reliability`)."""
    from ser.report.calibration import plot_reliability

    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    written = []
    for name, table in runs:
        fig = Figure(dpi=100)
        if plot_reliability(fig, table, name):
            stem = _unique(file_stem(name), used)
            written.append(_save(fig, out_dir / f"{stem}_reliability.png"))
    return written


def query_groups(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs that differ only in ``config.queries``, grouped by everything else (groups
    with at least two distinct query counts only)."""
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        config = run.config
        if config.get("queries") is None:
            continue
        rest = {k: v for k, v in config.items() if k not in BOOKKEEPING and k != "queries"}
        key = json.dumps([rest, run.protocol, run.classes], sort_keys=True)
        groups[key].append(run)
    return {
        key: sorted(members, key=lambda r: r.config["queries"])
        for key, members in groups.items()
        if len({r.config["queries"] for r in members}) >= 2
    }


def _confusion_figure(run: RunRecord) -> Figure:
    """The figure of the run's category (`Head.plot_run`: its pooled confusion matrix)."""
    fig = Figure(dpi=100)
    title = f"{run_label(run)}: {protocol_label(run)}\n{pooled_over(run)}"
    for head in run_heads(run):
        if head.category:
            head.plot_run(fig, run, title)
    return fig


def _curves_figure(run: RunRecord) -> Figure:
    folds = run.folds
    seed = folds[0].seed if folds else None
    shown = [f for f in folds if f.seed == seed]
    # One row per stage: a staged run's earlier stages (e.g. audio, text) in training
    # order, then the model's own (None).
    stages = dict.fromkeys(stage for fold in shown for stage in fold.stages)
    rows: list[str | None] = [*stages, None]
    fig = Figure(figsize=(10, 3.6 * len(rows) + 0.4), dpi=100)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for r, stage in enumerate(rows):
        drawn = sum(_fold_curves(axes[r], fold, i, stage) for i, fold in enumerate(shown))
        what = "the whole model" if stage is None else f"{stage} alone"
        title = f"stage {r + 1} of {len(rows)}: {what}\n" if len(rows) > 1 else ""
        _dress_curves(axes[r], title, drawn)
    seeds = len({f.seed for f in folds})
    of = f" (the first of {seeds} seeds)" if seeds > 1 else ""
    which = f": seed {seed}{of}, one line per fold" if folds else ""
    fig.suptitle(run_label(run) + which, fontsize=10)
    fig.tight_layout()
    return fig


def _fold_curves(axes: Sequence[Axes], fold: FoldEntry, i: int, stage: str | None) -> bool:
    """Draw one fold's curves of `stage` (None: the model's own) on a row of axes."""
    entry: FoldEntry | Stage | None = fold if stage is None else fold.stages.get(stage)
    if entry is None or not entry.curves.get("epoch"):
        return False
    curves, epochs = entry.curves, entry.curves["epoch"]
    loss_ax, ua_ax = axes
    color, label = f"C{i % 10}", fold.fold
    _line(loss_ax, epochs, curves.get("train_loss"), color, "-", f"{label} train")
    _line(loss_ax, epochs, curves.get("val_loss"), color, "--", f"{label} val")
    _line(ua_ax, epochs, curves.get("val_ua"), color, "-", label)
    if entry.best_epoch is not None:
        _best(ua_ax, entry.best_epoch, epochs, curves.get("val_ua"), color)
    return True


def _best(ax: Axes, best: int, epochs: list[Any], ua: list[Any] | None, color: str) -> None:
    """The best epoch as a dotted line above the curves and a dot on its val UA: a line
    alone at the last epoch sits on the axis's edge and its grid line, unseen."""
    ax.axvline(best, color=color, linestyle=":", linewidth=1.2, zorder=3)
    if ua and best in epochs[: len(ua)] and ua[epochs.index(best)] is not None:
        at = ua[epochs.index(best)]
        ax.plot([best], [at], marker="o", color=color, markeredgecolor="black", zorder=4)


def _dress_curves(axes: Sequence[Axes], title: str, drawn: int) -> None:
    loss_ax, ua_ax = axes
    loss_ax.set(xlabel="epoch", ylabel="loss", title=f"{title}loss (solid: train, dashed: val)")
    ua_title = f"{title}validation UA (dot and dotted line: best epoch)"
    ua_ax.set(xlabel="epoch", ylabel="val UA (%)", title=ua_title)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(
                0.5, 0.5, "no curves recorded", ha="center", va="center", transform=ax.transAxes
            )


def _layers_figure(run: RunRecord, weights: list[LayerWeights]) -> Figure:
    """One panel per layered input: each layer's softmax weight, mean ± std over the
    run's fold entries, against the uniform 1/L every layer started from."""
    width = max(5.0, 0.45 * max(len(w.layers) for w in weights) + 2)
    fig = Figure(figsize=(width, 3.4 * len(weights)), dpi=100)
    for ax, w in zip(fig.subplots(len(weights), 1, squeeze=False)[:, 0], weights, strict=True):
        spread = w.std if w.n > 1 else None
        ax.bar(w.layers, w.mean, yerr=spread, capsize=3, color="C0", alpha=0.8)
        ax.axhline(
            1 / len(w.layers), color="grey", linestyle="--", linewidth=1, label="uniform 1/L"
        )
        ax.set_xticks(list(w.layers))
        over = f"mean ± std over {w.n} fold entries" if w.n > 1 else "1 fold entry"
        ax.set(xlabel="layer", ylabel="softmax weight", title=f"{w.input} ({over})")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    fig.suptitle(f"{run_label(run)}: learnt layer weights", fontsize=10)
    fig.tight_layout()
    return fig


def _queries_figure(groups: dict[str, list[RunRecord]]) -> Figure:
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    queries: set[int] = set()
    for members in groups.values():
        queries.update(r.config["queries"] for r in members)
        summaries = [run_summary(r) for r in members]
        x, y = [r.config["queries"] for r in members], [float(s["ua"]) for s in summaries]
        spread = [float(s.get("ua_std", 0.0)) for s in summaries]
        ax.errorbar(x, y, yerr=spread, marker="o", capsize=3, label=_group_label(members[0]))
    ax.set_xticks(sorted(queries))
    ax.set(xlabel="number of emotion queries L", ylabel="UA (%)", title="UA against queries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _group_label(run: RunRecord) -> str:
    config, protocol = run.config, protocol_label(run)
    base = f"{config.get('features', '?')} / {config.get('fusion', '?')}, {protocol}"
    extra = settings_label(run, leave_out=frozenset({"queries"}))
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
    # Write beside the target and rename, so an interrupted run never leaves half a PNG.
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path
