"""A sweep's figures: MSMSER's Fig. 2 (UA against L) and the fusion study's heat-map.

matplotlib's `Figure`, no pyplot state, as `ser.report.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ser.sweep.report import CellResult, load_sweeps

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
            draw = {"queries": _queries, "heatmap": _heatmap}.get(table["figure"])
            if draw is None:
                continue
            fig = draw(results, table["title"])
            path = plots / f"{sweep['name']}_{table['name']}.png"
            fig.savefig(path)
            written.append(path)
    return written


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
