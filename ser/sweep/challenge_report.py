"""The `msp-podcast-challenge` preset's table (`ser report OUT`): each task's score of
ours on Development beside the published Test3 numbers, on the challenge's scale (macro
F1 and mean CCC as fractions), the difference of test sets said above the table."""

from __future__ import annotations

from typing import Any

import numpy as np

from ser.report.attributes import AttributeMetrics
from ser.sweep.challenge import published
from ser.sweep.results import CellResult


def challenge_scores(result: CellResult) -> list[float]:
    """Each finished (seed, fold)'s score as the challenge counts it: macro F1 as a
    fraction (task 1), the mean CCC of the three attributes (task 2)."""
    if result.run is None:
        return []
    if result.row["meta"]["task"] == "1":
        return [float(e.metrics["f1"]) / 100 for e in result.run.folds]  # percent -> fraction
    return [AttributeMetrics.from_dict(e.attributes).ccc_mean for e in result.run.folds]


def _ours(result: CellResult) -> str:
    values = challenge_scores(result)
    if not values:
        return "not run" if result.run is None else "running"
    mean, n = float(np.mean(values)), len(values)
    # Three decimals, as the challenge prints its scores (fractions, not percent).
    shown = f"{mean:.3f} ± {np.std(values, ddof=1):.3f}" if n > 1 else f"{mean:.3f} (n = 1)"
    return shown + ("" if result.run and result.run.complete else " (partial)")


def challenge_md(table: dict[str, Any], results: list[CellResult]) -> str:
    """The preset's Markdown: a row per task, ours (Development) then each published
    entry (Test3) with its edition and source."""
    lines = [f"## {table['title']}", "", table["note"], ""]
    run = next((r.run for r in results if r.run), None)
    if run is not None:
        lines += [f"Ours: protocol {run.protocol}; validation: {run.validation or '-'}.", ""]
    lines += ["| task | metric | ours (Development) | published (Test3) |", "|---|---|---|---|"]
    for result in results:
        task = result.row["meta"]["task"]
        metric = "macro F1" if task == "1" else "mean CCC"
        others = "; ".join(
            f"{p['entry']}, {p['edition']}: {float(p['value']):.3f} ({p['source']})"
            for p in published(task)
        )
        lines.append(f"| {result.row['label']} | {metric} | {_ours(result)} | {others} |")
    return "\n".join(lines) + "\n"
