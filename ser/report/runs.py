"""Run records -> the papers' tables (markdown or CSV); their plots are `plots.py`'s.

One row per run: its labels, `settings` (what differs from the family's defaults, as the
papers label ablation rows), mean and pooled scores (docs/dev/report.md, "Reports"). A
record the trainer has not finished is reported from the folds it holds.

>>> run = RunRecord.from_json({
...     "name": "msmser", "protocol": "loso", "speaker_independent": True, "classes": [],
...     "config": {"features": "hubert+mpnet", "fusion": "mit", "classes": "4"},
...     "summary": {"ua": 75.0, "ua_std": 1.0, "wa": 74.0, "wa_std": 0.5,
...                 "f1": 73.0, "f1_std": 0.25, "seeds": 3},
...     "pooled": {"ua": 74.5, "wa": 74.25, "f1": 72.0}})
>>> print(report_table([run], fmt="csv").strip())
run,features,fusion,protocol,classes,settings,mean_ua,mean_ua_std,mean_wa,mean_wa_std,mean_f1,mean_f1_std,n,std_over,seeds,pooled_ua,pooled_wa,pooled_f1,mean_wf1,mean_wf1_std,pooled_wf1
msmser,hubert+mpnet,mit,loso,4,,75.00,1.00,74.00,0.50,73.00,0.25,3,seeds,3,74.50,74.25,72.00,,,
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser.corpus.protocols.folds import VAL_ALIASES, VAL_MODES
from ser.errors import ConfigError, ReportError
from ser.heads.emotion_report import CSV_COLUMNS, MD_COLUMNS
from ser.heads.emotion_report import LEGEND as LEGEND  # the category's, under every table
from ser.heads.emotion_report import spread_label as spread_label  # `ser train`'s table
from ser.heads.recorded import record_heads, run_heads
from ser.report.audio_seen import add_column as audio_column
from ser.report.layer_weights import layer_weights, peak_label, weights_json
from ser.runs.data import TextSeen
from ser.runs.record import RECORD, RunRecord, read

LABELS = ("run", "features", "fusion", "protocol", "classes", "settings")
# A table's header with no optional column: the runs' labels, then the category's columns,
# which every table has ("-" for a run without it); each further head's follow.
MD_HEADER = (*LABELS, *MD_COLUMNS)
CSV_HEADER = (*LABELS, *CSV_COLUMNS)
TEXT_SEEN = (
    " test text seen in training: test utterances whose transcript (3+ words, lower case, "
    "no punctuation) appears word for word on their fold's training side, of those tested "
    "(IEMOCAP's scripted lines recur in every session: its `-script` protocols avoid it)."
)
FORMATS = ("md", "csv")

# Config keys that say where or how a run was executed, not what was trained: runs
# differing only in them still group together in plots.
BOOKKEEPING = frozenset(
    {
        "name",
        "out",
        "out_dir",
        "output",
        "store",
        "seeds",
        "seed",
        "device",
        "scheduler",
        "resume",
        "workers",
        "num_workers",
        "verbose",
        "overwrite",
    }
)


def load_run(path: str | Path) -> RunRecord:
    """The record of a run: `path` is the run directory or its ``run.json``."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such run directory or run.json")
    file = path / RECORD if path.is_dir() else path
    if not file.is_file():
        raise ReportError(f"{file}: no run record (is {path} a run directory?)")
    run = read(file)
    if not run.summary and not run.folds:
        raise ReportError(f"{file}: run {run.name!r} has no finished fold yet")
    return run


def load_runs(paths: Sequence[Path]) -> tuple[list[tuple[Path, RunRecord]], list[ReportError]]:
    """The runs of `paths` that can be read, each with its path, and why each other
    cannot (a `ReportError` naming its file): one damaged run does not hide the rest."""
    runs, unreadable = [], []
    for path in paths:
        try:
            runs.append((path, load_run(path)))
        except ReportError as error:
            unreadable.append(error)
    return runs, unreadable


def run_summary(run: RunRecord) -> dict[str, Any]:
    """The run's summary: every head's numbers as the trainer recorded them, what a head
    recomputes from the folds beside them (`Head.summary`: all of it for a record
    without one), and ``n`` (how many values the std is over) for records written before
    it was kept."""
    summary = _recorded_summary(run)
    for head in run_heads(run):
        for key, value in head.summary(run, summary).items():
            summary.setdefault(key, value)
    return summary


