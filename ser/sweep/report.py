"""A sweep's tables as the papers print them, ours beside theirs, each row tested.

For every table of ``<out>/sweeps/*.json`` (`ser.sweep.runner.write_manifest`), one row
per cell in the paper's order: our UA and WA (mean ± std as `ser report` writes them),
the paper's numbers beside them (its protocol named above the table), and the Wilcoxon
signed-rank test over the (seed, fold) pairs a cell shares with the paper's reference
row, with the mean difference; cells with further heads (emotion attributes, ...) show
each one's score beside them (`Head.score_column`: the attributes' mean CCC). The fusion
study's cells are laid out as its Table 2 (fusion layer and method by loss), with its
Tables 1 and 3 from the same runs. A table
swept over several corpora has a column group per corpus (`ser.sweep.by_corpus`). CSV
holds one line per (cell, seed, fold), with the cell's corpus last when a sweep spans
corpora, and each further head's score.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.heads.recorded import record_heads
from ser.heads.reported import EntryView, Reported
from ser.report.runs import markdown_table
from ser.runs.record import RunRecord
from ser.sweep.by_corpus import OURS, by_corpus_md, column_of, papers_apply, spans_corpora
from ser.sweep.cells import cell_dir
from ser.sweep.challenge_report import challenge_md
from ser.sweep.cross_report import cross_md
from ser.sweep.finetune import CSV_COLUMNS, csv_columns, finetune_md
from ser.sweep.presets import FINETUNE, FUSION_TABLE3, FUSION_TABLE3_CLASSES
from ser.sweep.probe_report import probe_md
from ser.sweep.results import CellResult, load_sweeps
from ser.sweep.sentiment_report import sentiment_md
from ser.train.checkpoint import checkpoint_dir, fold_key


def paired_test(a: CellResult, ref: CellResult, metric: str) -> tuple[float, float, int]:
    """(mean difference a - ref, Wilcoxon p, pairs) over the (seed, fold)s both ran;
    p is NaN with fewer than 2 pairs or no difference at all."""
    from scipy.stats import wilcoxon

    x, y = a.scores(metric), ref.scores(metric)
    shared = sorted(set(x) & set(y))
    diffs = np.array([x[k] - y[k] for k in shared])
    if len(diffs) == 0:
        return math.nan, math.nan, 0
    if len(diffs) < 2 or not np.any(diffs):
        return float(diffs.mean()), math.nan, len(diffs)
    return float(diffs.mean()), float(wilcoxon(diffs).pvalue), len(diffs)


def sweep_report(out: Path, fmt: str = "md", sweeps: list[dict[str, Any]] | None = None) -> str:
    """Markdown tables (or CSV lines per fold) of every sweep in `out` (`sweeps`: its
    `load_sweeps`, read already)."""
    sweeps = load_sweeps(out) if sweeps is None else sweeps
    if fmt == "csv":
        return _csv(sweeps, out)
    parts = []
    for sweep in sweeps:
        for table in sweep["tables"]:
            results = [r for r in sweep["results"] if r.row["table"] == table["name"]]
            if table["figure"] == "layers":  # the probe: its own layout, ours per corpus
                heading = _heading({**table, "paper": ""}, results, ours=False)
                parts.append(probe_md(table, results, heading))
                continue
            if table["figure"] == "cross":  # cross-corpus: train x test tables
                parts.append(cross_md(table, results))
                continue
            if table["figure"] == "challenge":  # MSP-Podcast's tasks beside Test3's numbers
                parts.append(challenge_md(table, results))
                continue
            if table["figure"] == "sentiment":  # MOSEI's score beside the published rows
                parts.append(sentiment_md(table, results))
                continue
            if table["figure"] == FINETUNE:  # k top layers: scores, parameters, seconds
                parts.append(finetune_md(table, results, out))
                continue
            if spans_corpora(results):
                parts.append(by_corpus_md(table, results, _paper, _versus, _protocol))
                results = [r for r in results if papers_apply(r)]  # its Table 3's
            else:
                parts.append(_table_md(table, results))
            if table["name"] == "fusion-study" and results:
                parts.append(_fusion_table3(results))
    return "\n".join(parts)


def missing_weights(out: Path, sweeps: Sequence[dict[str, Any]]) -> list[str]:
    """A line for each cell of `sweeps` (`load_sweeps`) whose record lists (seed, fold)s
    whose checkpoint files are gone: its tables show "-" where they read them (a
    fine-tuning cell's trainable parameters) and `ser predict` cannot use it."""
    lines, seen = [], set()
    for result in (r for sweep in sweeps for r in sweep["results"] if r.run is not None):
        key = result.row["key"]
        if key in seen:  # a cell two tables share
            continue
        seen.add(key)
        folder = checkpoint_dir(cell_dir(out, key))
        stems = [fold_key(*entry.key) for entry in result.run.folds]
        files = [
            folder / f"{stem}{suffix}" for stem in stems for suffix in (".json", ".safetensors")
        ]
        gone = [f for f in files if not f.is_file()]
        if gone:
            more = f" and {len(gone) - 1} more file(s)" if len(gone) > 1 else ""
            shown = "its trainable parameters show '-', " if result.row["table"] == FINETUNE else ""
            lines.append(
                f"cell {result.row['row_key']!r} [{key}]: its checkpoint {gone[0]}{more} is "
                f"missing ({shown}`ser predict --run` cannot use it); delete "
                f"{cell_dir(out, key)} and run the sweep again to train it anew"
            )
    return lines


def _table_md(table: dict[str, Any], results: list[CellResult]) -> str:
    """Rows as the paper prints them; cells with a column (the fusion study's losses)
    side by side in one row, the others below in a table of their own."""
    lines = _heading(table, results)
    ref = next((r for r in results if r.row["row_key"] == table["reference"]), None)
    pivoted = [r for r in results if r.row.get("column")]
    plain = [r for r in results if not r.row.get("column")]
    if pivoted:
        lines += _pivot(table, pivoted, ref)
    if plain:
        lines += _rows(table, plain, ref)
    return "\n".join(lines) + "\n"


def _heading(table: dict[str, Any], results: list[CellResult], ours: bool = True) -> list[str]:
    """The title, the paper's protocol, ours (`ours`: the first run's), the note, ASR."""
    run = next((r.run for r in results if r.run), None) if ours else None
    lines = [f"## {table['title']}", ""]
    if table["paper"]:
        lines.append(f"Paper: {table['paper']}; its protocol: {table['protocol']}.")
    if run is not None:
        lines.append(
            f"Ours: {_protocol(run)}; validation: {run.validation or '-'}; "
            "mean ± std over seeds (one seed: over its folds)."
        )
    if table.get("note"):
        lines.append(table["note"])
    asr = asr_line([r.run for r in results if r.run])
    if asr:
        lines.append(asr)
    return lines


def _protocol(run: RunRecord) -> str:
    """The protocol and whether speakers are held out (the validation is its own part)."""
    return f"{run.protocol} ({'speaker-independent' if run.independent else 'speaker-dependent'})"


def asr_line(runs: Sequence[RunRecord]) -> str:
    """A line naming the ASR transcripts some cells' text came from and their WER (over
    each cell's utterances; one value per transcript set when the cells agree), "" when
    all text is gold.

    >>> from ser.runs.data import AsrSet
    >>> gold = RunRecord("t", {}, "loso", ())
    >>> made = {"m@asr-w": AsrSet(transcripts="asr-w", wer=0.25)}
    >>> asr = RunRecord("a", {}, "loso", (), asr=made)
    >>> asr_line([asr, gold])
    'Text from ASR transcripts: asr-w (WER 25.00 %); other cells: gold transcripts or no text.'
    """
    wers: dict[str, set[str]] = {}
    for run in runs:
        for entry in run.asr.values():
            shown = "unknown" if entry.wer is None else f"{100 * entry.wer:.2f} %"
            wers.setdefault(entry.transcripts, set()).add(shown)
    if not wers:
        return ""
    named = ", ".join(f"{name} (WER {' / '.join(sorted(v))})" for name, v in wers.items())
    gold = any(not run.asr for run in runs)
    return f"Text from ASR transcripts: {named}" + (
        "; other cells: gold transcripts or no text." if gold else "."
    )


def _pivot(table: dict[str, Any], results: list[CellResult], ref: CellResult | None) -> list[str]:
    metric = table["metrics"][0]  # the paper's, and the paired test's
    columns = list(dict.fromkeys(r.row["column"] for r in results))
    head = ["cell"]
    for c in columns:
        head += [f"{m.upper()} {c} (ours)" for m in OURS]
        head += [f"{metric.upper()} {c} (paper)", f"{c} vs {table['reference']}"]
    by_row: dict[str, dict[str, CellResult]] = {}
    for r in results:
        by_row.setdefault(r.row["row"], {})[r.row["column"]] = r
    rows = []
    for label, cells in by_row.items():
        row = [label]
        for c in columns:
            cell = cells.get(c)
            if cell is None:
                row += ["-"] * (len(OURS) + 2)
                continue
            row += [cell.ours(m) for m in OURS]
            row += [_paper(cell.row, metric), _versus(cell, ref, metric)]
        rows.append(row)
    return ["", *markdown_table(head, rows)]


def _rows(table: dict[str, Any], results: list[CellResult], ref: CellResult | None) -> list[str]:
    metrics, further = table["metrics"], _further(results)
    ours = (*OURS, *(str(h.score_column()) for h in further))  # cells on attributes: CCC
    head = ["cell", *(f"{m.upper()} (ours)" for m in OURS)]
    head += [f"{h.score_label()} (ours)" for h in further]
    head += [f"{m.upper()} (paper)" for m in metrics]
    head += [f"vs {table['reference']}", "seeds x folds"]
    rows = [
        [
            r.row["label"],
            *(r.ours(m) for m in ours),
            *(_paper(r.row, m) for m in metrics),
            _versus(r, ref, metrics[0]),
            str(len(r.scores(metrics[0])) or "-"),
        ]
        for r in results
    ]
    return ["", *markdown_table(head, rows)]


def _further(results: Sequence[CellResult]) -> tuple[Reported, ...]:
    """The heads beside the category any cell trained, whose score its row shows (the
    emotion attributes' mean CCC, ...)."""
    heads = record_heads([r.run for r in results if r.run is not None])
    return tuple(h for h in heads if not h.category and h.score_column())


def _paper(row: dict[str, Any], metric: str) -> str:
    value = row["published"].get(metric)
    if value is None:
        return "-"
    std = row["published"].get(f"{metric}_std")
    return f"{value:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _versus(r: CellResult, ref: CellResult | None, metric: str) -> str:
    if ref is None or r.row["key"] == ref.row["key"]:
        return "reference" if ref is not None else "-"
    diff, p, n = paired_test(r, ref, metric)
    if n == 0:
        return "-"
    return f"{diff:+.2f} (p={p:.3g})" if not math.isnan(p) else f"{diff:+.2f} (n={n})"


def _fusion_table3(results: list[CellResult]) -> str:
    """Its Table 3: per-class accuracy of A, T and LGF + ADD (single, perspective)."""
    by_key = {r.row["row_key"]: r for r in results}
    sources = {
        "A (unimodal)": "Audio",
        "T (unimodal)": "Text",
        "A+T (single loss)": "LGF ADD-Fusion/L_s",
        "A+T (perspective loss)": "LGF ADD-Fusion/L_p",
    }
    head = ["model"] + [f"{c} {who}" for c in FUSION_TABLE3_CLASSES for who in ("ours", "paper")]
    rows = []
    for label, key in sources.items():
        r = by_key.get(key)
        recalls = _recalls(r.run) if r is not None and r.run else {}
        row = [label]
        for c, paper in zip(FUSION_TABLE3_CLASSES, FUSION_TABLE3[label], strict=True):
            row += [f"{recalls[c]:.2f}" if c in recalls else "-", f"{paper:.2f}"]
        rows.append(row)
    title = "### Fusion study Table 3: per-class accuracy (recall), ours and the paper's"
    return "\n".join([title, "", *markdown_table(head, rows)]) + "\n"


def _recalls(run: RunRecord) -> dict[str, float]:
    """Per-class recall, mean over the run's (seed, fold) entries."""
    values: dict[str, list[float]] = {}
    for e in run.folds:
        held = e.metrics.per_class_recall if e.metrics is not None else None
        for c, v in (held or {}).items():
            if not math.isnan(v):  # a class absent from the fold's truth
                values.setdefault(c, []).append(v)
    return {c: float(np.mean(v)) for c, v in values.items()}


def _csv(sweeps: Sequence[dict[str, Any]], out: Path | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    corpora = any(spans_corpora(sweep["results"]) for sweep in sweeps)
    # a finetune table's k, tuning, parameters (in `out`'s cells), seconds; blank for others
    tables = [t for sweep in sweeps for t in sweep.get("tables", ())]
    tuned = out is not None and any(t["figure"] == FINETUNE for t in tables)
    further = _further([r for sweep in sweeps for r in sweep["results"]])
    writer.writerow(
        [
            "sweep",
            "table",
            "cell",
            "column",
            "key",
            "seed",
            "fold",
            "ua",
            "wa",
            "f1",
            "paper_ua",
            "paper_wa",
            *(["corpus"] if corpora else []),
            *(str(h.score_column()) for h in further),
            *(CSV_COLUMNS if tuned else ()),
        ]
    )
    for sweep in sweeps:
        for r in sweep["results"]:
            row = r.row
            cell = [sweep["name"], row["table"], row["label"], row.get("column") or "", row["key"]]
            iemocap = papers_apply(r)  # the papers' numbers are IEMOCAP's
            paper = [row["published"].get(k, "") if iemocap else "" for k in ("ua", "wa")]
            where = [column_of(r)] if corpora else []
            for e in r.run.folds if r.run is not None else []:
                # "": a run on emotion attributes alone has no categorical score
                ours = [
                    _cell(None if e.metrics is None else e.metrics.score(k))
                    for k in ("ua", "wa", "f1")
                ]
                scores = [_score(h, e) for h in further]
                scores += csv_columns(out, r, e) if out is not None and tuned else []
                writer.writerow([*cell, e.seed, e.fold, *ours, *paper, *where, *scores])
    return buf.getvalue()


def _score(head: Reported, entry: EntryView) -> str:
    """The head's score of a fold entry ("": it has none)."""
    metrics = head.recorded(entry)
    if not metrics:
        return ""
    return f"{head.flat(metrics)[str(head.score_column())]:.{head.decimals}f}"


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
