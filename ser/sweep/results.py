"""A sweep's cells joined with their run records: what its tables and figures read.

`load_sweeps(out)` reads every manifest of ``<out>/sweeps/`` (`ser.sweep.runner`) and
pairs each of its cells with the record of ``<out>/cells/<key>/`` (None until it ran).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.errors import ConfigError
from ser.heads.metrics import mean_std_text
from ser.report.runs import run_summary
from ser.runs.record import RunRecord
from ser.sweep.cells import cell_record
from ser.sweep.runner import SWEEPS


@dataclass(frozen=True)
class CellResult:
    """A manifest row with its run record (None until the cell has run)."""

    row: dict[str, Any]
    run: RunRecord | None
    problem: str = ""  # why its record cannot be read (its tables say "damaged")

    def scores(self, metric: str) -> dict[tuple[int, str], float]:
        """(seed, fold) -> the metric, for the folds the cell has finished that have it (a
        run on emotion attributes alone has no categorical metric)."""
        if self.run is None:
            return {}
        held = {e.key: e.metrics.score(metric) for e in self.run.folds if e.metrics is not None}
        return {key: value for key, value in held.items() if value is not None}

    def mean_std(self, metric: str) -> tuple[float, float, int] | None:
        """(mean, std, n): the std over seeds, or over one seed's folds; n values. None
        before the cell has a fold, or for a run without the metric."""
        if self.run is None or not (self.run.summary or self.run.folds):
            return None
        s = run_summary(self.run)  # fills in `n` for records written before runs kept it
        if s.get(metric) is None:
            return None
        return float(s[metric]), float(s.get(f"{metric}_std", 0.0)), int(s["n"])

    def ours(self, metric: str) -> str:
        """The metric as a table shows it: "70.10 ± 1.20 (n = 3)", "x (n = 1)" for one
        value (never ± 0.00), "(partial)" before the cell finished, else "not run" (or
        "damaged": a record that cannot be read, `problem`)."""
        ms = self.mean_std(metric)
        if ms is None:
            if self.run is None:
                return "damaged" if self.problem else "not run"
            return "running" if not (self.run.summary or self.run.folds) else "-"
        shown = mean_std_text(*ms)
        return shown + ("" if self.run and self.run.complete else " (partial)")


def is_sweep(path: Path) -> bool:
    return (Path(path) / SWEEPS).is_dir()


def load_sweeps(out: Path) -> list[dict[str, Any]]:
    """Every sweep manifest in `out`, its cells joined with their records."""
    files = sorted((Path(out) / SWEEPS).glob("*.json"))
    if not files:
        raise ConfigError(f"{out}: no sweep manifests in {out / SWEEPS}")
    sweeps = []
    for file in files:
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{file}: unreadable sweep manifest ({e})") from e
        runs = [cell_record(out, row["key"]) for row in manifest["cells"]]
        manifest["results"] = [
            CellResult(row, run if run and run.folds else None, problem)
            for row, (run, problem) in zip(manifest["cells"], runs, strict=True)
        ]
        sweeps.append(manifest)
    return sweeps


def damaged_cells(sweeps: list[dict[str, Any]]) -> list[str]:
    """A line for each cell of `sweeps` (`load_sweeps`) whose record cannot be read."""
    results = [r for sweep in sweeps for r in sweep["results"] if r.problem]
    return [f"cell {r.row['row_key']!r} [{r.row['key']}]: {r.problem}" for r in results]
