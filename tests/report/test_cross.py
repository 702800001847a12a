"""Train x test tables and heat-maps of cross-corpus runs (ser.report.cross)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ser.report.cross import cells_of_runs, cross_tables, tables_csv, tables_md
from ser.report.cross_plot import write_heatmaps
from ser.report.runs import protocol_label, report_table
from ser.runs.record import RunRecord

STORES = {"iemocap": "/data/iemocap.zarr", "meld": "/data/meld.zarr"}
TITLES = {"iemocap": "IEMOCAP", "meld": "MELD"}


def run(
    name: str, ua: float, train: str, test: str | None = None, encoder: str | None = None
) -> RunRecord:
    """A finished run of one seed and fold; cross-corpus when `test` is given."""
    scores = {"ua": ua, "wa": ua - 1, "f1": ua - 2, "wf1": ua - 2}
    summary = {**scores, **{f"{k}_std": 0.5 for k in scores}, "n": 2, "seeds": 2}
    obj: dict[str, Any] = {
        "name": name,
        "config": {"features": "wavlm-large.L12.mean", "fusion": "none", "store": STORES[train]},
        "protocol": "cross" if test else "loso",
        "classes": ["neu", "hap", "sad", "ang"],
        "summary": summary,
        "pooled": scores,
        "store": STORES[train],
        "folds": [{"seed": 0, "fold": "cross", "metrics": scores}],
    }
    if test is not None:
        side = {
            k: {"store": STORES[k], "corpus": k, "title": TITLES[k], "manifest": "0" * 16,
                "classes": "4", "utterances": 10}
            for k in (train, test)
        }  # fmt: skip
        obj["cross"] = {
            "train": {**side[train], "encoders": {"wavlm-large.L12.mean": encoder}},
            "test": side[test],
            "train_set": "4",
            "test_set": "4",
        }
    return RunRecord.from_json(obj)


WAVLM = "microsoft/wavlm-large"  # EmoBox's WavLM large: IEMOCAP -> MELD 39.06, back 48.59


@pytest.fixture
def runs() -> list[RunRecord]:
    return [
        run("a", 70.0, "iemocap"),
        run("a_to_b", 40.0, "iemocap", "meld", WAVLM),
        run("b_to_a", 45.0, "meld", "iemocap", WAVLM),
        run("other", 10.0, "meld", "iemocap", "facebook/wav2vec2-large-robust"),  # not EmoBox's
    ]


def test_a_table_per_model_diagonal_from_runs_on_a_store(runs: list[RunRecord]) -> None:
    (table,) = cross_tables(cells_of_runs(runs[:3]))
    assert table.trained == ("IEMOCAP", "MELD") and table.tested == ("IEMOCAP", "MELD")
    assert table.cells[("IEMOCAP", "IEMOCAP")].run is runs[0]  # the diagonal
    assert ("MELD", "MELD") not in table.cells
    assert cells_of_runs([runs[0]]) == []  # no cross-corpus run: no table


def test_published_numbers_beside_ours_where_the_encoder_matches(runs: list[RunRecord]) -> None:
    text = tables_md(cross_tables(cells_of_runs(runs[:3])))
    assert "| IEMOCAP | 70.00 ± 0.50 | 40.00 ± 0.50; EmoBox 39.06 |" in text
    assert "| MELD | 45.00 ± 0.50; EmoBox 48.59 | - |" in text
    assert text.count("; EmoBox ") == 2  # UA only, not beside WA and F1
    csv = tables_csv(cross_tables(cells_of_runs(runs[:3])))
    assert "IEMOCAP,MELD,40.00,0.50,39.00,0.50,38.00,0.50,2,39.06,a_to_b" in csv
    other = tables_md(cross_tables(cells_of_runs([runs[0], runs[3]])))
    assert "EmoBox" not in other.split("Rows:")[0]  # an encoder EmoBox did not probe


def test_the_heat_map_file(runs: list[RunRecord], tmp_path: Path) -> None:
    (path,) = write_heatmaps(cross_tables(cells_of_runs(runs[:3])), tmp_path, "runs")
    assert path.name == "runs_cross.png" and path.stat().st_size > 10_000


def test_the_run_table_names_both_corpora(runs: list[RunRecord]) -> None:
    assert protocol_label(runs[1]) == "cross: IEMOCAP -> MELD"
    assert "cross: MELD -> IEMOCAP" in report_table(runs[:3])
