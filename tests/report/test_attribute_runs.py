"""`ser report`'s table of runs trained on emotion attributes, alone or beside categories."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.heads.attribute_metrics import attribute_metrics
from ser.heads.attribute_report import pooled as attribute_pooled
from ser.heads.emotion_report import scored as has_categories
from ser.report.runs import CSV_HEADER, load_run, report_table, run_pooled, run_summary
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import read_predictions
from tests.report.attribute_fixtures import attribute_run


def test_an_attribute_only_run_is_reported_with_dashes_for_categories(tmp_path: Path) -> None:
    run = load_run(attribute_run(tmp_path, "va"))
    assert not has_categories(run) and run_pooled(run) == {}
    table = report_table([run])
    head, _, row = table.splitlines()[:3]
    assert head.endswith(
        "| mean CCC arousal | mean CCC valence | mean CCC (mean) | mean r arousal | "
        "mean r valence | mean MAE arousal | mean MAE valence | pooled CCC arousal | "
        "pooled CCC valence | pooled CCC (mean) |"
    )
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[6:10] == ["-", "-", "-", "-"]  # UA, WA, macro F1, weighted F1
    assert cells[10] == "2 seeds"
    summary = run_summary(run)
    assert cells[15] == f"{summary['ccc_arousal']:.3f} ± {summary['ccc_arousal_std']:.3f}"
    assert "CCC: Lin's concordance correlation" in table
    rows = list(csv.reader(io.StringIO(report_table([run], fmt="csv"))))
    assert tuple(rows[0][: len(CSV_HEADER)]) == CSV_HEADER
    assert rows[0][len(CSV_HEADER) :][:3] == ["mean_ccc_arousal", "mean_ccc_arousal_std",
                                               "mean_ccc_valence"]  # fmt: skip
    assert rows[1][6] == "" and rows[1][rows[0].index("pooled_ccc_mean")] != ""


def test_the_pooled_ccc_is_the_pooled_predictions(tmp_path: Path) -> None:
    run_dir = attribute_run(tmp_path, "va")
    table = read_predictions(run_dir / "predictions.csv")
    whole = attribute_metrics(table.attr_gold, table.attr_pred, table.attributes)
    pooled = attribute_pooled(load_run(run_dir))
    assert pooled is not None
    assert pooled.scores["valence"].n == whole.scores["valence"].n == 2 * 32 - 2
    for name in table.attributes:
        assert pooled.scores[name].ccc == pytest.approx(whole.scores[name].ccc, rel=1e-6)
    row = report_table([load_run(run_dir)], fmt="csv").splitlines()
    header, cells = row[0].split(","), row[1].split(",")
    assert float(cells[header.index("pooled_ccc_arousal")]) == pytest.approx(
        whole.scores["arousal"].ccc, abs=5e-4
    )


def test_a_run_with_both_heads_has_both_and_a_categorical_run_is_unchanged(
    tmp_path: Path,
) -> None:
    both = load_run(attribute_run(tmp_path, "both", ("arousal",), categorical=True))
    cat = load_run(attribute_run(tmp_path, "cat", ("arousal",), categorical=True))
    cat = replace(cat, folds=tuple(_without_attributes(e) for e in cat.folds))
    alone = report_table([cat])
    assert "CCC" not in alone and "CCC" not in report_table([cat], fmt="csv")
    mixed = report_table([cat, both]).splitlines()
    assert "mean CCC arousal" in mixed[0] and "mean CCC (mean)" not in mixed[0]
    cat_cells = [c.strip() for c in mixed[2].split("|")[1:-1]]
    both_cells = [c.strip() for c in mixed[3].split("|")[1:-1]]
    assert cat_cells[6] == both_cells[6] != "-"  # the same UA: the same categorical folds
    assert cat_cells[-4:] == ["-"] * 4 and both_cells[-1] != "-"
    # The categorical run's row reads as it did alone.
    assert mixed[2] == alone.splitlines()[2] + " - | - | - | - |"


def _without_attributes(entry: FoldEntry) -> FoldEntry:
    return replace(entry, attributes=None)


def test_a_summary_without_folds_to_recompute_keeps_its_shape(tmp_path: Path) -> None:
    run = load_run(attribute_run(tmp_path, "one", ("arousal",), seeds=1))
    summary = run_summary(run)
    assert summary["std_over"] == "folds" and summary["n"] == 2
    assert np.isfinite(summary["ccc_arousal"]) and "ua" not in summary
    assert "(n = 2)" not in report_table([run]) and "2 folds of 1 seed" in report_table([run])