def _recorded_summary(run: RunRecord) -> dict[str, Any]:
    if not run.summary:
        return {}
    summary = dict(run.summary)
    if "n" not in summary:  # as `summarize` counts: seeds, or one seed's folds
        seeds = int(summary.get("seeds") or 1)
        summary.setdefault("std_over", "seeds" if seeds > 1 else "folds")
        summary["n"] = seeds if seeds > 1 else max(len(run.folds), 1)
    return summary


def run_pooled(run: RunRecord) -> dict[str, Any]:
    """The pooled metrics of the run's category as a record holds them (`Head.pooled`;
    {}: it has none)."""
    held = next((h.pooled(run) for h in run_heads(run) if h.category), None)
    return {} if held is None else held.to_json()


def pooled_over(run: RunRecord) -> str:
    """What the pooled scores pool: ``pooled over 5 folds of seed 0``, or over every seed
    too: ``pooled over 5 folds x 2 seeds (an utterance once per seed)``."""
    folds = run.folds
    seeds = sorted({f.seed for f in folds})
    n_folds = len({f.fold for f in folds})
    where = f"{n_folds} fold{'s' if n_folds != 1 else ''}" if folds else "all folds"
    if len(seeds) == 1:
        return f"pooled over {where} of seed {seeds[0]}"
    n_seeds = len(seeds) or int(run_summary(run).get("seeds") or 1)
    if n_seeds == 1:
        return f"pooled over {where} of 1 seed"
    return f"pooled over {where} x {n_seeds} seeds (an utterance once per seed)"


def run_label(run: RunRecord) -> str:
    """The run's name, marked ``(incomplete)`` while the trainer has folds left to do."""
    return f"{run.name} (incomplete)" if run.complete is False else run.name


def protocol_label(run: RunRecord) -> str:
    """``random (speaker-dependent)`` for speaker-dependent runs, else the protocol name;
    ``session5, val none (last epoch)`` for runs that trained on every training session,
    ``loso, val random10`` for another validation than the default (the next group);
    ``cross: IEMOCAP -> MELD`` for a run trained on one corpus and tested on another."""
    label = run.protocol if run.independent else f"{run.protocol} (speaker-dependent)"
    if run.cross:  # trained on one store, tested on another
        label = f"{run.protocol}: {run.cross.train.title} -> {run.cross.test.title}"
    val = run.config.text("val")  # ReportError naming the file for another type
    if val == "none":
        label += ", val none (last epoch)"
    elif val is not None and VAL_ALIASES.get(val, val) != VAL_MODES[0]:  # not the default
        label += f", val {val}"
    return label


def run_settings(run: RunRecord) -> dict[str, Any] | None:
    """The recorded options `ser report` shows (`Recorded.shown`, as `ser train` declares
    them) that are on: not null (a record names every option, on or off), and off the
    defaults of the run's model family where it has one (its model options, its paper's
    epochs, batch size, rate, ...); None for a family this version does not know."""
    # Imported here: the model package loads torch, which tables need only for this.
    from ser.models.registry import FAMILIES, select
    from ser.train.options import shown_defaults

    config = run.config
    try:
        family = FAMILIES[config["family"]] if "family" in config else select(config)
    except (KeyError, ConfigError):
        return None
    default = shown_defaults(family)
    shown = {k: config[k] for k in default if config.get(k) is not None}
    if shown.get("views") == "all" and run.views:  # what "all" was for this run
        shown["views"] = f"all ({' '.join(run.views)})"
    return {k: v for k, v in shown.items() if v != default[k]}


def settings_label(run: RunRecord, leave_out: frozenset[str] = frozenset()) -> str:
    """``key=value, ...`` of `run_settings` but `leave_out`; ``?`` for an unknown family."""
    settings = run_settings(run)
    if settings is None:
        return "?"
    return ", ".join(f"{k}={_scalar(v)}" for k, v in settings.items() if k not in leave_out)


