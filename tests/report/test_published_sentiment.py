"""The published CMU-MOSI / CMU-MOSEI rows: each number with two sources that agree, its
paper's setting and features; the Markdown beside ours; `ser report` of a run on a
MOSEI store shows them, of a run whose store moved does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.report.leaderboard import read_rows
from ser.report.published_sentiment import (
    COLUMNS,
    FILE,
    published_md,
    published_sentiment,
)


def test_every_number_names_its_paper_features_and_two_sources() -> None:
    rows = read_rows(FILE)
    assert {r["corpus"] for r in rows} == {"cmu-mosi", "cmu-mosei"}
    assert {r["model"] for r in rows} == {"MulT", "MISA", "Self-MM"}
    for row in rows:
        assert row["metric"] in COLUMNS, row
        assert row["arxiv"] in ("1906.00295", "2005.03545", "2102.04830"), row
        assert row["source"] and row["second_source"] and row["source"] != row["second_source"]
        assert row["features"] and row["setting"] and row["paper"]
        value = float(row["value"])
        assert 0 < value < 1 if row["metric"] == "corr" else 0 < value <= 100
    keys = [(r["corpus"], r["model"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))  # one number per paper, corpus and metric


def test_a_paper_s_row_holds_what_the_sources_agree_on_and_no_more() -> None:
    mosei = {p.model: p for p in published_sentiment("cmu-mosei")}
    assert dict(mosei["Self-MM"].values) == {
        "acc2_non0": 85.17, "f1_non0": 85.30, "mae": 0.530, "corr": 0.765,
    }  # fmt: skip
    assert mosei["MulT"].values["mae"] == 0.580 and "corr" not in mosei["MulT"].values
    assert [p.model for p in published_sentiment("cmu-mosi")] == ["MISA", "Self-MM"]
    md = published_md("cmu-mosei")
    assert "not a same-features comparison" in md
    (mult,) = [line for line in md.splitlines() if line.startswith("| MulT")]
    assert mult.split(" | ")[2:] == ["", "", "82.50", "82.30", "", "0.580", " |"]
    assert published_md("iemocap") == ""


@pytest.fixture(scope="module")
def run_dir(mosei_score_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("published")
    store = mosei_score_store
    args = ["train", "--store", str(store), "--target", "sentiment-score", "--features",
            "is13", "--fusion", "none", "--epochs", "1", "--out", str(root),
            "--name", "run"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return root / "run"


def test_ser_report_of_a_mosei_run_shows_the_published_rows(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    shown = result.output
    assert "### Published on CMU-MOSEI: the sentiment score" in shown
    assert shown.index("| Self-MM (Yu et al., AAAI 2021) |") > shown.index("| run ")
    moved = json.loads((run_dir / "run.json").read_text())
    moved["store"] = str(run_dir / "gone.zarr")  # a store that moved: the table alone
    (run_dir / "run.json").write_text(json.dumps(moved))
    result = CliRunner().invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 0 and "Published on" not in result.output
