"""The `cross-corpus` preset's report (`ser.sweep.cross`): its cells as the train x test
tables and heat-maps of `ser.report.cross`, one per grid point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ser.report.cross import CrossCell, CrossTable, cross_tables, tables_md
from ser.runs.cross import Cross
from ser.sweep.results import CellResult


def cells_of_results(results: Sequence[CellResult]) -> list[CrossCell]:
    """The sweep's cells as `ser.report.cross` tables them: a table per grid point."""
    cells = []
    for r in results:
        meta, run = r.row["meta"], r.run
        train, test = meta["columns"]
        cells.append(
            CrossCell(
                train,
                test,
                run,
                tuple(meta["corpora"]),
                _encoder(run.cross if run else None),
                _grid(r.row["grid"]),
                (meta["store"], meta["test_store"]),
            )
        )
    return cells


def _encoder(cross: Cross | None) -> str | None:
    """The one encoder a cross-corpus run's features came from (None: several, none)."""
    encoders = list((cross.train.encoders or {}).values()) if cross else []
    return str(encoders[0]) if len(encoders) == 1 and encoders[0] else None


def _grid(grid: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in grid.items())


def tables_of(results: Sequence[CellResult]) -> list[CrossTable]:
    return cross_tables(cells_of_results(results))


def cross_md(table: Mapping[str, Any], results: Sequence[CellResult]) -> str:
    """The preset's report: its title, what ours did, the train x test tables."""
    ours = next((r.run for r in results if r.run), None)
    lines = [f"## {table['title']}", "", table["note"]]
    if ours is not None:
        lines.append(f"Features {ours.config.get('features')}, model {ours.config.get('fusion')}.")
    lines.append("")
    return "\n".join(lines) + "\n" + tables_md(tables_of(results))
