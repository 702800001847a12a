"""What training puts into a run record (`ser.runs.record.RunRecord`): a (seed, fold)'s
entry, a layered input's sets, the record checked before a resume, `ser train --json`.

A run on a layered input (`<stem>.L*`) holds `layers`: `{input: {"sets": [...],
"layers": [...]}}` and, per fold, `layer_weights`: `{input: [w_0..w_L]}`, the learnt
softmax weights in layer order. A run with class weights (`--class-weights balanced`)
holds `config["class_weights"]` and, per fold, `class_weights`: `{class: weight}`.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from ser.corpus.protocols.folds import Fold
from ser.errors import ConfigError, FingerprintMismatch, ReportError
from ser.heads.base import TablePart
from ser.heads.metrics import Metrics
from ser.heads.recorded import run_heads
from ser.heads.registry import HEADS
from ser.models.targets import Targets
from ser.runs.curves import Curves as RecordedCurves
from ser.runs.fold_entry import FoldEntry, Sizes, Stage
from ser.runs.predictions import PREDICTIONS, PredictionTable, read_predictions
from ser.runs.record import Layered, RunRecord, read
from ser.runs.summary import Summary
from ser.train.data import TrainData
from ser.train.features import ResolvedFeature
from ser.train.loop import Curves, Evaluation, Selection

# Config keys that say where a run executes, not what it trains: a resume may change them.
NOT_COMPARED = frozenset({"store", "test_store", "out", "name", "device"})


def read_record(path: Path) -> RunRecord:
    """The record a run resumes; `ConfigError` naming the file when it is not one."""
    try:
        return read(path)
    except ReportError as e:
        raise ConfigError(f"{e}; use --overwrite or another --name") from e


def check_resumable(
    path: Path, old: RunRecord, cfg: dict[str, Any], fingerprints: dict[str, str]
) -> None:
    """Refuse to resume `old` (at `path`) with config `cfg` or features `fingerprints`
    that differ from the record's; the message names each difference."""
    hint = "choose another --name, or --overwrite to discard it"
    before = old.fingerprints
    changed = [
        f"{name}: {str(before.get(name))[:12]}... -> {fp[:12]}..."
        for name, fp in fingerprints.items()
        if before.get(name) != fp
    ]
    if changed:
        raise FingerprintMismatch(
            f"{path} was trained on other features than the store now holds "
            f"({'; '.join(changed)}); {hint}"
        )
    old_cfg = old.config
    # The new config's keys: one of another family has another "family"; a record written
    # when every config held every family's options resumes (the others were defaults).
    keys = sorted(set(cfg) - NOT_COMPARED)
    diff = [
        f"{k}: {old_cfg.get(k)!r} -> {cfg.get(k)!r}" for k in keys if old_cfg.get(k) != cfg.get(k)
    ]
    if diff:
        raise ConfigError(f"{path} holds a run with another config ({'; '.join(diff)}); {hint}")


def json_summary(record: RunRecord) -> dict[str, Any]:
    """`ser train --json`: each of the run's heads' numbers over seeds and per fold
    (`Reported.json_summary`, `Reported.json_fold`: the category's WA, UA and F1 in
    percent, the attributes' mean CCC, ...), protocol, seconds."""
    if record.summary is None:
        raise ConfigError(f"{record.name}: no (seed, fold) trained, nothing to summarise")
    heads = run_heads(record)
    folds = [
        {
            "seed": e.seed,
            "fold": e.fold,
            **{k: v for head in heads for k, v in head.json_fold(e).items()},
            "best_epoch": e.best_epoch,
        }
        for e in record.folds
    ]
    summary = {k: v for head in heads for k, v in head.json_summary(record.summary).items()}
    return {**summary, "folds": folds, "protocol": record.protocol, "seconds": record.seconds}


def run_scores(record: RunRecord) -> tuple[Summary | None, Metrics | None]:
    """The record's summary (each head's mean ± std over seeds, in the run's head order)
    and pooled metrics (the category's; None without it), made anew from its folds: the
    record's own summary and pooled are the last group's."""
    fresh = replace(record, summary=None, pooled=None)
    heads = run_heads(fresh)
    summary: dict[str, Any] = {}
    for head in heads:
        for key, value in head.summary(fresh, {}).items():
            summary.setdefault(key, value)
    pooled = next((h.pooled(fresh) for h in heads if h.category), None)
    return (Summary.from_json(summary) if summary else None), pooled