def report_table(runs: list[RunRecord], fmt: str = "md") -> str:
    """One row per run, in the given order: markdown (`LEGEND` under it) or CSV."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    as_csv = fmt == "csv"
    header, cells = list(LABELS), [_labels(run) for run in runs]
    summaries = [run_summary(run) for run in runs]
    heads = record_heads(runs, shown=True)
    for head in heads:  # each head's columns, in the order of the runs' outputs
        header += head.report_header(runs, as_csv)
        for run, summary, row_cells in zip(runs, summaries, cells, strict=True):
            row_cells += head.report_cells(run, runs, summary, as_csv)
    # The WER column only where some run read ASR text: gold-only tables keep their shape.
    if any(run.asr for run in runs):
        header.insert(len(LABELS), "asr_wer" if as_csv else "ASR WER")
        for run, row_cells in zip(runs, cells, strict=True):
            row_cells.insert(len(LABELS), asr_wer_label(run) or ("" if as_csv else "-"))
    # So is the layer-weights column, only where some run learnt a weighted sum of layers.
    if any(layer_weights(run) for run in runs):
        at = header.index("settings") + 1 + any(run.asr for run in runs)
        header.insert(at, "layer_weights" if as_csv else "layer weights (largest)")
        for run, row_cells in zip(runs, cells, strict=True):
            shown = weights_json(run) if as_csv else peak_label(run)
            row_cells.insert(at, shown or ("" if as_csv else "-"))
    # And the text-seen column, only where some run had a text input.
    if any(text_seen(run) for run in runs):
        header.append("text_seen" if as_csv else "test text seen in training")
        for run, row_cells in zip(runs, cells, strict=True):
            row_cells.append(text_seen_label(run) or ("" if as_csv else "-"))
    heard = audio_column(runs, header, cells, fmt)  # where some run tested training audio
    tuned = [finetune_label(run) for run in runs]
    if as_csv and any(tuned):  # the fine-tuned layers' column, only where some run tuned any
        header.append("finetune")
        for label, row_cells in zip(tuned, cells, strict=True):
            row_cells.append(label)
    if as_csv:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *cells])
        return buffer.getvalue()
    lines = markdown_table(header, cells)
    legend = "".join(head.report_legend(runs) for head in heads)
    legend += (TEXT_SEEN if any(text_seen(run) for run in runs) else "") + heard
    pairs = zip(runs, tuned, strict=True)
    said = [f"\nFine-tuned ({run.name}): {label}." for run, label in pairs if label]
    return "\n".join([*lines, "", legend, *said]) + "\n"


def finetune_label(run: RunRecord) -> str:
    """What a fine-tuned run trained of its encoders, in words (`FineTune.describe`), one
    input after another; "" for a run on frozen features."""
    tuned = run.config.texts("finetune")
    if not tuned:
        return ""
    # Imported here: the fine-tuning package loads torch, which tables need only for this.
    from ser.finetune.tuning import FineTune

    return "; ".join(FineTune.parse(text).describe() for text in tuned)


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a markdown table; a ``|`` or line break in a cell cannot split it."""
    cells = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in [head, *rows]]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return [lines[0], "|" + "---|" * len(head), *lines[1:]]


def text_seen(run: RunRecord) -> TextSeen | None:
    """The run's check of its test text against its training side (runs with a text
    input record it in `data`), None when it has none."""
    return run.data.text_seen if run.data else None


def text_seen_label(run: RunRecord) -> str:
    """``106/1241 (8.5 %)``: test utterances whose transcript (3+ words) appears on their
    fold's training side, of those tested; "" for a run without the check."""
    seen = text_seen(run)
    if seen is None:
        return ""
    return f"{seen.seen}/{seen.tested} ({100 * seen.share:.1f} %)"


def asr_wer_label(run: RunRecord) -> str:
    """The WER (percent, two decimals) of the ASR transcripts the run's text features
    came from; "" for a gold-text run, "?" where the record could not compute it.

    >>> run = RunRecord("mpnet", {}, "loso", ())
    >>> asr_wer_label(run)
    ''
    >>> from dataclasses import replace
    >>> from ser.runs.data import AsrSet
    >>> asr = {"mpnet@asr-w": AsrSet(transcripts="asr-w", wer=0.1234)}
    >>> asr_wer_label(replace(run, asr=asr))
    '12.34'
    """
    shown = {  # one WER per transcript set, however many feature sets were read off it
        e.transcripts: "?" if e.wer is None else f"{100 * e.wer:.2f}" for e in run.asr.values()
    }
    return "/".join(shown.values())


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "run"


def _labels(run: RunRecord) -> list[str]:
    """A row's labels: the run, its features, fusion, protocol, classes and settings."""
    config = run.config
    category = any(head.category for head in run_heads(run))
    classes = config.get("classes") or (len(run.classes) if run.classes or category else None)
    return [
        run_label(run),
        _scalar(config.get("features")),
        _scalar(config.get("fusion")),
        protocol_label(run),
        _scalar(classes),
        settings_label(run),
    ]


def _scalar(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
