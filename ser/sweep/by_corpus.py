"""A table swept over several corpora: one column group per corpus, the paper's beside
IEMOCAP's only.

`ser sweep PRESET --store A --store B` records each cell's store and the report's column
for it (`ser.sweep.stores`). A table whose cells are all on IEMOCAP stores renders as
before (`ser.sweep.report`); one with a cell on another corpus renders here: a row per
cell of the preset, and per corpus its UA and WA, the paper's numbers for IEMOCAP only
(the papers report IEMOCAP), and the paired test against the reference row on the same
corpus. Above the table, each corpus's protocol and class set, which on corpora other
than IEMOCAP are the corpus's own where the preset fixed IEMOCAP's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ser.corpus.registry import corpus_kind
from ser.report.runs import markdown_table
from ser.runs.record import RunRecord
from ser.sweep.results import CellResult

# Our columns of every table (`ser.sweep.report`'s too): the progress lines print both too.
OURS = ("ua", "wa")
RULE = (
    "On corpora other than IEMOCAP the preset's own protocol and class set (IEMOCAP's) "
    "give way to the corpus's default; the paper's numbers are IEMOCAP's, beside IEMOCAP "
    "only."
)


def papers_apply(r: CellResult) -> bool:
    """Whether the cell's published numbers are on its corpus: a row bound to its store
    carries that store's corpus's (the probe's); else the papers' are IEMOCAP's, as its
    store record says (a sweep manifest written before stores were recorded ran on
    IEMOCAP's, the papers' corpus)."""
    if r.row.get("own_store"):
        return True
    store = r.row.get("store") or {}
    if "papers" in store:
        return bool(store["papers"])
    return "corpus" not in store or corpus_kind(str(store["corpus"])).papers


def column_of(r: CellResult) -> str:
    """The report's column for the cell's store."""
    return str((r.row.get("store") or {}).get("column", "IEMOCAP"))


def spans_corpora(results: Sequence[CellResult]) -> bool:
    """Whether a table has a cell on another corpus than IEMOCAP (or on several stores)."""
    stores = {(r.row.get("store") or {}).get("path") for r in results}
    return len(stores) > 1 or not all(papers_apply(r) for r in results)


def by_corpus_md(
    table: dict[str, Any],
    results: list[CellResult],
    paper: Callable[[dict[str, Any], str], str],
    versus: Callable[[CellResult, CellResult | None, str], str],
    protocol: Callable[[RunRecord], str],
) -> str:
    """The table with a column group per corpus (`paper`, `versus` and `protocol`: how
    `ser.sweep.report` writes a published number, a paired test and a run's protocol)."""
    metrics = table["metrics"]
    groups: dict[str, list[CellResult]] = {}
    for r in results:
        groups.setdefault(column_of(r), []).append(r)
    iemocap = {c for c, rs in groups.items() if all(papers_apply(r) for r in rs)}
    lines = [f"## {table['title']}", ""]
    if table["paper"]:
        lines.append(f"Paper: {table['paper']}; its protocol (IEMOCAP): {table['protocol']}.")
    lines += [_ours_line(column, rs, protocol) for column, rs in groups.items()]
    lines.append(RULE + " Mean ± std over seeds (one seed: over its folds).")
    if table.get("note"):
        lines.append(table["note"])
    head = ["cell"]
    for column in groups:
        head += [f"{m.upper()} {column} (ours)" for m in OURS]
        if column in iemocap:
            head += [f"{m.upper()} {column} (paper)" for m in metrics]
        head.append(f"vs {table['reference']} ({column})")
    refs = {
        column: next((r for r in rs if r.row["row_key"] == table["reference"]), None)
        for column, rs in groups.items()
    }
    rows = []
    for label in dict.fromkeys(r.row["label"] for r in results):
        row = [label]
        for column, rs in groups.items():
            cell = next((r for r in rs if r.row["label"] == label), None)
            width = len(OURS) + 1 + (len(metrics) if column in iemocap else 0)
            if cell is None:
                row += ["-"] * width
                continue
            row += [cell.ours(m) for m in OURS]
            if column in iemocap:
                row += [paper(cell.row, m) for m in metrics]
            row.append(versus(cell, refs[column], metrics[0]))
        rows.append(row)
    return "\n".join([*lines, "", *markdown_table(head, rows)]) + "\n"


def _ours_line(column: str, results: list[CellResult], protocol: Callable[[RunRecord], str]) -> str:
    """What our runs on the column's store used: protocol, validation, class set."""
    ours = next((r.run for r in results if r.run), None)
    if ours is None:
        return f"Ours on {column}: not run yet."
    classes = ours.classes
    return (
        f"Ours on {column}: {protocol(ours)}; validation: {ours.validation or '-'}; "
        f"{len(classes)} classes ({', '.join(map(str, classes))})."
    )
