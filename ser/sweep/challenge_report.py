"""The `msp-podcast-challenge` preset's table (`ser report OUT`): each task's score of
ours on Development beside the published Test3 numbers, on the challenge's scale (macro
F1 and mean CCC as fractions), the difference of test sets said above the table."""

from __future__ import annotations

from typing import Any

from ser.heads.attribute_metrics import MEAN
from ser.heads.metrics import mean_std_text
from ser.sweep.challenge import published
from ser.sweep.results import CellResult


def _ours(result: CellResult) -> str:
    """Our score as the challenge counts it, mean ± std over seeds as every table of
    ours: macro F1 as a fraction (task 1), the mean CCC of the attributes (task 2), to
    three decimals as the challenge prints its scores."""
    task1 = result.row["meta"]["task"] == "1"
    found = result.mean_std("f1" if task1 else MEAN)
    if found is None:
        return "not run" if result.run is None else "running"
    mean, std, n = found
    scale = 0.01 if task1 else 1.0  # percent -> fraction
    shown = mean_std_text(mean * scale, std * scale, n, decimals=3)
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
