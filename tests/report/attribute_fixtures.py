"""Runs trained on emotion attributes, written by hand: run.json and predictions.csv as
the trainer writes them, their scores computed from the same made-up predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.heads.attribute_metrics import ATTRIBUTES, attribute_metrics
from ser.heads.metrics import compute_metrics
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import PREDICTIONS, PredictionTable, concat, predictions_csv
from ser.runs.record import RunRecord, write

CLASSES = ("neu", "ang")
FOLDS = {"f1": ("F1", "M1"), "f2": ("F2", "M2")}  # each fold's test speakers
PER_SPEAKER = 8
SCALE = (1.0, 5.0)  # IEMOCAP's


def gold_values(names: Sequence[str]) -> np.ndarray:
    """[N, A] gold values of every test utterance, the same for every run."""
    n = len(FOLDS) * 2 * PER_SPEAKER
    every = np.random.default_rng(0).uniform(*SCALE, size=(n, len(ATTRIBUTES)))
    gold = every[:, [ATTRIBUTES.index(name) for name in names]]
    gold[3, -1] = np.nan  # an utterance without gold for the last attribute
    return gold


def fold_table(
    seed: int, fold: str, names: Sequence[str], skill: float, categorical: bool
) -> PredictionTable:
    """One (seed, fold)'s predictions: `skill` 1 predicts gold exactly, 0 a constant."""
    at = list(FOLDS).index(fold) * 2 * PER_SPEAKER
    n = 2 * PER_SPEAKER
    gold = gold_values(names)[at : at + n]
    noise = np.random.default_rng(seed + 10 * at).normal(0, 0.4, size=gold.shape)
    pred = skill * np.nan_to_num(gold, nan=3.0) + (1 - skill) * 3.0 + (1 - skill) * noise
    labels = (np.nan_to_num(gold[:, 0], nan=3.0) > 3).astype(int)
    guess = np.where(np.arange(n) % 4 == 0, 1 - labels, labels) if categorical else -np.ones(n)
    classes = CLASSES if categorical else ()
    probs = np.eye(2)[guess.astype(int)] if categorical else np.zeros((n, 0))
    speakers = np.repeat(FOLDS[fold], PER_SPEAKER)
    ids = [f"u{at + i}" for i in range(n)]
    gold_class = labels if categorical else -np.ones(n)
    return PredictionTable.of(
        classes, seed, fold, ids, speakers, range(at, at + n), gold_class, guess, probs,
        names, gold, pred,
    )  # fmt: skip


def attribute_run(
    root: Path,
    name: str,
    names: Sequence[str] = ("arousal", "valence"),
    seeds: int = 2,
    skill: float = 0.8,
    categorical: bool = False,
) -> Path:
    """A run directory: run.json (no summary, as a record the report computes from its
    folds) and predictions.csv; categorical: a head on two classes beside the attributes."""
    tables, entries = [], []
    for seed in range(seeds):
        for fold in FOLDS:
            t = fold_table(seed, fold, names, skill, categorical)
            tables.append(t)
            m = compute_metrics(t.gold, t.pred, CLASSES) if categorical else None
            scores = attribute_metrics(t.attr_gold, t.attr_pred, names)
            entries.append(FoldEntry(seed, fold, m, 1, 1.0, attributes=scores))
    classes = list(CLASSES) if categorical else []
    config = {"features": "is13", "fusion": "none", "target": "attributes"}
    record = RunRecord(name, config, "loso", classes, complete=True, folds=entries)
    run_dir = root / name
    write(run_dir / "run.json", record)
    text = predictions_csv(concat(tables, classes))
    (run_dir / PREDICTIONS).write_text(text, encoding="utf-8")
    return run_dir
