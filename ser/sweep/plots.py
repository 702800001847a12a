"""A sweep's figures: MSMSER's Fig. 2 (UA against L), the fusion study's heat-map, the
probe's layer curves, the cross-corpus train x test heat-maps and the finetune preset's UA
against k and against training seconds; for a table swept over several corpora, a figure
per corpus.

matplotlib's `Figure`, no pyplot state, as `ser.report.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ser.report.cross_plot import write_heatmaps
from ser.sweep.by_corpus import column_of, papers_apply, spans_corpora
from ser.sweep.cross_report import tables_of
from ser.sweep.finetune import FROZEN, LORA, WHOLE, points
from ser.sweep.probe_published import PAPERS, WEIGHTED
from ser.sweep.probe_report import encoders, layer
from ser.sweep.results import CellResult, load_sweeps

_LAYERS = ("EF", "MF", "LF", "LGF")
_METHODS = ("ADD-Fusion", "Concat-Fusion", "AT-Fusion")
_LOSSES = ("L_s", "L_p")


def sweep_plots(out: Path, plots: Path) -> list[Path]:
    """Write the figures of every sweep table that has one; returns the files."""
    plots.mkdir(parents=True, exist_ok=True)
    written = []
    for sweep in load_sweeps(out):
        for table in sweep["tables"]:
            results = [r for r in sweep["results"] if r.row["table"] == table["name"]]
            if table["figure"] == "cross":  # cross-corpus: its train x test heat-maps
                same = sweep["name"] == table["name"]
                stem = sweep["name"] if same else f"{sweep['name']}_{table['name']}"
                written += write_heatmaps(tables_of(results), plots, stem)
                continue
            draws = {"queries": _queries, "heatmap": _heatmap, "layers": _layers}
            draw = {**draws, "finetune": _finetune}.get(table["figure"])
            if draw is None:
                continue
            for column, drawn in _per_corpus(results).items():  # one figure per corpus
                title = table["title"] + (f" ({column})" if column else "")
                fig = draw(drawn, title)
                name = f"{sweep['name']}_{table['name']}" + (f"_{_slug(column)}" if column else "")
                path = plots / f"{name}.png"
                fig.savefig(path)
                written.append(path)
    return written


def _per_corpus(results: list[CellResult]) -> dict[str, list[CellResult]]:
    """The cells of each corpus of a sweep over several (`ser.sweep.by_corpus`), each
    drawn alone, the paper's numbers beside IEMOCAP's only; {"": results} for a table
    on one IEMOCAP store (its figure as before)."""
    if not spans_corpora(results):
        return {"": results}
    groups: dict[str, list[CellResult]] = {}
    for r in results:
        row = r.row if papers_apply(r) else {**r.row, "published": {}}
        groups.setdefault(column_of(r), []).append(CellResult(row, r.run))
    return groups


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _queries(results: list[CellResult], title: str) -> Figure:
    points = sorted(
        (int(r.row["config"]["queries"]), ms[0], ms[1])
        for r in results
        if (ms := r.mean_std("ua")) is not None
    )
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    if points:
        x, y, err = zip(*points, strict=True)
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label="ours (mean ± std over seeds)")
        ax.set_xticks(list(x))
    published = [
        (int(r.row["config"]["queries"]), r.row["published"]["ua"])
        for r in results
        if "ua" in r.row["published"]
    ]
    if published:
        ax.plot(*zip(*published, strict=True), "s", color="black", label="paper")
    ax.set(xlabel="number of emotion queries L", ylabel="UA (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _heatmap(results: list[CellResult], title: str) -> Figure:
    grid = np.full((len(_LAYERS), len(_METHODS) * len(_LOSSES)), np.nan)
    for r in results:
        layer, _, method = r.row["row"].partition(" ")
        ms = r.mean_std("wa")
        if ms is None or layer not in _LAYERS or r.row.get("column") not in _LOSSES:
            continue
        col = _METHODS.index(method) * len(_LOSSES) + _LOSSES.index(r.row["column"])
        grid[_LAYERS.index(layer), col] = ms[0]
    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label="WA (%), ours")
    labels = [f"{m.split('-')[0]} {loss}" for m in _METHODS for loss in _LOSSES]
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_yticks(range(len(_LAYERS)), _LAYERS)
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _layers(results: list[CellResult], title: str) -> Figure:
    """UA and WA against the layer, a line per encoder (mean ± std over seeds); its
    weighted sum right of the last layer (Σ); each paper's number as a black-edged
    marker where it stands in method (`Reference.beside`: our last layer or Σ)."""
    by_encoder = encoders(results)
    top = max((n for r in results if (n := layer(r)) is not None), default=0)
    fig = Figure(figsize=(10, 4), dpi=100)
    for i, metric in enumerate(("ua", "wa")):
        ax = fig.add_subplot(1, 2, i + 1)
        for k, (stem, cells) in enumerate(by_encoder.items()):
            color = f"C{k % 10}"
            points = sorted(
                (_x(r, top), ms[0], ms[1]) for r in cells if (ms := r.mean_std(metric)) is not None
            )
            curve = [p for p in points if p[0] <= top]
            if curve:
                x, y, err = (list(v) for v in zip(*curve, strict=True))
                ax.errorbar(x, y, yerr=err, marker="o", ms=3, capsize=2, color=color, label=stem)
            for x_sum, y_sum, err_sum in (p for p in points if p[0] > top):
                ax.errorbar([x_sum], [y_sum], yerr=[err_sum], marker="D", capsize=2, color=color)
            _published(ax, cells, metric, top, color)
        ticks = [*range(top + 1), top + 1]
        ax.set_xticks(ticks, [*map(str, range(top + 1)), "Σ"], fontsize=7)
        ax.set(xlabel=f"layer (Σ: {WEIGHTED})", ylabel=f"{metric.upper()} (%)")
        ax.set_xlim(-0.5, top + 2)  # room for the papers' names right of Σ
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title + " (black-edged squares: published)", fontsize=9)
    fig.tight_layout()
    return fig


def _x(r: CellResult, top: int) -> int:
    """A cell's place on the layer axis: its layer, the weighted sum right of them all."""
    n = layer(r)
    return top + 1 if n is None else n


