"""Run records -> the papers' tables (markdown or CSV) and plots (PNG, in `plots.py`).

A run directory ``<out>/<name>/`` holds ``run.json``, written by the trainer::

    {"name": ..., "config": {"features": "hubert+mpnet", "fusion": "mit", ...},
     "protocol": "loso", "speaker_independent": true, "classes": ["neu", ...],
     "summary": {"wa", "ua", "f1", "wa_std", "ua_std", "f1_std", "seeds"},
     "folds": [{"seed", "fold", "metrics", "best_epoch", "curves"}, ...],
     "pooled": Metrics.to_dict(), "seconds": ..., "fingerprints": {...}, "version": ...}

One table row per run: run, features, fusion, protocol, classes, settings, UA, WA, F1,
seeds. A record the trainer has not finished (``"complete": false``) is reported from
the folds it holds, its name marked ``(incomplete)``; missing ``summary`` / ``pooled``
are recomputed from the folds. ``settings`` lists the config values that differ between
the runs of the table (``queries=10, rmm=False``), the way the papers label their
ablation rows. Speaker-dependent runs say so in the protocol cell:
``random (speaker-dependent)``.

Markdown cells hold ``mean ± std``; CSV splits them into ``ua, ua_std, ...`` columns so a
spreadsheet can read the numbers. Scores have two decimals.

A table with a run whose text features came from ASR transcripts (``ser extract
--text-source asr``; the record's ``asr``: per such feature set its transcripts and their
word error rate against the gold transcripts of the run's utterances) gets one more
column after ``settings``: ``ASR WER`` (``asr_wer`` in CSV), in percent, ``-`` (empty)
for gold-text runs; a run over two ASR transcript sets lists both, ``/``-separated.

>>> run = {"name": "msmser", "protocol": "loso", "speaker_independent": True, "classes": [],
...        "config": {"features": "hubert+mpnet", "fusion": "mit", "classes": "4"},
...        "summary": {"ua": 75.0, "ua_std": 1.0, "wa": 74.0, "wa_std": 0.5,
...                    "f1": 73.0, "f1_std": 0.25, "seeds": 3}}
>>> print(report_table([run], fmt="csv").strip())
run,features,fusion,protocol,classes,settings,ua,ua_std,wa,wa_std,f1,f1_std,seeds
msmser,hubert+mpnet,mit,loso,4,,75.00,1.00,74.00,0.50,73.00,0.25,3
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from ser.errors import SerError
from ser.train.metrics import Metrics, pool_metrics, summarize

MD_HEADER = (
    "run",
    "features",
    "fusion",
    "protocol",
    "classes",
    "settings",
    "UA",
    "WA",
    "F1",
    "seeds",
)
CSV_HEADER = (
    "run", "features", "fusion", "protocol", "classes", "settings",
    "ua", "ua_std", "wa", "wa_std", "f1", "f1_std", "seeds",
)  # fmt: skip
FORMATS = ("md", "csv")
REQUIRED = ("name", "config", "protocol", "classes")

# Config keys that say where or how a run was executed, not what was trained: never
# "settings", and runs differing only in them still group together in plots.
BOOKKEEPING = frozenset(
    {"name", "out", "out_dir", "output", "store", "seeds", "seed", "device", "scheduler",
     "resume", "workers", "num_workers", "verbose", "overwrite"}
)  # fmt: skip
# Shown in their own columns.
COLUMNS = frozenset({"features", "fusion", "protocol", "classes"})


class ReportError(SerError):
    """A run record is missing, unreadable or lacks what a report needs."""


def load_run(path: str | Path) -> dict[str, Any]:
    """The record of a run: `path` is the run directory or its ``run.json``."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such run directory or run.json")
    file = path / "run.json" if path.is_dir() else path
    if not file.is_file():
        raise ReportError(f"{file}: no run record (is {path} a run directory?)")
    try:
        run = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{file}: not a readable JSON run record: {e}") from e
    if not isinstance(run, dict):
        raise ReportError(f"{file}: a run record must be a JSON object")
    missing = [key for key in REQUIRED if key not in run]
    if missing:
        raise ReportError(f"{file}: run record lacks {', '.join(missing)}")
    if not run.get("summary") and not run.get("folds"):
        raise ReportError(f"{file}: run {run['name']!r} has no finished fold yet")
    if not isinstance(run["config"], dict):
        raise ReportError(f"{file}: 'config' must be a JSON object")
    return run


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """The run's summary, recomputed from its folds when the record has none."""
    if run.get("summary"):
        return dict(run["summary"])
    return summarize(_fold_metrics(run))


def run_pooled(run: dict[str, Any]) -> dict[str, Any]:
    """The run's pooled metrics (`Metrics.to_dict`), pooled from its folds when missing."""
    if run.get("pooled"):
        return dict(run["pooled"])
    metrics = [m for _, m in _fold_metrics(run)]
    return pool_metrics(metrics, list(run["classes"])).to_dict()