def layers_record(features: list[ResolvedFeature]) -> dict[str, Layered]:
    """Each layered input's stored sets and their layers, in layer order ({}: none)."""
    return {f.name: Layered(sets=f.sets, layers=f.layers) for f in features if f.sets}


def fold_entry(
    seed: int,
    fold: Fold,
    best: Selection,
    test: Evaluation,
    stages: dict[str, Selection],
    stacked: int,
    layer_weights: dict[str, list[float]] | None = None,
    class_weights: dict[str, float] | None = None,
) -> FoldEntry:
    """What training one (seed, fold) produced: `best`, the whole model's selection, after
    its earlier `stages` (if any: Zhou et al.'s branches), tested; `stacked` members
    trained together (1: alone); `layer_weights`: the selected model's softmax weights of
    each layered input; `class_weights`: its loss's, by class."""
    return FoldEntry(
        seed=seed,
        fold=fold.name,
        metrics=test.metrics,
        attributes=test.attribute_metrics,
        heads={name: scores for name, scores in test.scores.items() if name in HEADS},
        best_epoch=best.best_epoch,
        seconds=best.seconds + sum(s.seconds for s in stages.values()),
        stacked=stacked,
        curves=curves_record(best.curves),
        stages={
            n: Stage(s.best_epoch, s.seconds, curves_record(s.curves)) for n, s in stages.items()
        },
        layer_weights={name: tuple(w) for name, w in (layer_weights or {}).items()},
        sizes=Sizes(train=len(fold.train), val=len(fold.val), test=len(fold.test)),
        # what each side holds of the protocol's group (sessions, speakers, values)
        test_groups=tuple(fold.test_groups),
        val_groups=tuple(fold.val_groups),
        group=fold.unit or None,
        left_out=tuple(fold.left_out),
        shared_speakers=tuple(fold.shared_speakers),
        class_weights=class_weights or {},
    )


def curves_record(curves: Curves) -> RecordedCurves:
    """The curves as a fold entry holds them: `val_ccc` only where attributes were
    trained, `val_heads` only where other heads were, so every other record stays as it
    was."""
    kept = asdict(curves)
    del kept["lead"]
    kept = {k: v for k, v in kept.items() if k not in ("val_ccc", "val_heads") or v}
    return RecordedCurves.from_json(kept)


def fold_predictions(
    seed: int,
    fold: str,
    test: Evaluation,
    data: TrainData,
    positions: np.ndarray,
    targets: Targets | None = None,
) -> PredictionTable:
    """A (seed, fold)'s test predictions, in manifest order, for predictions.csv: each
    head of `targets` gives its part (`Head.table_part`); `positions`: the fold's test
    side (a cross-corpus run's data holds two stores' rows)."""
    order = np.argsort(test.index, kind="stable")
    rows = test.index[order]
    # manifest rows ascend over a side's sorted positions (one store's, in manifest order)
    at = positions[np.searchsorted(data.manifest_rows[positions], rows)]
    decided = (test.y_true[order], test.y_pred[order])
    parts = [
        head.table_part(pred[order], gold[order], head.names(data.classes), decided)
        for head, pred, gold in zip(
            (targets or Targets()).heads, test.outputs, test.golds, strict=True
        )
    ]
    return PredictionTable.of(
        data.classes,
        seed,
        fold,
        data.utt_ids[at],
        data.speakers[at],
        rows,
        **TablePart.joined(parts, len(order)),
    )


def kept_predictions(run_dir: Path, record: RunRecord) -> dict[tuple[int, str], PredictionTable]:
    """The rows of predictions.csv (if any) of the (seed, fold)s `record` holds, by key:
    a resumed run keeps them."""
    path = run_dir / PREDICTIONS
    if not record.folds or not path.exists():
        return {}
    table = read_predictions(path)
    held = set(table.runs())
    keys = [e.key for e in record.folds]
    return {k: table.take((table.seed == k[0]) & (table.fold == k[1])) for k in keys if k in held}