def _published(ax: Axes, cells: list[CellResult], metric: str, top: int, color: str) -> None:
    """The papers' numbers of this encoder in `metric`, where their method stands."""
    singles = [n for r in cells if (n := layer(r)) is not None]
    for paper in PAPERS:
        key = paper.keys.get(metric)
        value = cells[0].row["published"].get(key) if key else None
        if value is None or not singles:
            continue
        x = top + 1 if paper.beside == WEIGHTED else max(singles)
        ax.plot([x], [value], "s", color=color, mec="black", ms=7)
        ax.annotate(paper.name, (x, value), fontsize=6, xytext=(4, 4), textcoords="offset points")


def _finetune(results: list[CellResult], title: str) -> Figure:
    """UA (mean ± std over seeds) against k, a line for the whole layers and one for LoRA
    (both from the frozen k = 0), and against the run's training seconds, each cell
    marked with its k."""
    fig = Figure(figsize=(10, 4), dpi=100)
    by_k, by_time = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for n, tuning in enumerate((WHOLE, LORA)):
        found = points(results, tuning)
        if not found:
            continue
        k, ua, std, seconds = (list(v) for v in zip(*found, strict=True))
        color = f"C{n}"
        by_k.errorbar(k, ua, yerr=std, marker="o", capsize=3, color=color, label=tuning)
        tuned = [i for i, x in enumerate(k) if x > 0]
        by_time.plot([seconds[i] for i in tuned], [ua[i] for i in tuned], "o", color=color,
                     label=tuning)  # fmt: skip
        for i in tuned:
            by_time.annotate(f"k={k[i]}", (seconds[i], ua[i]), fontsize=7, xytext=(3, 3),
                             textcoords="offset points")  # fmt: skip
    frozen = [p for p in points(results, FROZEN) if p[0] == 0]
    if frozen:
        by_time.plot([frozen[0][3]], [frozen[0][1]], "s", color="black", label=f"k=0 {FROZEN}")
    ticks = sorted({int(r.row["meta"]["k"]) for r in results})
    by_k.set_xticks(ticks)
    by_k.set(xlabel="k: top layers trained", ylabel="UA (%)")
    by_time.set(xlabel="training seconds (the run's)", ylabel="UA (%)")
    for ax in (by_k, by_time):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
