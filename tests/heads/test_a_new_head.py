"""A new head is one file and one registry line: this file is that file. `duration` (how
long an utterance lasts, in seconds, from the manifest's `duration` column) is a head of
one number, trained with the squared error beside the emotion, selected on and scored by
its mean absolute error; it trains, reports and predicts end to end on the synthetic MELD
corpus's store without a line of ser knowing it."""

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

from ser.heads.base import GoldSource, Head
from ser.heads.registry import HEADS, register
from tests.heads.conftest import ser

# --- the head's file ----------------------------------------------------------------


class DurationHead(Head):
    name: ClassVar[str] = "duration"
    score_name: ClassVar[str] = "-MAE"

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
