"""A new head is one file and one registry line: this file is that file. `duration` (how
long an utterance lasts, in seconds, from the manifest's `duration` column) is a head of
one number, trained with the squared error beside the emotion, selected on and scored by
its mean absolute error, broken down by speaker (`ser report --by speaker`) and with no
paired test or plot of its own; it trains, reports and predicts end to end on the
synthetic MELD corpus's store without a line of ser knowing it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from ser.errors import ReportError
from ser.heads.base import GoldSource, Head
from ser.heads.registry import HEADS, register
from ser.report.breakdown import breakdown_table
from ser.report.paired import paired_bootstrap
from ser.runs.predictions import PredictionTable
from tests.heads.conftest import ser

# --- the head's file ----------------------------------------------------------------


class DurationHead(Head):
    name: ClassVar[str] = "duration"
    score_name: ClassVar[str] = "-MAE"
    breakdowns: ClassVar[tuple[str, ...]] = ("speaker",)

    def width(self, n_classes: int) -> int:
        return 1

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        return ("seconds",)

    def gold(self, source: GoldSource) -> np.ndarray:
        column = source.store.manifest.column("duration")
        return np.asarray(column, dtype=np.float64).reshape(-1, 1)

    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        has = gold.isfinite()  # no branch on the data: the model runs under vmap
        err = torch.where(has, out.float() - gold.nan_to_num(0.0), 0.0)
        return err.square().sum() / has.sum().clamp_min(1)

    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        has = np.isfinite(gold[:, 0])
        return {"mae": float(np.abs(pred[has, 0] - gold[has, 0]).mean()), "n": int(has.sum())}

    def score(self, metrics: Mapping[str, Any]) -> float:
        return -float(metrics["mae"])

    def flat(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        return {"duration_mae": float(metrics["mae"])}

    def pool(self, folds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        n = sum(int(f["n"]) for f in folds)
        return {"mae": sum(float(f["mae"]) * int(f["n"]) for f in folds) / n, "n": n}

    def breakdown_header(self, label: str, by: str, fmt: str) -> list[str]:
        return [f"{label} duration MAE"]

    def breakdown_cells(self, rows: Any, by: str, key: str, fmt: str) -> list[str]:
        gold, seconds = (rows.cells[:, rows.further.index(c)].astype(float) for c in COLUMNS)
        return [f"{np.abs(seconds - gold).mean():.2f}"]


COLUMNS = ("duration_gold", "duration_seconds")  # its columns of predictions.csv


# --- the test -----------------------------------------------------------------------


@pytest.fixture
def duration() -> Iterator[type[Head]]:
    yield register(DurationHead)  # the one registry line
    del HEADS["duration"]


def test_a_new_head_trains_reports_and_predicts(
    duration: type[Head], meld_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    code, shown = ser("train", "--store", meld_store, "--features", "logmel", "--fusion", "none",
                      "--epochs", "2", "--batch-size", "8", "--out", out,
                      "--target", "emotion+duration")  # fmt: skip
    assert code == 0, shown
    run = out / "logmel_none_official_c4_target-emotion+duration"
    record = json.loads((run / "run.json").read_text())
    (fold,) = record["folds"]
    mae = fold["heads"]["duration"]["mae"]
    assert fold["heads"]["duration"]["n"] == fold["sizes"]["test"] and 0 < mae < 10
    assert record["summary"]["duration_mae"] == mae and fold["metrics"]["n"] > 0
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    gold = np.array([float(r["duration_gold"]) for r in rows])
    pred = np.array([float(r["duration_seconds"]) for r in rows])
    assert np.abs(pred - gold).mean() == pytest.approx(mae, rel=1e-4)  # 6 significant digits
    code, shown = ser("report", run, "--format", "csv")
    assert code == 0, shown
    (table,) = csv.DictReader(io.StringIO(shown[shown.index("run,") :]))
    assert float(table["mean_duration_mae"]) == round(mae, 2)
    code, shown = ser("report", run, "--by", "speaker", "--format", "csv")
    assert code == 0, shown
    by = list(csv.DictReader(io.StringIO(shown[shown.index("speaker,") :])))
    first = by[0]["speaker"]
    mine = [abs(float(r["duration_seconds"]) - float(r["duration_gold"]))
            for r in rows if r["speaker"] == first]  # fmt: skip
    assert float(by[0][f"{run.name} duration MAE"]) == round(np.mean(mine), 2)
    assert f"{run.name} ua" in by[0]  # the category's beside it
    code, shown = ser("report", run, run, "--paired")  # the category's test; none of its own
    assert code == 0 and "| UA |" in shown, shown
    assert "Not tested: duration (the head has no paired test)." in shown
    code, shown = ser("report", run, "--plots", tmp_path / "plots")
    assert code == 0, shown
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        f"{run.name}_confusion.png", f"{run.name}_curves.png",
    ]  # fmt: skip
    wav = next((meld_store.parent / "meld").rglob("*.wav"))
    code, shown = ser("predict", "--run", run, wav, "--json")
    assert code == 0, shown
    (made,) = json.loads(shown[shown.index("{") :])["predictions"]
    assert set(made["heads"]) == {"duration"} and made["heads"]["duration"]["seconds"] > -100


def test_a_record_of_a_head_this_ser_does_not_know_is_one_line(
    duration: type[Head], meld_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    code, shown = ser("train", "--store", meld_store, "--features", "logmel", "--fusion", "none",
                      "--epochs", "1", "--out", out, "--target", "emotion+duration")  # fmt: skip
    assert code == 0, shown
    del HEADS["duration"]
    code, shown = ser("report", out / "logmel_none_official_c4_target-emotion+duration")
    register(DurationHead)
    assert code != 0 and "Traceback" not in shown
    assert "scored a head 'duration' this ser does not know" in shown


def test_a_head_without_a_paired_test_or_a_breakdown_is_refused_by_name(
    duration: type[Head],
) -> None:
    """Runs with the head alone: `--paired` says the head has no paired test, `--by
    class` that no run has classes, one line each."""
    n = 6
    table = PredictionTable.of(
        (), 0, "f1", [f"u{i}" for i in range(n)], ["F", "M"] * 3, range(n), [-1] * n,
        [-1] * n, np.zeros((n, 0)), further=COLUMNS,
        cells=[[f"{i}", f"{i + 0.5}"] for i in range(n)],
    )  # fmt: skip
    with pytest.raises(ReportError, match=r"^--paired: no paired test for the duration head$"):
        paired_bootstrap(table, table)
    with pytest.raises(ReportError, match="none of the runs has any"):
        breakdown_table([("d", table)], "class")
    lines = breakdown_table([("d", table)], "speaker", "csv").splitlines()
    assert lines == ["speaker,n,d duration MAE", "F,3,0.50", "M,3,0.50"]
