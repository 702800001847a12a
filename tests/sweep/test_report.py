"""The sweep report's paired test, its cells that have not run, and what its numbers are."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from scipy.stats import wilcoxon

from ser.runs.record import RunRecord
from ser.sweep.report import _csv, _heading, _table_md, paired_test
from ser.sweep.results import CellResult

UA_WA = ("ua", "wa")

TABLE = {"title": "T", "paper": "P", "protocol": "loso", "reference": "Full",
         "metrics": ["ua"], "note": ""}  # fmt: skip


def result(
    label: str, uas: list[float] | None, key: str | None = None, seeds: int = 1, **row: Any
) -> CellResult:
    """A cell whose `uas` are its (seed, fold) scores, seed-major over `seeds` seeds
    (WA: UA - 2); its summary as `ser.heads.metrics.summarize` gives it."""
    row = {"label": label, "row": label, "row_key": label, "column": None, "key": key or label,
           "published": {"ua": 70.0}, "config": {}, **row}  # fmt: skip
    if uas is None:
        return CellResult(row, None)
    per = len(uas) // seeds
    folds = [{"seed": s, "fold": f"fold{f}", "metrics": {"ua": uas[per * s + f],
              "wa": uas[per * s + f] - 2}} for s in range(seeds) for f in range(per)]  # fmt: skip
    mean, n = sum(uas) / len(uas), seeds if seeds > 1 else len(uas)
    summary = {"ua": mean, "wa": mean - 2, "seeds": seeds, "n": n, "ua_std": 1.0, "wa_std": 1.0}
    run = {"name": label, "config": {}, "classes": [], "folds": folds, "complete": True,
           "protocol": "loso", "summary": summary}  # fmt: skip
    return CellResult(row, RunRecord.from_json(run))


def test_paired_test_pairs_seeds_and_folds_and_uses_wilcoxon() -> None:
    ref = result("Full", [70.0, 72.0, 71.0, 69.0, 73.0, 70.0], seeds=3)
    row = result("w/o RMM", [68.0, 71.5, 69.0, 66.0, 70.0, 69.5], seeds=3)
    diff, p, n = paired_test(row, ref, "ua")
    diffs = [-2.0, -0.5, -2.0, -3.0, -3.0, -0.5]
    assert n == 6 and diff == pytest.approx(sum(diffs) / 6)
    assert p == pytest.approx(wilcoxon(diffs).pvalue)
    same = paired_test(ref, ref, "ua")
    assert same[0] == 0.0 and math.isnan(same[1])  # no difference: no test


def test_a_table_names_cells_not_run_and_marks_the_reference() -> None:
    text = _table_md(
        TABLE, [result("Text", None), result("Full", [70.0, 72.0, 74.0, 76.0], seeds=2)]
    )
    assert "| cell | UA (ours) | WA (ours) | UA (paper) | vs Full | seeds x folds |" in text
    assert "| Text | not run | not run | 70.00 | - | - |" in text
    assert "| Full | 73.00 ± 1.00 | 71.00 ± 1.00 | 70.00 | reference | 4 |" in text


def test_one_value_shows_its_number_and_n_1_never_a_zero_spread() -> None:
    one = result("Full", [70.0])  # one seed, one fold (session5)
    assert one.run is not None and one.run.summary is not None
    spread = {k: replace(s, std=0.0) for k, s in one.run.summary.scores.items() if k in UA_WA}
    summary = replace(one.run.summary, scores={**one.run.summary.scores, **spread})
    one = replace(one, run=replace(one.run, summary=summary))
    text = _table_md(TABLE, [one, result("Text", [70.0, 72.0], published={})])
    assert "| Full | 70.00 (n = 1) | 68.00 (n = 1) | 70.00 | reference | 1 |" in text
    assert "±" not in text.split("| Full |")[1].split("| 70.00 |")[0]
    # One seed over two folds: the spread of its folds.
    assert "| Text | 71.00 ± 1.00 | 69.00 ± 1.00 | - |" in text


def test_records_written_before_runs_kept_n_count_their_values() -> None:
    old = result("Full", [70.0])
    assert old.run is not None and old.run.summary is not None
    old = replace(old, run=replace(old.run, summary=replace(old.run.summary, n=None)))
    assert old.mean_std("ua") == (70.0, 1.0, 1)


def test_pivoted_tables_show_ua_and_wa_beside_the_papers_metric() -> None:
    """The fusion study prints WA only; ours shows both, as the progress lines do."""
    table = {**TABLE, "metrics": ["wa"], "reference": "LGF/L_s"}
    cells = [result("LGF", [80.0, 82.0, 84.0, 86.0], seeds=2, column=c, row_key=f"LGF/{c}",
                    key=f"k{c}", published={"wa": 85.4}) for c in ("L_s", "L_p")]  # fmt: skip
    text = _table_md(table, cells)
    assert (
        "| cell | UA L_s (ours) | WA L_s (ours) | WA L_s (paper) | L_s vs LGF/L_s | "
        "UA L_p (ours) | WA L_p (ours) | WA L_p (paper) | L_p vs LGF/L_s |"
    ) in text
    assert "| LGF | 83.00 ± 1.00 | 81.00 ± 1.00 | 85.40 | reference | 83.00 ± 1.00 |" in text


def test_ours_names_the_validation_once() -> None:
    run = result("Full", [70.0, 72.0]).run
    assert run is not None
    validation = "none: all training sessions, fixed epochs, last epoch tested"
    run = replace(run, protocol="session5", config={"val": "none"}, validation=validation)
    ours = next(line for line in _heading(TABLE, [CellResult({}, run)]) if "Ours" in line)
    assert ours == (
        "Ours: session5 (speaker-independent); validation: none: all training sessions, "
        "fixed epochs, last epoch tested; mean ± std over seeds (one seed: over its folds)."
    )


def test_a_bar_in_a_label_stays_in_its_cell() -> None:
    """A label from a sweep file may hold ``|``: escaped as `ser report` escapes its runs."""
    text = _table_md(TABLE, [result("Full", None), result("a|b", None)])
    assert "| a\\|b | not run | not run |" in text


def test_a_cell_trained_on_attributes_alone_shows_dashes() -> None:
    scores = {"arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10}}
    folds = [{"seed": 0, "fold": "fold0", "metrics": {}, "attributes": scores}]
    run = {"name": "va", "config": {}, "classes": [], "folds": folds, "complete": True,
           "protocol": "loso", "summary": None}  # fmt: skip
    va = CellResult({**result("VA", None).row, "key": "va"}, RunRecord.from_json(run))
    full = result("Full", [70.0, 72.0, 74.0, 76.0], seeds=2)
    text = _table_md(TABLE, [va, full])
    assert "| cell | UA (ours) | WA (ours) | mean CCC (ours) | UA (paper) |" in text
    assert "| VA | - | - | 0.50 (n = 1) | 70.00 | - | - |" in text
    assert "| Full | 73.00 ± 1.00 | 71.00 ± 1.00 | - | 70.00 | reference | 4 |" in text
    assert "mean CCC" not in _table_md(TABLE, [full])  # no cell on attributes: no column
    assert va.mean_std("ccc_arousal") == (0.5, 0.0, 1) and va.scores("ua") == {}


def test_the_csv_gives_a_cell_on_attributes_its_mean_ccc() -> None:
    scores = {"arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10},
              "valence": {"ccc": 0.3, "pearson": 0.4, "mae": 0.8, "n": 10}}  # fmt: skip
    folds = [{"seed": 0, "fold": "fold0", "metrics": {}, "attributes": scores}]
    run = {"name": "va", "config": {}, "classes": [], "folds": folds, "complete": True,
           "protocol": "loso", "summary": None}  # fmt: skip
    va = CellResult({**result("VA", None).row, "key": "va", "table": "T"}, RunRecord.from_json(run))
    full = result("Full", [70.0, 72.0], table="T")
    lines = _csv([{"name": "s", "results": [va, full]}]).splitlines()
    assert lines[0].endswith(",paper_ua,paper_wa,ccc_mean")
    assert lines[1].endswith(",fold0,,,,70.0,,0.400") and lines[2].endswith(",70.0,,")
