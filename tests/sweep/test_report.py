"""The sweep report's paired test and its cells that have not run."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.stats import wilcoxon

from ser.sweep.report import CellResult, _table_md, paired_test


def result(label: str, uas: list[float] | None, key: str | None = None) -> CellResult:
    row = {"label": label, "row": label, "row_key": label, "column": None, "key": key or label,
           "published": {"ua": 70.0}, "config": {}}  # fmt: skip
    if uas is None:
        return CellResult(row, None)
    folds = [{"seed": s, "fold": f"fold{f}", "metrics": {"ua": uas[2 * s + f]}}
             for s in range(len(uas) // 2) for f in range(2)]  # fmt: skip
    run: dict[str, Any] = {"folds": folds, "complete": True, "protocol": "loso",
                           "summary": {"ua": sum(uas) / len(uas), "ua_std": 1.0}}  # fmt: skip
    return CellResult(row, run)


def test_paired_test_pairs_seeds_and_folds_and_uses_wilcoxon() -> None:
    ref = result("Full", [70.0, 72.0, 71.0, 69.0, 73.0, 70.0])
    row = result("w/o RMM", [68.0, 71.5, 69.0, 66.0, 70.0, 69.5])
    diff, p, n = paired_test(row, ref, "ua")
    diffs = [-2.0, -0.5, -2.0, -3.0, -3.0, -0.5]
    assert n == 6 and diff == pytest.approx(sum(diffs) / 6)
    assert p == pytest.approx(wilcoxon(diffs).pvalue)
    same = paired_test(ref, ref, "ua")
    assert same[0] == 0.0 and math.isnan(same[1])  # no difference: no test


def test_a_table_names_cells_not_run_and_marks_the_reference() -> None:
    table = {"title": "T", "paper": "P", "protocol": "loso", "reference": "Full",
             "metrics": ["ua"], "note": ""}  # fmt: skip
    text = _table_md(table, [result("Text", None), result("Full", [70.0, 72.0])])
    assert "| Text | not run | 70.00 | - | - |" in text
    assert "| Full | 71.00 ± 1.00 | 70.00 | reference | 2 |" in text
