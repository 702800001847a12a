"""The results a model card reports, from the run record and its predictions.csv: the
scores as mean ± std over seeds (and pooled), per class, per gender and per speaker, and
the checks of the test side (its audio and its transcripts seen in training) and the ASR
word error rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SerError
from ser.export.corpora import StoreFacts
from ser.heads.metrics import compute_metrics
from ser.report.audio_seen import audio_seen
from ser.report.breakdown import breakdown_table, run_predictions
from ser.report.runs import (
    asr_wer_label,
    markdown_table,
    pooled_over,
    protocol_label,
    run_pooled,
    run_summary,
    spread_label,
    text_seen,
    text_seen_label,
)
from ser.runs.predictions import PredictionTable
from ser.runs.record import RunRecord

#: The scores a card lists, with their names in the Hugging Face metadata.
CLASS_METRICS = {"ua": "unweighted_accuracy", "wa": "weighted_accuracy", "f1": "f1"}
GENDERS = {"F": "female", "M": "male"}


def metric_values(record: RunRecord, of: str = "") -> list[dict[str, Any]]:
    """Each score of the run: {key, type, name, value, std, n} (percent; CCC 0-1); `of`
    ends each name (what the scores are of, when not the folder's members)."""
    summary = run_summary(record)
    if not summary:
        return []
    over = spread_label(summary)
    keys = [k for k in CLASS_METRICS if k in summary]
    keys += sorted(k for k in summary if k.startswith("ccc_") and not k.endswith("_std"))
    return [
        {
            "key": key,
            "type": CLASS_METRICS.get(key, key),
            "name": f"{key.upper()} (mean over {over}{of})",
            "value": round(float(summary[key]), 4),
            "std": round(float(summary.get(f"{key}_std") or 0.0), 4),
            "n": int(summary["n"]),
        }
        for key in keys
    ]


def evaluation_lines(record: RunRecord) -> list[str]:
    """How the run was evaluated and its scores."""
    folds = sorted({e.fold for e in record.folds})
    seeds = sorted({e.seed for e in record.folds})
    lines = [
        f"- Protocol: {protocol_label(record)} "
        f"({'speaker-independent' if record.independent else 'speaker-dependent'}); "
        f"folds: {', '.join(folds) or 'none'}; seeds: {', '.join(map(str, seeds)) or 'none'}.",
        f"- Validation: {record.validation or 'not recorded'}.",
        *audio_lines(record),
        "",
    ]
    values = metric_values(record)
    if values:
        rows = [
            [v["key"].upper(), f"{v['value']:.2f} ± {v['std']:.2f}", str(v["n"])] for v in values
        ]
        lines += markdown_table(["metric", "mean ± std", "n"], rows)
    pooled = run_pooled(record)
    if pooled:
        scores = f"UA {pooled['ua']:.2f}, WA {pooled['wa']:.2f}, F1 {pooled['f1']:.2f}"
        lines += ["", f"Pooled ({pooled_over(record)}): {scores} over {pooled['n']} predictions."]
    return lines


def audio_lines(record: RunRecord) -> list[str]:
    """Test audio seen in training (none for a run recorded before the check)."""
    seen = audio_seen(record)
    if seen is None:
        return []
    if seen.seen is None:
        return ["- Test audio seen in training: not known (a store predates audio prints)."]
    allowed = " (run with --allow-overlap)" if seen.allowed else ""
    return [
        f"- Test audio seen in training: {seen.seen} of {seen.tested} test utterances "
        f"({100 * (seen.share or 0.0):.1f} %) have audio identical to an utterance "
        f"on their fold's training side{allowed}."
    ]


def class_lines(record: RunRecord) -> list[str]:
    """Recall of each class, pooled over every fold and seed."""
    pooled = run_pooled(record)
    recalls = pooled.get("per_class_recall") or {}
    if not recalls:
        return ["The run predicts no class (attributes only)."]
    support = np.asarray(pooled.get("confusion") or [[0]], dtype=np.int64).sum(axis=1)
    rows = [
        [
            c,
            "-" if r is None else f"{float(r):.2f}",
            str(int(support[i])) if i < len(support) else "",
        ]
        for i, (c, r) in enumerate(recalls.items())
    ]
    return [
        *markdown_table(["class", "recall (%)", "test utterances"], rows),
        "",
        f"Recall {pooled_over(record)}.",
    ]


def group_lines(run_dir: Path, record: RunRecord, store: StoreFacts) -> list[str]:
    """UA / WA per gender (where the store records it) and per speaker."""
    try:
        _, table = run_predictions(run_dir, record)
    except SerError as err:
        return [f"Not available: {err}."]
    if not table.classes:
        return ["Per-group scores are given for class predictions; this run has none."]
    lines = _gender_lines(table, store.gender)
    return [
        *lines,
        "",
        "By speaker:",
        "",
        breakdown_table([(record.name, table)], "speaker").rstrip(),
    ]


def _gender_lines(table: PredictionTable, gender: Mapping[int, str]) -> list[str]:
    if not gender:
        return ["By gender: not available (the run's store, which records it, is not there)."]
    genders = np.array([gender.get(int(r), "") for r in table.row])
    rows = []
    for code in sorted(set(genders.tolist()) - {""}):
        part = table.take(genders == code)
        m = compute_metrics(part.gold, part.pred, table.classes)
        rows.append([GENDERS.get(code, code), f"{m.ua:.2f}", f"{m.wa:.2f}", str(len(part))])
    if not rows:
        return ["By gender: the corpus records none."]
    head = ["gender", "UA (%)", "WA (%)", "test predictions"]
    return ["By gender (every seed's test predictions pooled):", "", *markdown_table(head, rows)]


def text_lines(record: RunRecord) -> list[str]:
    """Test transcripts seen in training, and the ASR word error rate."""
    lines = []
    seen = text_seen(record)
    if seen is not None:
        lines.append(
            f"- Test text seen in training: {text_seen_label(record)} of the test utterances "
            f"(transcripts of {seen.min_words or 3}+ words, {seen.source or 'text'}) "
            "also appear on their fold's training side: a text model's test score is partly "
            "memory of scripted lines."
        )
    else:
        lines.append("- Test text seen in training: the run reads no text.")
    wer = asr_wer_label(record)
    lines.append(
        f"- ASR: the text features come from ASR transcripts, WER {wer} %."
        if wer
        else "- ASR: none (gold transcripts, or no text)."
    )
    return lines
