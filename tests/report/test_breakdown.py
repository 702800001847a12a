"""Runs' predictions by class and by speaker (ser.report.breakdown)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.heads.attribute_metrics import attribute_metrics
from ser.heads.metrics import compute_metrics
from ser.report.breakdown import breakdown_table, run_predictions
from ser.report.runs import ReportError
from ser.runs.predictions import PREDICTIONS, PredictionTable, concat, predictions_csv
from tests.report.attribute_fixtures import attribute_run

CLASSES = ("neu", "hap", "sad")
RNG = np.random.default_rng(3)
GOLD = RNG.integers(0, 3, 60)
SPEAKERS = np.array(["F1", "M1", "F2"])[np.arange(60) % 3]


def run_table(seeds: tuple[int, ...] = (0, 1)) -> PredictionTable:
    parts = []
    for seed in seeds:
        pred = np.where(RNG.random(60) < 0.3, (GOLD + 1) % 3, GOLD)
        ids = [f"u{i}" for i in range(60)]
        probs = np.eye(3)[pred]
        parts.append(
            PredictionTable.of(CLASSES, seed, "f1", ids, SPEAKERS, range(60), GOLD, pred, probs)
        )
    return concat(parts, CLASSES)


def test_class_recalls_and_speaker_scores_pool_every_seed() -> None:
    a, b = run_table(), run_table((0,))
    lines = breakdown_table([("a", a), ("b", b)], "class", "csv").splitlines()
    assert lines[0] == "class,n,a,b"
    recall = compute_metrics(a.gold, a.pred, CLASSES).per_class_recall
    assert lines[1] == f"neu,{(GOLD == 0).sum()},{recall['neu']:.2f}," + lines[1].split(",")[3]
    csv = breakdown_table([("a", a), ("b", b)], "speaker", "csv").splitlines()
    assert csv[0] == "speaker,n,a ua,a wa,b ua,b wa"
    f1 = a.take(a.speaker == "F1")
    m = compute_metrics(f1.gold, f1.pred, CLASSES)
    assert csv[1] == f"F1,20,{m.ua:.2f},{m.wa:.2f}," + ",".join(csv[1].split(",")[4:])
    md = breakdown_table([("a", a)], "speaker")
    assert md.startswith("| speaker | n | a UA / WA |") and "UA over the classes" in md


def test_a_speaker_one_run_did_not_test_is_marked() -> None:
    a, b = run_table(), run_table()
    b = b.take(b.speaker != "M1")
    md = breakdown_table([("a", a), ("b", b)], "speaker").splitlines()
    assert md[4].startswith("| M1 | 20 |") and md[4].endswith("| - |")  # F1, F2, M1


def test_tables_of_other_label_sets_or_breakdowns_are_refused() -> None:
    other = PredictionTable.of(("neu", "ang"), 0, "f1", [], [], [], [], [], np.zeros((0, 2)))
    with pytest.raises(ReportError, match="label sets"):
        breakdown_table([("a", run_table()), ("b", other)], "class")
    with pytest.raises(ReportError, match="unknown breakdown"):
        breakdown_table([("a", run_table())], "session")


def write_run(run_dir: Path, folds: list[tuple[int, str]], tested: int | None = None) -> None:
    """A run record of these (seed, fold)s; `tested`: each one's test side, recorded."""
    sizes = {} if tested is None else {"sizes": {"train": 1, "val": 1, "test": tested}}
    record = {"name": "r", "config": {}, "protocol": "loso", "classes": list(CLASSES),
              "folds": [{"seed": s, "fold": f, **sizes} for s, f in folds]}  # fmt: skip
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(record))


def test_a_run_without_its_predictions_is_refused_with_what_to_do(tmp_path: Path) -> None:
    write_run(tmp_path / "r", [(0, "f1"), (1, "f1"), (0, "f2")])
    with pytest.raises(ReportError, match="kept no per-utterance predictions; train it again"):
        run_predictions(tmp_path / "r")
    (tmp_path / "r" / PREDICTIONS).write_text(predictions_csv(run_table()))
    with pytest.raises(ReportError, match="no predictions of seed 0 f2; train it again"):
        run_predictions(tmp_path / "r")
    (tmp_path / "r" / PREDICTIONS).write_text("not,a,predictions,file\n")
    with pytest.raises(ReportError, match="not a predictions file"):
        run_predictions(tmp_path / "r")


