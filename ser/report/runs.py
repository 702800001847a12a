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
from ser.heads.attribute_metrics import MEAN
from ser.heads.metrics import Metrics, mean_std_text, overall_metrics, summarize
from ser.report.attribute_runs import LEGEND as ATTRIBUTES_LEGEND
from ser.report.attribute_runs import (
    attribute_cells,
    attribute_header,
    attribute_summary,
    has_categories,
    table_attributes,
)
from ser.report.audio_seen import add_column as audio_column
from ser.report.head_runs import head_cells, head_header, head_summary, table_heads
from ser.report.layer_weights import layer_weights, peak_label, weights_json
from ser.runs.data import TextSeen
from ser.runs.record import RECORD, RunRecord, read

SCORES = ("ua", "wa", "f1", "wf1")  # f1: macro; wf1: weighted by class support
MD_HEADER = (
    "run", "features", "fusion", "protocol", "classes", "settings",
    "mean UA", "mean WA", "mean macro F1", "mean weighted F1", "n",
    "pooled UA", "pooled WA", "pooled macro F1", "pooled weighted F1",
)  # fmt: skip
# The weighted F1's columns come last: a CSV read by position keeps its columns.
CSV_HEADER = (
    "run", "features", "fusion", "protocol", "classes", "settings",
    "mean_ua", "mean_ua_std", "mean_wa", "mean_wa_std", "mean_f1", "mean_f1_std",
    "n", "std_over", "seeds", "pooled_ua", "pooled_wa", "pooled_f1",
    "mean_wf1", "mean_wf1_std", "pooled_wf1",
)  # fmt: skip
LEGEND = (
    "mean: each seed's mean over its folds, then mean ± sample std over the n seeds (over "
    "the n folds of a run with one seed; a single value has no ±). pooled: every fold's "
    "test predictions scored together, of every seed (an utterance counts once per seed). "
    "macro F1: the mean of the classes' F1; weighted F1: each class's F1 weighted by its "
    "share of the test utterances."
)
TEXT_SEEN = (
    " test text seen in training: test utterances whose transcript (3+ words, lower case, "
    "no punctuation) appears word for word on their fold's training side, of those tested "
    "(IEMOCAP's scripted lines recur in every session: its `-script` protocols avoid it)."
)
FORMATS = ("md", "csv")

# Config keys that say where or how a run was executed, not what was trained: runs
# differing only in them still group together in plots.
BOOKKEEPING = frozenset(
    {"name", "out", "out_dir", "output", "store", "seeds", "seed", "device", "scheduler",
     "resume", "workers", "num_workers", "verbose", "overwrite"}
)  # fmt: skip
# Training options a family has a paper default for (`TrainDefaults`); patience's default
# (None) is the same for every family.
TRAINING = ("epochs", "batch_size", "lr", "weight_decay")


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
    """The run's summary, recomputed from its folds when the record has none; ``n`` (how
    many values the std is over) filled in for records written before it was kept."""
    summary = _categorical_summary(run)
    # A run's attribute scores (ccc_arousal, ...) beside them, where it has them and its
    # record does not hold them already (the trainer writes them into its summary).
    if MEAN not in summary and any(e.attributes for e in run.folds):
        for key, value in (attribute_summary(run) or {}).items():
            summary.setdefault(key, value)
    for key, value in head_summary(run).items():  # further heads' (sentiment_wf1, ...)
        summary.setdefault(key, value)
    return summary


def _categorical_summary(run: RunRecord) -> dict[str, Any]:
    if not run.summary:
        return summarize(_fold_metrics(run)) if has_categories(run) else {}
    summary = dict(run.summary)
    folds = run.folds
    # A record from before WF1 was kept: from its folds' confusions, where they hold them.
    if "wf1" not in summary and folds and all("confusion" in f.metrics for f in folds):
        again = summarize(_fold_metrics(run))
        summary.update(wf1=again["wf1"], wf1_std=again["wf1_std"])
    if "n" not in summary:  # as `summarize` counts: seeds, or one seed's folds
        seeds = int(summary.get("seeds") or 1)
        summary.setdefault("std_over", "seeds" if seeds > 1 else "folds")
        summary["n"] = seeds if seeds > 1 else max(len(folds), 1)
    return summary


