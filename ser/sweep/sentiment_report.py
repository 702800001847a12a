"""The `mosei-sentiment` preset's table (`ser report OUT`): per store's corpus, our text,
audio and fused rows (mean ± std over seeds of the field's metrics) with the published
MulT, MISA and Self-MM rows of that corpus below them, each with its features."""

from __future__ import annotations

from typing import Any

from ser.report.published_sentiment import COLUMNS, HEAD, published_md
from ser.sweep.results import CellResult


def _ours(result: CellResult, metric: str) -> str:
    """`CellResult.ours` of the head's number (``sentiment-score_mae``), "-" where the run
    has none (trained on another target)."""
    return result.ours(f"{HEAD}_{metric}")


def sentiment_md(table: dict[str, Any], results: list[CellResult]) -> str:
    """The preset's Markdown: its note, then a table per corpus its cells ran on."""
    lines = [f"## {table['title']}", "", table["note"], ""]
    corpora = list(dict.fromkeys(r.row["store"]["corpus"] for r in results))
    for corpus in corpora:
        cells = [r for r in results if r.row["store"]["corpus"] == corpus]
        column = cells[0].row["store"]["column"]
        lines += [f"### {column}", "", "| ours | features | " + " | ".join(COLUMNS.values()) + " |"]
        lines.append("|---|---|" + "---|" * len(COLUMNS))
        for r in cells:
            features = r.row["config"].get("features") or "-"
            shown = " | ".join(_ours(r, m) for m in COLUMNS)
            lines.append(f"| {r.row['label']} | {features} | {shown} |")
        published = published_md(corpus)
        lines += ["", published] if published else [""]
    return "\n".join(lines).rstrip("\n") + "\n"