def run_label(run: dict[str, Any]) -> str:
    """The run's name, marked ``(incomplete)`` while the trainer has folds left to do."""
    return f"{run['name']} (incomplete)" if run.get("complete") is False else str(run["name"])


def protocol_label(run: dict[str, Any]) -> str:
    """``random (speaker-dependent)`` for speaker-dependent runs, else the protocol name;
    ``session5, val none (last epoch)`` for runs that trained on every training session."""
    independent = run.get("speaker_independent", run["protocol"] != "random")
    label = str(run["protocol"]) if independent else f"{run['protocol']} (speaker-dependent)"
    if run.get("config", {}).get("val") == "none":
        label += ", val none (last epoch)"
    return label


def setting_keys(runs: list[dict[str, Any]]) -> list[str]:
    """Config keys (other than bookkeeping and the table's own columns) whose values
    differ between `runs`, sorted."""
    keys = sorted({k for run in runs for k in run["config"]} - BOOKKEEPING - COLUMNS)
    return [k for k in keys if len({_canonical(run["config"].get(k)) for run in runs}) > 1]


def settings_label(run: dict[str, Any], keys: list[str]) -> str:
    """``key=value, ...`` of `keys` in the run's config."""
    return ", ".join(f"{k}={_scalar(run['config'].get(k))}" for k in keys)


def report_table(runs: list[dict[str, Any]], fmt: str = "md") -> str:
    """One row per run, in the given order, as a markdown table or CSV text."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    keys = setting_keys(runs)
    rows = [_row(run, keys) for run in runs]
    # The WER column only where some run read ASR text: gold-only tables keep their shape.
    wers = [asr_wer_label(run) for run in runs] if any(run.get("asr") for run in runs) else None
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = list(CSV_HEADER)
        if wers is not None:
            header.insert(6, "asr_wer")
        writer.writerow(header)
        for k, row in enumerate(rows):
            extra = [] if wers is None else [wers[k]]
            writer.writerow([*row[:6], *extra, *(f"{v:.2f}" for v in row[6:12]), row[12]])
        return buffer.getvalue()
    header = list(MD_HEADER)
    if wers is not None:
        header.insert(6, "ASR WER")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k, row in enumerate(rows):
        scores = [f"{row[i]:.2f} ± {row[i + 1]:.2f}" for i in (6, 8, 10)]
        extra = [] if wers is None else [wers[k] or "-"]
        cells = [_md_escape(str(c)) for c in (*row[:6], *extra, *scores, row[12])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def asr_wer_label(run: dict[str, Any]) -> str:
    """The WER (percent, two decimals) of the ASR transcripts the run's text features
    came from; "" for a gold-text run, "?" where the record could not compute it.

    >>> asr_wer_label({"asr": {"mpnet@asr-w": {"transcripts": "asr-w", "wer": 0.1234}}})
    '12.34'
    >>> asr_wer_label({})
    ''
    """
    by_transcripts: dict[str, str] = {}
    for entry in (run.get("asr") or {}).values():
        wer = entry.get("wer")
        shown = "?" if wer is None else f"{100 * float(wer):.2f}"
        by_transcripts[str(entry.get("transcripts"))] = shown
    return "/".join(by_transcripts.values())


def write_plots(runs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """PNG plots of `runs` under `out_dir` (see `ser.train.plots.write_plots`)."""
    # Imported here so that tables never pay matplotlib's import time.
    from ser.train.plots import write_plots as _write_plots

    return _write_plots(runs, out_dir)


def file_stem(name: str) -> str:
    """A run name made safe as a file name stem."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "run"


def _fold_metrics(run: dict[str, Any]) -> list[tuple[int, Metrics]]:
    if not run.get("folds"):
        raise ReportError(f"run {run['name']!r} has no finished fold yet")
    try:
        return [(int(f["seed"]), Metrics.from_dict(f["metrics"])) for f in run["folds"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(f"run {run['name']!r}: a fold entry lacks its metrics ({e})") from e


def _row(run: dict[str, Any], keys: list[str]) -> tuple[Any, ...]:
    summary, config = run_summary(run), run["config"]
    try:
        scores = [float(summary[k]) for k in ("ua", "ua_std", "wa", "wa_std", "f1", "f1_std")]
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(f"run {run['name']!r}: summary lacks a score ({e})") from e
    classes = config.get("classes") or len(run.get("classes", ()))
    return (
        run_label(run), _scalar(config.get("features")), _scalar(config.get("fusion")),
        protocol_label(run), _scalar(classes), settings_label(run, keys),
        *scores, summary.get("seeds", ""),
    )  # fmt: skip


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _md_escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")