def run_pooled(run: RunRecord) -> dict[str, Any]:
    """The run's pooled metrics (`Metrics.to_dict`), from its folds when missing."""
    if run.pooled:
        pooled = dict(run.pooled)
        if "wf1" not in pooled and "confusion" in pooled:  # before WF1 was kept
            pooled["wf1"] = Metrics.from_dict(pooled).wf1
        return pooled
    if not has_categories(run):  # a run trained on attributes alone
        return {}
    metrics = [m for _, m in _fold_metrics(run)]
    return overall_metrics(metrics, list(run.classes)).to_dict()


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


def spread_label(summary: dict[str, Any]) -> str:
    """What a mean is over: ``2 seeds``, ``5 folds of 1 seed`` or ``1 fold of 1 seed``."""
    n = int(summary["n"])
    if summary.get("std_over") == "folds":
        return f"{n} fold{'s' if n != 1 else ''} of 1 seed"
    return f"{n} seed{'s' if n != 1 else ''}"


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
    val = run.config.get("val")
    if val == "none":
        label += ", val none (last epoch)"
    elif val is not None and VAL_ALIASES.get(val, val) != VAL_MODES[0]:  # not the default
        label += f", val {val}"
    return label


def run_settings(run: RunRecord) -> dict[str, Any] | None:
    """The recorded options that differ from the defaults of the run's model family (a
    record lacking one has the default); None for a family this version does not know."""
    # Imported here: the model package loads torch, which tables need only for this.
    from ser.models.config import field_defaults
    from ser.models.registry import FAMILIES, select

    config = run.config
    try:
        family = FAMILIES[config["family"]] if "family" in config else select(config)
    except (KeyError, ConfigError):
        return None
    default = {
        **json.loads(json.dumps(field_defaults(family.config))),  # as records hold them
        **{key: getattr(family.train, key) for key in TRAINING},
        "patience": None,
        "class_weights": "none",  # a corpus's default (MELD's balanced) is shown too
    }
    return {k: config[k] for k, v in default.items() if k in config and config[k] != v}


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
    header = list(CSV_HEADER if as_csv else MD_HEADER)
    cells = [_cells(run, as_csv) for run in runs]
    # The WER column only where some run read ASR text: gold-only tables keep their shape.
    if any(run.asr for run in runs):
        header.insert(6, "asr_wer" if as_csv else "ASR WER")
        for run, row_cells in zip(runs, cells, strict=True):
            row_cells.insert(6, asr_wer_label(run) or ("" if as_csv else "-"))
    # So is the layer-weights column, only where some run learnt a weighted sum of layers.
    if any(layer_weights(run) for run in runs):
        at = header.index("settings") + 1 + any(run.asr for run in runs)
        header.insert(at, "layer_weights" if as_csv else "layer weights (largest)")
        for run, row_cells in zip(runs, cells, strict=True):
            shown = weights_json(run) if as_csv else peak_label(run)
            row_cells.insert(at, shown or ("" if as_csv else "-"))
    # The attributes' columns, only where some run scored attributes.
    if names := table_attributes(runs):
        header += attribute_header(names, as_csv)
        for run, row_cells in zip(runs, cells, strict=True):
            row_cells += attribute_cells(run, names, as_csv)
    # The further heads' columns (MELD's sentiment, ...), only where some run scored one.
    if table_heads(runs):
        header += head_header(runs, as_csv)
        for run, row_cells in zip(runs, cells, strict=True):
            row_cells += head_cells(run, runs, as_csv)
    # And the text-seen column, only where some run had a text input.
    if any(text_seen(run) for run in runs):
        header.append("text_seen" if as_csv else "test text seen in training")
        for run, row_cells in zip(runs, cells, strict=True):
            row_cells.append(text_seen_label(run) or ("" if as_csv else "-"))
    heard = audio_column(runs, header, cells, fmt)  # where some run tested training audio
    if as_csv:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *cells])
        return buffer.getvalue()
    lines = markdown_table(header, cells)
    legend = LEGEND + (ATTRIBUTES_LEGEND if table_attributes(runs) else "")
    legend += (TEXT_SEEN if any(text_seen(run) for run in runs) else "") + heard
    return "\n".join([*lines, "", legend]) + "\n"


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

    >>> run = RunRecord("mpnet", {}, "loso", [])
    >>> asr_wer_label(run)
    ''
    >>> from ser.runs.data import AsrSet
    >>> run.asr = {"mpnet@asr-w": AsrSet(transcripts="asr-w", wer=0.1234)}
    >>> asr_wer_label(run)
    '12.34'
    """
    shown = {  # one WER per transcript set, however many feature sets were read off it
        e.transcripts: "?" if e.wer is None else f"{100 * e.wer:.2f}" for e in run.asr.values()
    }
    return "/".join(shown.values())


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "run"


def _fold_metrics(run: RunRecord) -> list[tuple[int, Metrics]]:
    if not run.folds:
        raise ReportError(f"run {run.name!r} has no finished fold yet")
    try:
        return [(f.seed, Metrics.from_dict(f.metrics)) for f in run.folds]
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(f"run {run.name!r}: a fold entry lacks its metrics ({e})") from e


def _cells(run: RunRecord, as_csv: bool) -> list[str]:
    """A row: labels, then mean (and std) of each score, n, pooled scores (CSV: the
    weighted F1's last); a record without WF1 and without folds to compute it from shows
    none ("-"; CSV: empty)."""
    summary, pooled, config = run_summary(run), run_pooled(run), run.config
    try:
        means = {k: _mean(summary, k) for k in SCORES}
        pools = {k: None if pooled.get(k) is None else f"{float(pooled[k]):.2f}" for k in SCORES}
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(f"run {run.name!r}: summary lacks a score ({e})") from e
    lacking = [k for k in SCORES[:3] if means[k] is None or pools[k] is None]
    if lacking and has_categories(run):  # a run on attributes alone has none: "-"
        raise ReportError(f"run {run.name!r}: summary lacks a score ({', '.join(lacking)})")
    classes = config.get("classes") or len(run.classes)
    if not has_categories(run) and not run.classes:  # trained on attributes alone
        classes = config.get("classes")
    labels = [
        run_label(run),
        _scalar(config.get("features")),
        _scalar(config.get("fusion")),
        protocol_label(run),
        _scalar(classes),
        settings_label(run),
    ]
    n = int(summary["n"])
    if not as_csv:  # no ± where n = 1
        shown = ["-" if m is None else mean_std_text(*m, n) for m in means.values()]
        return [*labels, *shown, spread_label(summary), *(p or "-" for p in pools.values())]

    def spread(key: str) -> list[str]:
        m = means[key]
        return ["", ""] if m is None else [f"{m[0]:.2f}", f"{m[1]:.2f}" if n > 1 else ""]

    counts = [str(n), str(summary.get("std_over", "seeds")), str(summary.get("seeds", ""))]
    first = [c for k in SCORES[:3] for c in spread(k)]
    return [*labels, *first, *counts, *(pools[k] or "" for k in SCORES[:3]),
            *spread("wf1"), pools["wf1"] or ""]  # fmt: skip


def _mean(summary: dict[str, Any], key: str) -> tuple[float, float] | None:
    if summary.get(key) is None:
        return None
    return float(summary[key]), float(summary[f"{key}_std"])


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
