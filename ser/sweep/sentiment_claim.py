"""Claim (d) of `ser claims`: a `mosei-sentiment` sweep's text, audio and fused rows beat
a constant predictor on Acc-2 and MAE, by `ser.sweep.claims.RULE`.

The constant predicts every test segment the median sentiment score of the training
fold (the constant of lowest training MAE; the mean's is higher wherever the scores are
skewed), read from the store's manifest (the standard protocol's `split` group); it is
scored on the very segments each seed tested (the cell's predictions.csv), with the
head's own metrics (`ser.heads.sentiment_score`). A constant has no seed spread, so the
gap must exceed ours alone. Acc-2 in both conventions (`ACCURACIES`); MAE is an error, so
its verdict sets the constant's first: the gap is the constant's MAE minus ours.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from ser.cache import FeatureStore
from ser.corpus.protocols.folds import FoldData
from ser.errors import SerError
from ser.heads.sentiment_score import COLUMN, SentimentScoreHead
from ser.report.published_sentiment import HEAD
from ser.runs.record import RunRecord
from ser.sweep.cells import cell_dir
from ser.sweep.claims import Claim, ClaimsError, Scores, Verdict, seed_scores
from ser.sweep.presets import SENTIMENT

PROTOCOL = "standard"  # the CMU kinds' protocol: the SDK's train / valid / test folds
# Acc-2 in both conventions: a median of exactly 0 (CMU-MOSEI's) is the non-negative class
# in `has0` and the negative one in `non0`, so only both say what the constant scores.
ACCURACIES = {"acc2_has0": "Acc-2 (has0, %)", "acc2_non0": "Acc-2 (non0, %)"}
GOLD = f"{HEAD}_gold"  # predictions.csv's column of the segment's score


def constant_claim(sweep_dir: Path) -> Claim:
    """(d): each `mosei-sentiment` cell of the sweep in `sweep_dir` against the training
    median, on Acc-2 (both conventions) and MAE."""
    from ser.sweep.results import load_sweeps  # reads cell records (imports the trainer)

    cells = [r for s in load_sweeps(sweep_dir) for r in s["results"] if r.row["table"] == SENTIMENT]
    if not cells:
        raise ClaimsError(f"{sweep_dir}: no {SENTIMENT} cells; run `ser sweep {SENTIMENT}`")
    verdicts = []
    for cell in cells:
        label = f"{cell.row['label']} ({cell.row['store']['column']})"
        if cell.run is None:
            raise ClaimsError(f"{sweep_dir}: {SENTIMENT} row {label!r} has not run yet")
        constant = constant_scores(cell.run, cell_dir(sweep_dir, cell.row["key"]))
        for metric, name in ACCURACIES.items():
            acc = seed_scores(cell.run, f"{HEAD}_{metric}", label)
            verdicts.append(Verdict(f"{label}: {name}", acc, _side(constant, metric)))
        mae = replace(seed_scores(cell.run, f"{HEAD}_mae", label), decimals=3)
        verdicts.append(
            Verdict(f"{label}: MAE, the constant's minus ours", _side(constant, "mae"), mae)
        )
    return Claim(
        "(d) the sentiment score beats a constant predictor (the training median)", tuple(verdicts)
    )


def _side(constant: dict[int, dict[str, float]], metric: str) -> Scores:
    values = tuple(constant[seed][metric] for seed in sorted(constant))
    return Scores("the training median, constant", values, 3 if metric == "mae" else 2)


def constant_scores(run: RunRecord, folder: Path) -> dict[int, dict[str, float]]:
    """Seed -> the constant's metrics on the segments that seed tested (`folder`: the
    cell's run directory, its predictions.csv)."""
    if run.protocol != "standard":
        raise ClaimsError(
            f"{folder}: trained on protocol {run.protocol}; claim (d) reads "
            "the standard folds' training scores"
        )
    median = training_median(str(run.store))
    tested: dict[int, list[float]] = {}
    for row in _predictions(folder):
        if row.get(GOLD):
            tested.setdefault(int(row["seed"]), []).append(float(row[GOLD]))
    if not tested:
        raise ClaimsError(f"{folder / 'predictions.csv'}: no {GOLD} column with values")
    head = SentimentScoreHead()
    out = {}
    for seed, gold in tested.items():
        g = np.asarray(gold)[:, None]
        scores = head.metrics(np.full_like(g, median), g, ())
        out[seed] = {k: float(scores[k]) for k in (*ACCURACIES, "mae")}
    return out


def training_median(store: str) -> float:
    """The median sentiment score of the store's standard training fold (its first
    fold's training side, as the protocol cuts it)."""
    try:
        opened = FeatureStore.open(store)
        manifest, corpus = opened.manifest, opened.corpus
    except (SerError, OSError) as e:
        raise ClaimsError(f"{store}: the run's store cannot be opened ({e})") from e
    if COLUMN not in manifest.names:
        raise ClaimsError(f"{store}: no {COLUMN} scores (not a CMU-MOSI or MOSEI store)")
    try:
        rows = np.arange(len(manifest.utt_ids))
        data = FoldData(
            np.zeros(len(rows), np.int64), corpus.columns["speaker"], corpus.groups(rows)
        )
        train = corpus.protocol(PROTOCOL).splits(data, "next-group", 0)[0].train
    except (SerError, OSError) as e:
        raise ClaimsError(f"{store}: the run's store cannot be read for its folds ({e})") from e
    scores = np.asarray(manifest.column(COLUMN), dtype=np.float64)[train]
    if not np.isfinite(scores).any():
        raise ClaimsError(f"{store}: no scored segment in the {PROTOCOL} protocol's training side")
    return float(np.median(scores[np.isfinite(scores)]))


def _predictions(folder: Path) -> list[dict[str, str]]:
    path = folder / "predictions.csv"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise ClaimsError(f"{path}: unreadable ({e.strerror or e})") from e
