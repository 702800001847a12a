"""What `ser train` prints of a run's scores: a line per finished fold and the closing
table (per fold, mean ± std, pooled), each head's columns said by the head
(`ser.heads.reported.Reported.console_columns`), so neither asks which heads a run has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from ser.heads.metrics import mean_std_text
from ser.heads.recorded import record_heads
from ser.heads.reported import Reported
from ser.report.runs import run_summary, spread_label
from ser.runs.record import RunRecord
from ser.track.console import score_text


def summary_table(record: RunRecord) -> Table:
    """Per-fold scores, their mean (± std over seeds, or one seed's folds; no ± for one
    value) and the pooled scores (every fold's predictions together) of a run record."""
    heads = record_heads([record], shown=True)
    scored = f"{len(record.classes)} classes" if record.classes else _names(record)
    table = Table(title=f"{record.name} ({record.protocol}, {scored})")
    columns = [(h, key, header) for h in heads for key, header in h.console_columns()]
    for column in ("seed", "fold", *(c[2] for c in columns), "best epoch", "seconds"):
        table.add_column(column, justify="left" if column == "fold" else "right")
    for e in record.folds:
        cells = (score_text(h.number(h.recorded(e), key), h) for h, key, _ in columns)
        table.add_row(str(e.seed), e.fold, *cells, str(e.best_epoch), f"{e.seconds:.1f}")
    s = run_summary(record)
    n = int(s["n"])
    means = [_mean(s, key, n, h) for h, key, _ in columns]
    table.add_row("mean", spread_label(s), *means, "", f"{record.seconds:.1f}", style="bold")
    seeds = int(s["seeds"])
    over = "all folds" + (f", {seeds} seeds" if seeds > 1 else "")
    pooled = {h.name: h.pooled(record) for h in heads}
    cells = (score_text(h.number(pooled[h.name], key), h) for h, key, _ in columns)
    table.add_row("pooled", over, *cells, "", "")
    if any(e.stacked > 1 for e in record.folds):
        table.caption = "a fold's seconds: its stacked model's time / the members trained in it"
    return table


def _names(record: RunRecord) -> str:
    """What a run without classes trained: its heads' names."""
    return ", ".join(h.name for h in record_heads([record]))


def _mean(summary: Mapping[str, Any], key: str, n: int, head: Reported) -> str:
    if summary.get(key) is None:
        return "-"
    return mean_std_text(summary[key], summary[f"{key}_std"], n, head.decimals)