def test_predictions_that_lost_or_gained_rows_are_refused_as_damaged(tmp_path: Path) -> None:
    # Every score of a breakdown, a paired test or a calibration table reads these rows.
    write_run(tmp_path / "r", [(0, "f1"), (1, "f1")], tested=60)
    table = run_table()
    (tmp_path / "r" / PREDICTIONS).write_text(predictions_csv(table))
    assert run_predictions(tmp_path / "r")[1].runs() == [(0, "f1"), (1, "f1")]
    lines = predictions_csv(table).splitlines(keepends=True)
    (tmp_path / "r" / PREDICTIONS).write_text("".join(lines[:5] + lines[21:]))
    with pytest.raises(ReportError, match=r"damaged, .* \(seed 0 f1: 44 rows, 60 test utt"):
        run_predictions(tmp_path / "r")
    (tmp_path / "r" / PREDICTIONS).write_text("".join(lines + lines[-2:]))
    with pytest.raises(ReportError, match=r"seed 1 f1: 62 rows, 60 test utterances\)"):
        run_predictions(tmp_path / "r")


def test_by_speaker_gives_each_attributes_ccc_of_attribute_runs(tmp_path: Path) -> None:
    va = run_predictions(attribute_run(tmp_path, "va"))
    both = run_predictions(attribute_run(tmp_path, "both", ("arousal",), categorical=True))
    text = breakdown_table([va, both], "speaker")
    lines = text.splitlines()
    assert (
        lines[0] == "| speaker | n | va CCC arousal / valence | both UA / WA | both CCC arousal |"
    )
    table = va[1]
    f1 = table.take(table.speaker == "F1")
    want = attribute_metrics(f1.attr_gold, f1.attr_pred, f1.attributes).scores
    assert lines[2].startswith(
        f"| F1 | 8 | {want['arousal'].ccc:.3f} / {want['valence'].ccc:.3f} | "
    )
    assert "CCC: each attribute's concordance correlation" in text
    rows = breakdown_table([va], "speaker", "csv").splitlines()
    assert rows[0] == "speaker,n,va ccc_arousal,va ccc_valence"
    assert rows[1] == f"F1,8,{want['arousal'].ccc:.3f},{want['valence'].ccc:.3f}"
    # By class: the attribute-only run has no column to fill, alone it has nothing to show.
    by_class = breakdown_table([both, va], "class").splitlines()
    assert by_class[0] == "| class | n | both | va |" and by_class[2].endswith("| - |")
    with pytest.raises(ReportError, match="none of the runs has any"):
        breakdown_table([va], "class")


def test_a_head_with_no_breakdown_is_named_under_the_table() -> None:
    """MELD's sentiment beside the category: the category breaks down, the sentiment head
    has no breakdown and the legend says so rather than leaving it out unsaid."""
    import ser.heads.sentiment  # noqa: F401  (registers the head)

    t = run_table((0,))
    sentiment = ("sentiment_gold", "sentiment_negative", "sentiment_neutral", "sentiment_positive")
    cells = np.asarray([["neutral", "0.1", "0.8", "0.1"]] * len(t), dtype=str)
    both = replace(t, further=sentiment, cells=cells)
    text = breakdown_table([("run", both)], "speaker")
    assert text.splitlines()[0] == "| speaker | n | run UA / WA |"
    assert text.rstrip().endswith("Not broken down: sentiment (the head has no --by breakdown).")
    assert "Not broken down" not in breakdown_table([("run", t)], "speaker")
    n = len(t)  # a run of the sentiment alone: a column of "-", as wide as the others' rows
    alone = PredictionTable.of(
        (), 0, "f1", t.utt_id, t.speaker, t.row, [-1] * n, [-1] * n, np.zeros((n, 0)),
        further=sentiment, cells=cells,
    )  # fmt: skip
    rows = breakdown_table([("run", t), ("alone", alone)], "speaker", "csv").splitlines()
    assert rows[0] == "speaker,n,run ua,run wa,alone" and rows[1].endswith(",")
    assert all(len(row.split(",")) == 5 for row in rows)
