"""The heat-map of a train x test table (`ser.report.cross`): UA of each (training,
test) pair, its number in the cell (EmoBox's below it where published), the diagonal
each corpus under its own protocol. matplotlib's `Figure`, no pyplot state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ser.report.cross import CrossTable
from ser.report.runs import file_stem


def heatmap(table: CrossTable, title: str = "") -> Figure:
    """UA of each pair of `table`, rows trained on, columns tested on; a pair not run
    stays blank."""
    rows, cols = table.trained, table.tested
    values = np.full((len(rows), len(cols)), np.nan)  # [train, test]
    for (train, test), cell in table.cells.items():
        score = cell.score("ua")
        if score is not None:
            values[rows.index(train), cols.index(test)] = score[0]
    fig = Figure(figsize=(1.6 + 1.5 * len(cols), 1.2 + 1.1 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=100.0)
    fig.colorbar(image, ax=ax, label="UA (%)")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("test corpus")
    ax.set_ylabel("training corpus")
    model = f": {table.model}" if table.model else ""
    ax.set_title(title or f"cross-corpus UA{model}", fontsize=9)
    for (train, test), cell in table.cells.items():
        i, j = rows.index(train), cols.index(test)
        value = values[i, j]
        text = "-" if math.isnan(value) else f"{value:.1f}"
        if (published := cell.published()) is not None:
            text += f"\n(EmoBox {published.value:.1f})"
        light = not math.isnan(value) and value > 60.0  # viridis: light above ~60 of 100
        ax.text(
            j, i, text, ha="center", va="center", fontsize=8, color="black" if light else "white"
        )
    return fig


def write_heatmaps(tables: Sequence[CrossTable], out_dir: Path, stem: str) -> list[Path]:
    """A PNG per table into `out_dir`: ``<stem>_cross.png`` (``_cross_<n>`` for the
    n-th table past the first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for n, table in enumerate(tables, 1):
        suffix = "" if n == 1 else f"_{n}"
        path = out_dir / f"{file_stem(stem)}_cross{suffix}.png"
        heatmap(table).savefig(path)
        written.append(path)
    return written
