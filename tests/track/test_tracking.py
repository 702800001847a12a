"""What `ser.track.tracking` logs of a fold entry and of a run's options, and what --overwrite
forgets."""

from __future__ import annotations

import math
from pathlib import Path

from ser.runs.config import RunConfig
from ser.runs.fold_entry import FoldEntry
from ser.runs.record import RunRecord
from ser.track.tracking import forget, member, options, points


def test_a_member_s_points_are_its_series_by_epoch_without_the_missing_ones() -> None:
    nan = math.nan
    entry = FoldEntry.from_json(
        {
            "seed": 1,
            "fold": "Ses 5/a",
            "best_epoch": 2,
            "curves": {
                "epoch": [1, 2],
                "train_loss": [1.5, 0.5],
                "val_ua": [nan, 60.0],  # no validation value at epoch 1
                "val_heads": {"val_sentiment_acc2": [55.0, 65.0]},
            },
            "stages": {
                "audio": {
                    "best_epoch": 1,
                    "seconds": 1.0,
                    "curves": {"epoch": [1], "train_loss": [2.0]},
                }
            },
        }
    )
    assert member(entry) == "seed1-Ses_5_a"  # a path's and a metric key's characters
    assert points(entry, ()) == [
        ("train_loss", 1, 1.5),
        ("train_loss", 2, 0.5),
        ("val_ua", 2, 60.0),
        ("val_sentiment_acc2", 1, 55.0),
        ("val_sentiment_acc2", 2, 65.0),
        ("audio/train_loss", 1, 2.0),
    ]


def test_overwrite_forgets_what_the_earlier_run_logged(tmp_path: Path) -> None:
    (tmp_path / "tensorboard" / "seed0-fold1").mkdir(parents=True)
    (tmp_path / "mlflow.json").write_text("{}")
    (tmp_path / "run.json").write_text("{}")
    assert forget(tmp_path) == ["tensorboard", "mlflow.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    assert forget(tmp_path) == []


def test_options_hold_a_path_of_this_machine_by_its_last_name() -> None:
    config = {"store": "/data/x/features.zarr", "features": "is13", "lr": 0.01}
    config |= {"test_store": "/data/y/other.h5", "out": "runs"}
    record = RunRecord(name="r", config=RunConfig.from_json(config), protocol="loso", classes=())
    assert options(record) == {
        "store": "features.zarr",
        "features": "is13",
        "test_store": "other.h5",
        "lr": 0.01,
        "out": "runs",  # relative: kept
    }
